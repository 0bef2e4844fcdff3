/**
 * A node's cluster membership (docs/architecture.md §8.7): the Redis connection, the lease keeper and
 * the gate the account layer uses. Started before the listeners; a Redis that does not answer within
 * CONNECT_WAIT_MS stops the start.
 */
import type { Redis } from "ioredis";
import type { ClusterConfig } from "../config.js";
import type { Logger } from "../log.js";
import { clusterGate, type ClusterGate } from "./gate.js";
import { LeaseKeeper } from "./leases.js";
import { connectRedis, RedisLeaseBackend } from "./redis.js";

const CONNECT_WAIT_MS = 5000;

export interface Cluster {
  readonly nodeId: string;
  readonly keeper: LeaseKeeper;
  readonly gate: ClusterGate;
  readonly redis: Redis;
  /** Releases every lease still held, stops renewing, closes the Redis connection. */
  stop(): Promise<void>;
}

/** The URL without its password, for logs. */
export function redactedUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, cred: string) => `//${cred.includes(":") ? `${cred.slice(0, cred.indexOf(":"))}:***` : "***"}@`);
}

export class ClusterStartError extends Error {
  readonly code = "CLUSTER_REDIS";
}

export async function startCluster(cfg: ClusterConfig, resourcePrefix: string, log: Logger, inUse?: (account: string) => boolean): Promise<Cluster> {
  const url = redactedUrl(cfg.redisUrl);
  let redis: Redis;
  try {
    redis = await connectRedis(cfg.redisUrl, CONNECT_WAIT_MS);
  } catch (err) {
    throw new ClusterStartError(`cluster: Redis at ${url} unreachable: ${(err as Error).message}`);
  }
  const clog = log.child({ node: cfg.nodeId });
  const keeper = new LeaseKeeper(new RedisLeaseBackend(redis), {
    nodeId: cfg.nodeId,
    ttlMs: cfg.leaseTtlMs,
    log: clog,
    ...(inUse ? { inUse } : {}),
    ...(cfg.advertise ? { advertise: `${cfg.advertise.host}:${cfg.advertise.port}` } : {}),
  });
  keeper.start();
  log.info({ node: cfg.nodeId, redis: url, leaseTtlMs: cfg.leaseTtlMs }, "cluster: joined");
  let stopped: Promise<void> | undefined;
  return {
    nodeId: cfg.nodeId,
    keeper,
    gate: clusterGate(keeper, resourcePrefix),
    redis,
    stop: () => (stopped ??= keeper.stop().then(() => {
      redis.disconnect();
    })),
  };
}
