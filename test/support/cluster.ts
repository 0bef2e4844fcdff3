/**
 * What the cluster suites share (cluster, cluster-marks, rolling-restart*): a private redis-server with an
 * admin client, started before the file's tests and stopped after them, a node-to-node secret file, and
 * the rolling-restart suites' no-loss check.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect } from "vitest";
import type { Element } from "./client.js";
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

const NS_DELAY = "urn:xmpp:delay";

/**
 * The rolling-restart suites' no-loss check for one session of a client that was redirected and rejoined
 * its room with `<history since>`: `before` the room's messages it got live before the redirect, `after`
 * those from the rejoin on. Every posted message once, but the protocol's boundary: a message seen before
 * may come again only as a history copy (`<delay/>`) stamped no earlier than the `since` asked for.
 */
export function expectNoLoss(who: string, before: Element[], after: Element[], since: string, posted: string[]): void {
  const beforeBodies = before.map((el) => el.getChildText("body"));
  const afterBodies = after.map((el) => el.getChildText("body"));
  // nothing after the rejoin twice; before the restart each once (live)
  expect(new Set(afterBodies).size, who).toBe(afterBodies.length);
  expect(new Set(beforeBodies).size, who).toBe(beforeBodies.length);
  expect([...new Set([...beforeBodies, ...afterBodies])].sort(), who).toEqual([...posted].sort());
  // the restart happened while bob was posting: some messages reached this session only after its rejoin
  expect(afterBodies.some((b) => !beforeBodies.includes(b)), who).toBe(true);
  for (const el of after) {
    if (!beforeBodies.includes(el.getChildText("body"))) continue;
    const stamp = el.getChild("delay", NS_DELAY)?.attrs.stamp as string | undefined;
    expect(stamp, `${who}: ${el.toString()}`).toBeDefined();
    expect(Date.parse(stamp!), `${who}: ${el.toString()}`).toBeGreaterThanOrEqual(Date.parse(since));
  }
}
