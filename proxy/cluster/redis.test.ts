/** The Lua lease commands against a real redis-server (test/support/redis.ts). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { startRedis, type RedisServer } from "../../test/support/redis.js";
import { connectRedis, RedisLeaseBackend } from "./redis.js";
import { redactedUrl } from "./cluster.js";

let server: RedisServer;
let redis: Redis;
let b: RedisLeaseBackend;

beforeAll(async () => {
  server = await startRedis();
  redis = await connectRedis(server.url, 3000);
  b = new RedisLeaseBackend(redis);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe("RedisLeaseBackend", () => {
  it("acquire: SET NX PX with a token from INCR; a second node sees the holder and the remaining TTL", async () => {
    const a = await b.acquire("alice@x", "n1", 5000);
    expect(a.kind).toBe("granted");
    if (a.kind !== "granted") return;
    expect(a.value).toBe(`n1:${a.token}`);
    const other = await b.acquire("alice@x", "n2", 5000);
    expect(other.kind).toBe("held");
    if (other.kind === "held") {
      expect(other.value).toBe(a.value);
      expect(other.remainingMs).toBeGreaterThan(4000);
      expect(other.remainingMs).toBeLessThanOrEqual(5000);
    }
    const next = await b.acquire("bob@x", "n2", 5000);
    expect(next.kind === "granted" && next.token > a.token).toBe(true);
  });

  it("renew is compare-and-extend, release compare-and-delete", async () => {
    const a = await b.acquire("carol@x", "n1", 2000);
    if (a.kind !== "granted") throw new Error("not granted");
    expect(await b.renew("carol@x", "n2:1", 60_000)).toBe(false);
    expect(await redis.pttl("minimix:lease:carol@x")).toBeLessThanOrEqual(2000);
    expect(await b.renew("carol@x", a.value, 60_000)).toBe(true);
    expect(await redis.pttl("minimix:lease:carol@x")).toBeGreaterThan(50_000);
    expect(await b.release("carol@x", "n2:1")).toBe(false);
    expect(await b.release("carol@x", a.value)).toBe(true);
    expect(await b.renew("carol@x", a.value, 1000)).toBe(false);
  });

  it("an expired lease can be taken by another node", async () => {
    const a = await b.acquire("dave@x", "n1", 1000);
    expect(a.kind).toBe("granted");
    await new Promise((r) => setTimeout(r, 1200));
    const c = await b.acquire("dave@x", "n2", 1000);
    expect(c.kind).toBe("granted");
  });

  it("heartbeats list the live nodes; leave removes one", async () => {
    await b.heartbeat({ id: "n1", advertise: "10.0.0.1:5999" }, 5000);
    await b.heartbeat({ id: "n2", advertise: undefined }, 5000);
    expect(await b.nodes()).toEqual([{ id: "n1", advertise: "10.0.0.1:5999" }, { id: "n2", advertise: undefined }]);
    await b.leave("n1");
    expect((await b.nodes()).map((n) => n.id)).toEqual(["n2"]);
  });

  it("a heartbeat carries the node's client address (--cluster-client-address); a malformed one is ignored, the node still alive", async () => {
    await b.heartbeat({ id: "c1", advertise: undefined, client: { host: "2001:db8::1", ports: { starttls: 5222, "direct-tls": 5223 }, ws: "wss://[2001:db8::1]:5281/xmpp-websocket" } }, 5000);
    // a ws: URI is ignored (a wss client never follows it, RFC 7395 §3.6.1)
    await redis.set("minimix:node:c2", JSON.stringify({ advertise: null, client: { host: "h", ports: { starttls: "x", "direct-tls": 70000 }, ws: "ws://h/x" } }), "PX", 5000);
    await redis.sadd("minimix:nodes", "c2");
    await redis.set("minimix:node:c3", JSON.stringify({ advertise: null, client: "h:1" }), "PX", 5000);
    await redis.sadd("minimix:nodes", "c3");
    const nodes = (await b.nodes()).filter((n) => n.id.startsWith("c"));
    expect(nodes).toEqual([
      { id: "c1", advertise: undefined, client: { host: "2001:db8::1", ports: { starttls: 5222, "direct-tls": 5223 }, ws: "wss://[2001:db8::1]:5281/xmpp-websocket" } },
      { id: "c2", advertise: undefined, client: { host: "h", ports: {} } },
      { id: "c3", advertise: undefined },
    ]);
    for (const id of ["c1", "c2", "c3"]) await b.leave(id);
  });

  it("a command while Redis is down fails fast (no offline queue), and the client reconnects by itself", async () => {
    await server.halt();
    const t0 = Date.now();
    await expect(b.acquire("erin@x", "n1", 5000)).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(3000);
    await server.start();
    for (let i = 0; i < 60 && redis.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await b.acquire("erin@x", "n1", 5000)).kind).toBe("granted");
  });

  it("AOF persistence: leases and the fencing counter survive a restart", async () => {
    const a = await b.acquire("frank@x", "n1", 30_000);
    if (a.kind !== "granted") throw new Error("not granted");
    await server.restart();
    for (let i = 0; i < 60 && redis.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await b.renew("frank@x", a.value, 30_000)).toBe(true);
    const n = await b.acquire("gina@x", "n1", 30_000);
    expect(n.kind === "granted" && n.token > a.token).toBe(true);
  });

  it("connectRedis rejects when nothing answers; the URL's password is never logged", async () => {
    await expect(connectRedis("redis://127.0.0.1:1", 1000)).rejects.toThrow();
    expect(redactedUrl("redis://user:s3cret@h:6379/0")).toBe("redis://user:***@h:6379/0");
    expect(redactedUrl("redis://:s3cret@h:6379")).toBe("redis://:***@h:6379");
    expect(redactedUrl("redis://h:6379")).toBe("redis://h:6379");
  });
});
