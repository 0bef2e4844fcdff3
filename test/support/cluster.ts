/**
 * What the cluster suites share (cluster, cluster-marks, rolling-restart): a private redis-server with an
 * admin client, started before the file's tests and stopped after them, and a node-to-node secret file.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startRedis, type RedisServer } from "./redis.js";

export interface SuiteRedis {
  readonly server: RedisServer;
  /** A client for the test's own looks into Redis (leases, marks, credentials). */
  readonly admin: Redis;
}

/** Registers beforeAll/afterAll of the calling file: a redis-server and an admin client, for its tests. */
export function useRedis(): SuiteRedis {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on("error", () => undefined);
    await admin.connect();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  return {
    get server() {
      if (!server) throw new Error("useRedis: redis-server not started yet (use it inside tests or hooks)");
      return server;
    },
    get admin() {
      if (!admin) throw new Error("useRedis: redis-server not started yet (use it inside tests or hooks)");
      return admin;
    },
  };
}

/** A fresh --cluster-secret-file: 32 random bytes in hex, mode 0600, in its own temporary directory. */
export function clusterSecretFile(prefix: string): string {
  const file = join(mkdtempSync(join(tmpdir(), `${prefix}-`)), "cluster.secret");
  writeFileSync(file, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  return file;
}
