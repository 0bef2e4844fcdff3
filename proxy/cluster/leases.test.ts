import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { LeaseKeeper } from "./leases.js";
import type { AcquireAnswer, LeaseBackend, NodeInfo } from "./redis.js";

/** In-memory Redis stand-in with a switch for "unreachable". */
class FakeBackend implements LeaseBackend {
  down = false;
  counter = 0;
  readonly store = new Map<string, string>();
  renews = 0;
  private check(): void {
    if (this.down) throw new Error("Connection is closed.");
  }
  async acquire(account: string, nodeId: string): Promise<AcquireAnswer> {
    this.check();
    const cur = this.store.get(account);
    if (cur !== undefined) return { kind: "held", value: cur, remainingMs: 4000 };
    const token = ++this.counter;
    this.store.set(account, `${nodeId}:${token}`);
    return { kind: "granted", value: `${nodeId}:${token}`, token, previous: undefined };
  }
  async renew(account: string, value: string): Promise<boolean> {
    this.check();
    this.renews++;
    return this.store.get(account) === value;
  }
  async release(account: string, value: string): Promise<boolean> {
    this.check();
    if (this.store.get(account) !== value) return false;
    this.store.delete(account);
    return true;
  }
  readonly beats: NodeInfo[] = [];
  left: string[] = [];
  async heartbeat(node: NodeInfo): Promise<void> {
    this.check();
    this.beats.push(node);
  }
  async nodes(): Promise<NodeInfo[]> {
    return [];
  }
  async leave(nodeId: string): Promise<void> {
    this.left.push(nodeId);
  }
  async holder(account: string): Promise<string | undefined> {
    return this.store.get(account);
  }
}

const lines: string[] = [];
const sink = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
const log = createLogger("debug", sink);
let clock = 0;
const keepers: LeaseKeeper[] = [];
function keeper(b: FakeBackend, nodeId = "n1", inUse?: (a: string) => boolean): LeaseKeeper {
  const k = new LeaseKeeper(b, { nodeId, ttlMs: 9000, log, now: () => clock, ...(inUse ? { inUse } : {}) });
  keepers.push(k);
  return k;
}
const codes = (): string[] => lines.map((l) => (JSON.parse(l) as { code?: string }).code ?? "").filter((c) => c !== "");

afterEach(async () => {
  for (const k of keepers.splice(0)) await k.stop();
  lines.length = 0;
  clock = 0;
});

describe("LeaseKeeper", () => {
  it("one owner: a second node is told who holds the account and when to retry", async () => {
    const b = new FakeBackend();
    const a = await keeper(b, "n1").acquire("alice@x", () => undefined);
    expect(a.kind).toBe("held");
    const other = await keeper(b, "n2").acquire("alice@x", () => undefined);
    expect(other).toEqual({ kind: "elsewhere", owner: "n1", retryMs: 3000 });
  });

  it("acquiring a lease it holds confirms it with Redis (compare-and-extend)", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    const first = await k.acquire("alice@x", () => undefined);
    const again = await k.acquire("alice@x", () => undefined);
    expect(b.renews).toBe(1);
    expect(again.kind === "held" && first.kind === "held" && again.lease === first.lease).toBe(true);
  });

  it("a lease taken over (the key holds another value) is lost at the next renewal, onLost once", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    const lost: string[] = [];
    const r = await k.acquire("alice@x", (why) => lost.push(why));
    b.store.set("alice@x", "n2:99");
    const again = await k.acquire("alice@x", (why) => lost.push(why));
    expect(again.kind).toBe("elsewhere");
    expect(lost).toEqual(["taken"]);
    expect(r.kind === "held" && r.lease.valid()).toBe(false);
    expect(codes()).toContain("LEASE_LOST");
  });

  it("invalid by the local clock once the deadline passed (a paused node), even with no answer from Redis", async () => {
    const b = new FakeBackend();
    const r = await keeper(b).acquire("alice@x", () => undefined);
    if (r.kind !== "held") throw new Error("not held");
    clock = 7199;
    expect(r.lease.valid()).toBe(true);
    clock = 7200;
    expect(r.lease.valid()).toBe(false);
  });

  it("Redis down at acquire: unavailable, retry in a second, logged once as REDIS_DOWN; back: REDIS_BACK", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    b.down = true;
    expect(await k.acquire("alice@x", () => undefined)).toEqual({ kind: "unavailable", reason: "Connection is closed.", retryMs: 1000 });
    await k.acquire("bob@x", () => undefined);
    expect(codes().filter((c) => c === "REDIS_DOWN")).toHaveLength(1);
    expect(k.redisReachable).toBe(false);
    b.down = false;
    expect((await k.acquire("alice@x", () => undefined)).kind).toBe("held");
    expect(codes()).toContain("REDIS_BACK");
  });

  it("Redis lost while a lease is held: kept until its deadline, then lost (expired); a confirm meanwhile says unavailable", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    const lost: string[] = [];
    const r = await k.acquire("alice@x", (why) => lost.push(why));
    if (r.kind !== "held") throw new Error("not held");
    b.down = true;
    clock = 3000;
    expect((await k.acquire("alice@x", (why) => lost.push(why))).kind).toBe("unavailable");
    expect(r.lease.valid()).toBe(true);
    expect(lost).toEqual([]);
    clock = 7300;
    await (k as unknown as { tick(): Promise<void> }).tick();
    expect(lost).toEqual(["expired"]);
    expect(k.heldCount).toBe(0);
  });

  it("release is compare-and-delete; a release Redis did not get leaves the key to expire", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    await k.acquire("alice@x", () => undefined);
    await k.release("alice@x");
    expect(b.store.has("alice@x")).toBe(false);
    await k.acquire("bob@x", () => undefined);
    b.down = true;
    await k.release("bob@x");
    expect(b.store.get("bob@x")).toBe("n1:2");
    expect(k.heldCount).toBe(0);
  });

  it("claim at a login: takes a free account; another node's claim learns the owner (to forward to)", async () => {
    const b = new FakeBackend();
    const k1 = keeper(b, "n1");
    expect(await k1.claim("alice@x")).toBeUndefined();
    expect(k1.holds("alice@x")).toBe(true);
    const k2 = keeper(b, "n2");
    (k2 as unknown as { knownNodes: { id: string; advertise: string }[] }).knownNodes = [{ id: "n1", advertise: "10.0.0.1:5299" }];
    expect(await k2.claim("alice@x")).toEqual({ id: "n1", advertise: "10.0.0.1:5299" });
    expect(k2.holds("alice@x")).toBe(false);
  });

  it("a lease whose account is not in use here for 30 s is released (a claim whose login failed)", async () => {
    const b = new FakeBackend();
    let used = true;
    const k = keeper(b, "n1", () => used);
    await k.claim("alice@x");
    const tick = (): Promise<void> => (k as unknown as { tick(): Promise<void> }).tick();
    used = false;
    clock = 1000;
    await tick();
    expect(k.holds("alice@x")).toBe(true);
    clock = 2000;
    used = true;
    await tick(); // in use again: the count starts afresh
    used = false;
    clock = 3000;
    await tick();
    // ticks as the timer makes them: renewals keep the lease alive meanwhile
    for (clock = 4000; clock <= 3000 + 29_000; clock += 1000) {
      await tick();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(b.store.has("alice@x")).toBe(true);
    expect(k.holds("alice@x")).toBe(true);
    clock = 3000 + 30_000;
    await tick();
    await new Promise((r) => setTimeout(r, 0));
    expect(b.store.has("alice@x")).toBe(false);
    expect(k.heldCount).toBe(0);
  });

  it("forget: a lease its holder found invalid is dropped without onLost", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    const lost: string[] = [];
    const r = await k.acquire("alice@x", (why) => lost.push(why));
    if (r.kind !== "held") throw new Error("not held");
    k.forget("alice@x", r.lease);
    clock = 10_000;
    await (k as unknown as { tick(): Promise<void> }).tick();
    expect(lost).toEqual([]);
    expect(k.stats.lost).toBe(1);
  });

  it("publishes its client address with a heartbeat at once; withdraw() removes the heartbeat and sends no more, the leases stay held and renewed", async () => {
    const b = new FakeBackend();
    const k = keeper(b);
    k.start();
    await until(() => b.beats.length === 1);
    expect(b.beats[0]!.client).toBeUndefined();
    k.publishClientAddress({ host: "n1.example", ports: { starttls: 5222 } });
    await until(() => b.beats.length === 2);
    expect(b.beats[1]).toEqual({ id: "n1", advertise: undefined, client: { host: "n1.example", ports: { starttls: 5222 } } });
    expect((await k.acquire("alice@x", () => undefined)).kind).toBe("held");
    await k.withdraw();
    expect(b.left).toEqual(["n1"]);
    clock += 3500; // past a renewal period: the lease is renewed, no heartbeat is sent
    const renews = b.renews;
    await until(() => b.renews > renews);
    expect(b.beats).toHaveLength(2);
    expect(k.holds("alice@x")).toBe(true);
  });
});

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(pred()).toBe(true);
}
