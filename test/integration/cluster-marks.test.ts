/**
 * The Redis room-mark store of a cluster (issue 16, docs/architecture.md §8.7 and §4.6) with a real
 * redis-server and a bookmark-followed room: the mark node A writes for an autojoin room reaches node B
 * after A dies, so B's rejoin asks `<history since>` that mark. Each server kind runs privately here
 * (users dora and bob), as in bookmarks.test.ts: an autojoin bookmark of a shared test user would pull
 * other suites' proxies into the room. Bob is straight on the server and posts.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { Redis } from "ioredis";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { codes, createRoom, groupchat, groupchatsWithBody, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";
import { upstreamServers } from "../support/servers.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { type RedisServer } from "../support/redis.js";
import { clusterSecretFile, useRedis } from "../support/cluster.js";
import { until } from "../support/poll.js";
import { NS_BM, NS_PUBSUB, publishBookmark } from "../support/bookmarks.js";

const cert = inject("proxyCert");
const TTL_S = 3;

let redis: RedisServer;
let admin: Redis;
const suiteRedis = useRedis();
beforeAll(() => {
  redis = suiteRedis.server;
  admin = suiteRedis.admin;
});

describe.each(upstreamServers())("cluster room marks in Redis ($kind)", (shared) => {
  let up: Upstream;
  let dir: string;
  const procs: ProxyProcess[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(joinPath(tmpdir(), `minimix-cluster-marks-${shared.kind}-`));
    cpSync(joinPath(shared.dir, "certs"), joinPath(dir, "certs"), { recursive: true });
    up = await startUpstream(shared.kind, { dir, users: "dora:dorapass bob:bobpass" });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all(procs.map((p) => p.stop()));
    await up?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await admin.flushall();
  });
  /** The scenario's bookmark, retracted after it: the next scenario's account must follow only its own room. */
  let bookmarked: { setter: TestClient; room: string } | undefined;
  afterEach(async () => {
    if (bookmarked) {
      await bookmarked.setter.xmpp.iqCaller.set(xml("pubsub", { xmlns: NS_PUBSUB }, xml("retract", { node: NS_BM, notify: "true" }, xml("item", { id: bookmarked.room }))));
      bookmarked = undefined;
    }
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(procs.splice(0).map((p) => p.stop()));
  });

  async function node(id: string): Promise<ProxyProcess> {
    const p = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug",
      extraArgs: ["--cluster-redis", redis.url, "--node-id", id, "--cluster-lease-ttl", String(TTL_S), "--bookmarks", "follow"] });
    procs.push(p);
    return p;
  }
  async function connect(port: number, user: "dora" | "bob", resource: string): Promise<TestClient> {
    // a server just started may refuse the first logins for a moment (ejabberd): a client tries again, bounded
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await connectClient({ port, username: user, password: `${user}pass`, resource });
        clients.push(c);
        return c;
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(500);
      }
    }
  }

  it("node A's mark of an autojoin room reaches node B after A dies: B's rejoin asks <history since> it (what was posted meanwhile arrives, older messages do not)", () => scenario(false), 120_000);

  it("the same when B held a session of the account all along (waiting for the lease, not forwarded): B reads the mark when it takes the account, not the one it read at that session's login", () => scenario(true), 120_000);

  async function scenario(laptopOnB: boolean): Promise<void> {
    const account = `dora@${up.domain}`;
    const room = uniqueRoom(up.muc, "marks");
    const bob = await connect(up.port, "bob", "marks");
    for (let attempt = 1; ; attempt++) {
      try {
        await createRoom(bob, room, "bob");
        break;
      } catch (e) {
        if (attempt >= 3) throw e; // ejabberd may load its MUC a moment after c2s
        await sleep(500);
      }
    }
    const setter = await connect(up.port, "dora", "setter");
    await publishBookmark(setter, room, true, "dora", shared.kind);
    bookmarked = { setter, room };

    const a = await node(`${shared.kind}-ma`);
    const b = await node(`${shared.kind}-mb`);
    const phoneA = await connect(a.port, "dora", "phone");
    await until("the account joined through A", () => occupantsSeen(bob, room).has("dora"), 20_000);
    // a session of the account on B before A wrote any mark: B's account layer for dora exists from now on
    if (laptopOnB) {
      await connect(b.port, "dora", "laptop");
      await b.waitForLog((l) => l.msg === "bookmarks fetched", 20_000);
    }
    await groupchat(bob, room, "long before the kill");
    await bob.waitFor((el) => el.getChildText("body") === "long before the kill");
    await sleep(6500); // more than the 5 s margin the rejoin's <history since> leaves before the mark
    await groupchat(bob, room, "before the kill");
    await bob.waitFor((el) => el.getChildText("body") === "before the kill");
    const lastSeenAbout = Date.now();
    void phoneA; // dora's phone keeps the account in use on A; it joins no room itself
    // A writes its marks on its 5 s tick: into Redis, not under its --state-dir
    let mark = 0;
    await until("A's mark in Redis", () => {
      void admin.hget(`minimix:marks:${account}`, room).then((v) => (mark = Number(v ?? 0)));
      return mark > lastSeenAbout - 2000;
    }, 15_000);

    a.child.kill("SIGKILL");
    await a.stop();
    await bob.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" && el.attrs.from === `${room}/dora`, 30_000)
      .catch(() => undefined); // the server notices the dead stream when its socket closes
    await groupchat(bob, room, "while no node held the account");
    await bob.waitFor((el) => el.getChildText("body") === "while no node held the account");

    // dora logs in on B: B reads the mark from Redis, takes the account over once A's lease expired and rejoins since the mark
    const phoneB = await connect(b.port, "dora", "phone");
    await until("B fetched the bookmarks at this login", () => b.logs().filter((l) => l.msg === "bookmarks fetched" && l.autojoin === 1).length >= 1, 20_000);
    await b.waitForLog((l) => l.code === "LEASE_ACQUIRED", 20_000);
    expect(b.logs().some((l) => l.msg === "room marks not read: bookmarked rooms are rejoined with the rooms' default history")).toBe(false);
    await until("the account is back", () => occupantsSeen(bob, room).has("dora"), 20_000);
    const self = await join(phoneB, room, "dora", { history: { maxstanzas: "50" } });
    expect(codes(self)).toContain("110");
    await phoneB.waitFor((el) => el.getChildText("body") === "while no node held the account", 15_000);
    expect(groupchatsWithBody(phoneB, room, "while no node held the account")).toHaveLength(1);
    expect(groupchatsWithBody(phoneB, room, "before the kill")).toHaveLength(1);
    // B asked only since the mark (less the margin): the message long before it is not in B's buffer
    expect(groupchatsWithBody(phoneB, room, "long before the kill")).toHaveLength(0);
    // and B keeps the mark up to date in Redis
    const before = mark;
    await until("B moved the mark on", () => {
      void admin.hget(`minimix:marks:${account}`, room).then((v) => (mark = Number(v ?? 0)));
      return mark > before;
    }, 15_000);
  }
});
