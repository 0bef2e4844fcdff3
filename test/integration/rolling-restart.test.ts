/**
 * Rolling restart of a cluster node (issue 16, docs/architecture.md §8.7 "Rolling restart"), against the
 * real servers with three proxy processes and a private redis-server: at SIGTERM, every authenticated
 * client of the stopping node gets `<see-other-host/>` (RFC 6120 §4.9.3.19) naming the live peer its
 * account hashes to, on the port of the client's own transport; the node's leases are released at once;
 * @xmpp/client follows the redirect by itself and the test client rejoins its room with `<history since>`.
 * While this happens another account posts to the room without pause.
 *
 * "No message lost, duplicates only as the protocol allows", precisely: each session ends up with every
 * message posted; a message it got twice was first received live before the redirect and came again as
 * a history copy (`<delay/>`) with a stamp no earlier than the `since` it asked for — XEP-0045 §7.2.15
 * gives whole messages since a time, and the client's `since` is a second early to be safe about the
 * server's whole-second stamps. Nothing received after the rejoin is repeated.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { Redis } from "ioredis";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { createRoom, groupchat, isSelfPresence, join, NS_MUC, sleep, uniqueRoom } from "../support/muc.js";
import { upstreamServers, type ProvidedUpstream } from "../support/servers.js";
import { type RedisServer } from "../support/redis.js";
import { clusterSecretFile, expectNoLoss, useRedis } from "../support/cluster.js";
import { until } from "../support/poll.js";
import { pickFreePort } from "../../proxy/local-upstream.js";
import { choosePeer } from "../../core/cluster/redirect.js";
import { join as joinPath } from "node:path";

const cert = inject("proxyCert");
const TTL_S = 3;
const NS_STREAMS = "http://etherx.jabber.org/streams";
const NS_DELAY = "urn:xmpp:delay";

let redis: RedisServer;
let admin: Redis;
const secretFile = clusterSecretFile("minimix-rolling-secret");

const suiteRedis = useRedis();
beforeAll(() => {
  redis = suiteRedis.server;
  admin = suiteRedis.admin;
});

/** A session that follows redirects and rejoins `room` with <history since> its last live message each time it is online again. */
interface Follower {
  c: TestClient;
  /** The <see-other-host/> texts and <system-shutdown/>s it received, in order. */
  streamErrors: string[];
  /** Index in c.received where each (re)join's answers start, and the since it asked for. */
  rejoins: { at: number; since: string }[];
}

describe.each(upstreamServers())("rolling restart ($kind)", (up: ProvidedUpstream) => {
  const procs: ProxyProcess[] = [];
  const clients: TestClient[] = [];
  let bob: TestClient;

  async function node(id: string, o: { clientAddress?: boolean } = {}): Promise<ProxyProcess> {
    const p = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug",
      extraArgs: ["--cluster-redis", redis.url, "--node-id", id, "--cluster-lease-ttl", String(TTL_S), "--bookmarks", "ignore",
        "--cluster-advertise", `127.0.0.1:${await pickFreePort()}`, "--cluster-secret-file", secretFile,
        ...(o.clientAddress === false ? [] : ["--cluster-client-address", "127.0.0.1"])] });
    procs.push(p);
    return p;
  }

  /** alice on `p` (STARTTLS or direct TLS), in `room`; rejoins with <history since> whenever it is online again. */
  async function follower(p: ProxyProcess, resource: string, transport: "starttls" | "direct", room: string): Promise<Follower> {
    const c = await connectClient({ port: transport === "direct" ? p.tlsPort : p.port, transport, username: "alice", password: "alicepass", resource, sm: false });
    clients.push(c);
    const f: Follower = { c, streamErrors: [], rejoins: [] };
    c.xmpp.prependListener("element", (el: Element) => {
      if (!el.is("error", NS_STREAMS)) return;
      const soh = el.getChild("see-other-host");
      f.streamErrors.push(soh ? `see-other-host ${soh.getText()}` : (el.children.find((x) => typeof x !== "string") as Element | undefined)?.name ?? "?");
    });
    c.xmpp.on("online", () => {
      // as a client without MAM does: since the last live message it saw, a second early (whole-second stamps)
      const live = c.received.filter((el) => el.is("message") && el.attrs.type === "groupchat" && el.getChild("delay", NS_DELAY) === undefined);
      const last = receivedAt.get(live.at(-1)!) ?? Date.now();
      const since = new Date(Math.floor(last / 1000) * 1000 - 1000).toISOString();
      f.rejoins.push({ at: c.received.length, since });
      void c.send(xml("presence", { to: `${room}/alice-${resource}` }, xml("x", { xmlns: NS_MUC }, xml("history", { since })))).catch(() => undefined);
    });
    c.xmpp.on("stanza", (el: Element) => receivedAt.set(el, Date.now()));
    expect(isSelfPresence(await join(c, room, `alice-${resource}`, { history: { maxstanzas: "0" } }), room)).toBe(true);
    return f;
  }
  const receivedAt = new WeakMap<Element, number>();

  const bodies = (c: TestClient, room: string, from = 0): Element[] =>
    c.received.slice(from).filter((el) => el.is("message") && el.attrs.type === "groupchat" && String(el.attrs.from) === `${room}/bob` && el.getChildText("body") !== null);

  beforeEach(async () => {
    await admin.flushall();
    bob = await connectClient({ port: up.port, username: "bob", password: "bobpass", resource: `rolling-${Date.now()}` });
    clients.push(bob);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(procs.splice(0).map((p) => p.stop()));
  });

  it("SIGTERM: both sessions of the account are sent to the same live peer (its port of each one's transport), rejoin with <history since>, and get every message exactly once but the protocol's boundary repeats", async () => {
    const ids = ["r1", "r2", "r3"].map((n) => `${up.kind}-${n}`);
    const [n1, n2, n3] = [await node(ids[0]!), await node(ids[1]!), await node(ids[2]!)] as [ProxyProcess, ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "rolling");
    await createRoom(bob, room, "bob");
    const phone = await follower(n1, "phone", "starttls", room);
    const laptop = await follower(n1, "laptop", "direct", room);
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    // the peers' heartbeats carry their client addresses
    for (let i = 0; ; i++) {
      const raw = await admin.mget(`minimix:node:${ids[1]}`, `minimix:node:${ids[2]}`);
      if (raw.every((r) => r !== null && r.includes("\"client\":{"))) break;
      if (i > 100) throw new Error("the peers published no client address");
      await sleep(100);
    }
    const target = choosePeer(`alice@${up.domain}`, [{ id: ids[1]!, client: { host: "x", ports: {} } }, { id: ids[2]!, client: { host: "x", ports: {} } }])!.id;
    const [to, other] = target === ids[1] ? [n2, n3] : [n3, n2];

    // bob posts without pause, before, during and after the restart (16 messages: within both servers' room history of 20)
    const N = 16;
    const posted: string[] = [];
    let stopAt = 0;
    const posting = (async () => {
      for (let i = 1; i <= N; i++) {
        const body = `m${String(i).padStart(2, "0")}`;
        await groupchat(bob, room, body);
        posted.push(body);
        if (i === 6) stopAt = Date.now();
        await sleep(300); // the first messages are older than the since the clients ask for: not repeated
      }
    })();
    await until("the sixth message was posted", () => stopAt > 0, 20_000);
    const stopped = n1.stop("SIGTERM");
    await until("both redirected", () => phone.streamErrors.length > 0 && laptop.streamErrors.length > 0, 10_000);
    await stopped;
    expect(phone.streamErrors).toEqual([`see-other-host 127.0.0.1:${to.port}`]);
    expect(laptop.streamErrors).toEqual([`see-other-host 127.0.0.1:${to.tlsPort}`]);
    await posting;

    for (const f of [phone, laptop]) {
      await until(`${f.c.jid} has every message`, () => posted.every((b) => bodies(f.c, room).some((el) => el.getChildText("body") === b)), 30_000);
    }
    await sleep(1000); // anything repeated late would show now
    for (const f of [phone, laptop]) {
      expect(f.rejoins).toHaveLength(1);
      const { at, since } = f.rejoins[0]!;
      const before = bodies(f.c, room, 0).slice(0, bodies(f.c, room, 0).length - bodies(f.c, room, at).length);
      const after = bodies(f.c, room, at);
      expectNoLoss(f.c.jid, before, after, since, posted);
    }
    // the account went to the chosen node, at once (released, not taken over) and without forwarding; the other node never saw it
    expect(to.logs().find((l) => l.code === "LEASE_ACQUIRED")?.previous).toBeUndefined();
    expect(to.logs().some((l) => l.code === "FORWARDED")).toBe(false);
    expect(other.logs().some((l) => l.msg === "authenticated")).toBe(false);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${to === n2 ? ids[1] : ids[2]}:`));
    expect(n1.logs().find((l) => l.msg === "stopped")?.redirected).toBe(2);
  });

  it("SIGTERM: a session forwarded to the stopping owner from another node is sent on by the transport its client used there", async () => {
    const ids = ["f1", "f2", "f3"].map((n) => `${up.kind}-${n}`);
    const [n1, n2, n3] = [await node(ids[0]!), await node(ids[1]!), await node(ids[2]!)] as [ProxyProcess, ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "rolling");
    await createRoom(bob, room, "bob");
    const phone = await follower(n1, "phone", "starttls", room);
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    await n2.waitForLog((l) => l.msg === "cluster: client address published");
    await n3.waitForLog((l) => l.msg === "cluster: client address published");
    const laptop = await follower(n2, "laptop", "direct", room); // direct TLS to n2, forwarded to the owner n1
    expect(n2.logs().some((l) => l.code === "FORWARDED")).toBe(true);
    const target = choosePeer(`alice@${up.domain}`, [{ id: ids[1]!, client: { host: "x", ports: {} } }, { id: ids[2]!, client: { host: "x", ports: {} } }])!.id;
    const to = target === ids[1] ? n2 : n3;
    await n1.stop("SIGTERM");
    await until("both redirected", () => phone.streamErrors.length > 0 && laptop.streamErrors.length > 0);
    expect(phone.streamErrors).toEqual([`see-other-host 127.0.0.1:${to.port}`]);
    expect(laptop.streamErrors).toEqual([`see-other-host 127.0.0.1:${to.tlsPort}`]);
    expect(n1.logs().find((l) => l.msg === "stopped")?.redirected).toBe(2);
    await until("both rejoined", () => phone.rejoins.length === 1 && laptop.rejoins.length === 1, 20_000);
    await groupchat(bob, room, "after the restart");
    for (const f of [phone, laptop]) await f.c.waitFor((el) => el.getChildText("body") === "after the restart", 20_000);
  });

  it("SIGTERM with no peer that published a client address: <system-shutdown/> (a load balancer decides where clients go)", async () => {
    const n1 = await node(`${up.kind}-s1`);
    await node(`${up.kind}-s2`, { clientAddress: false });
    const room = uniqueRoom(up.muc, "rolling");
    await createRoom(bob, room, "bob");
    const phone = await follower(n1, "phone", "starttls", room);
    await n1.stop("SIGTERM");
    await until("told", () => phone.streamErrors.length > 0);
    expect(phone.streamErrors).toEqual(["system-shutdown"]);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toBeNull();
    expect(n1.logs().find((l) => l.msg === "stopped")?.redirected).toBe(0);
  });

  it("SIGTERM while Redis does not answer: <system-shutdown/> (the peers are not known)", async () => {
    const n1 = await node(`${up.kind}-d1`);
    const n2 = await node(`${up.kind}-d2`);
    const room = uniqueRoom(up.muc, "rolling");
    await createRoom(bob, room, "bob");
    const phone = await follower(n1, "phone", "starttls", room);
    await n2.waitForLog((l) => l.msg === "cluster: client address published");
    await redis.halt();
    try {
      await n1.stop("SIGTERM");
      await until("told", () => phone.streamErrors.length > 0);
      expect(phone.streamErrors).toEqual(["system-shutdown"]);
    } finally {
      await redis.start();
      await until("admin reconnected", () => admin.status === "ready");
    }
  });
});
