/**
 * The credential store `import-credentials` writes (docs/operations.md "Cluster"): the one the proxy
 * nodes read. A single node: the file store under --state-dir. A cluster member's configuration
 * (--cluster-redis): the Redis hash `minimix:credentials` every node reads (proxy/cluster/redis-stores.ts),
 * in the same record format (encodeForStore), so an imported record verifies a SCRAM login on any node.
 */
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { FileCredentialStore } from "../credentials/file-store.js";
import { CredentialStoreError, type CredentialStore } from "../credentials/store.js";
import { redactedUrl } from "../cluster/cluster.js";
import { connectRedis } from "../cluster/redis.js";
import { RedisCredentialStore } from "../cluster/redis-stores.js";

/** How long the import waits for Redis to answer before giving up (as a node at start, cluster.ts). */
const REDIS_WAIT_MS = 5000;

export interface ImportStore {
  store: CredentialStore;
  /** Closes the Redis connection (nothing for the file store). */
  close(): void;
}

/** Opens the store; rejects with CredentialStoreError (a damaged file store, Redis unreachable: the URL without its password). */
export async function openImportStore(config: Pick<Config, "stateDir" | "cluster">, redisWaitMs = REDIS_WAIT_MS): Promise<ImportStore> {
  const cluster = config.cluster;
  if (!cluster) return { store: (await FileCredentialStore.open(config.stateDir)).store, close: () => undefined };
  const url = redactedUrl(cluster.redisUrl);
  let redis: Redis;
  try {
    redis = await connectRedis(cluster.redisUrl, redisWaitMs);
  } catch (err) {
    throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `cluster: Redis at ${url} unreachable: ${(err as Error).message}`);
  }
  return { store: new RedisCredentialStore(redis, `redis:${url}`), close: () => redis.disconnect() };
}
