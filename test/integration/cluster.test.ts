/**
 * Several proxy nodes on one Redis (issue 16, docs/architecture.md §8.7), against the real servers:
 * three proxy processes with --cluster-redis and one private redis-server (test/support/redis.ts).
 *
 * What is tested here is slice 1, the lease: one account session per account across the nodes (the
 * other nodes' sessions of the account wait for the lease: forwarding them to the owner is not built
 * yet), the same account-session resource on every node, takeover after the owner's SIGKILL, fencing
 * of an owner paused (SIGSTOP) past its lease, a Redis restart, and a Redis that is down at start.
 * Bob is straight on the server and owns each room (non-anonymous: he sees the occupants' real JIDs).
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { Redis } from "ioredis";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type LogLine, type ProxyProcess } from "../support/proxy-process.js";
import { createRoom, groupchat, groupchatsWithBody, isSelfPresence, join, NS_MUC, NS_MUC_USER, sleep, uniqueRoom } from "../support/muc.js";
import { serverAgnosticBlocks, upstreamServers, type ProvidedUpstream } from "../support/servers.js";
import { type RedisServer } from "../support/redis.js";
import { clusterSecretFile, useRedis } from "../support/cluster.js";
import { until } from "../support/poll.js";
import { pickFreePort } from "../../proxy/local-upstream.js";
import { writeFileSync } from "node:fs";
import { dirname, join as joinPath } from "node:path";
import { randomBytes } from "node:crypto";
import { scramLogin } from "../support/scram-login.js";
import { connectWsClient } from "../support/ws-client.js";

const cert = inject("proxyCert");
const TTL_S = 3;

let redis: RedisServer;
let admin: Redis;
const secretFile = clusterSecretFile("minimix-cluster-secret");
const secretDir = dirname(secretFile);

const suiteRedis = useRedis();
beforeAll(() => {
  redis = suiteRedis.server;
  admin = suiteRedis.admin;
});

/** The real JIDs of the occupants with nick `nick` that `observer` currently sees in `room`. */
function realJids(observer: TestClient, room: string, nick: string): string[] {
  const present = new Map<string, string>();
  for (const el of observer.received) {
    if (!el.is("presence") || el.attrs.from !== `${room}/${nick}`) continue;
    const jid = String(el.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid ?? "?");
    if (el.attrs.type === "unavailable") present.clear();
    else present.set(jid, jid);
  }
  return [...present.keys()];
}

const logs = (p: ProxyProcess, code: string): LogLine[] => p.logs().filter((l) => l.code === code);

describe.runIf(serverAgnosticBlocks())("cluster: Redis down at start", () => {
  it("a node that cannot reach --cluster-redis does not start (exit 1, the reason logged, no password)", async () => {
    const up = upstreamServers()[0]!;
    const err = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--cluster-redis", "redis://:hunter2@127.0.0.1:1", "--node-id", "lonely"] }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/exited with 1 during start-up/);
    expect(err?.message).toMatch(/cluster: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 unreachable/);
    expect(err?.message).not.toContain("hunter2");
  });
});

describe.each(upstreamServers())("cluster of three nodes ($kind)", (up: ProvidedUpstream) => {
  let nodes: ProxyProcess[] = [];
  const clients: TestClient[] = [];
  let bob: TestClient;

  /** A node; `forward` false: no --cluster-advertise/--cluster-secret-file (sessions of accounts owned elsewhere wait). */
  async function node(id: string, o: { joinTimeoutS?: number; forward?: boolean; secret?: string } = {}): Promise<ProxyProcess> {
    const fwd = o.forward === false ? [] : ["--cluster-advertise", `127.0.0.1:${await pickFreePort()}`, "--cluster-secret-file", o.secret ?? secretFile];
    return startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug",
      extraArgs: ["--cluster-redis", redis.url, "--node-id", id, "--cluster-lease-ttl", String(TTL_S), "--join-timeout", String(o.joinTimeoutS ?? 30), "--bookmarks", "ignore",
        // the account session (started at a client's login) closes with the account's last session and room, and
        // with it the lease goes: these tests are about who holds it, not about the linger (docs/architecture.md §4.1)
        "--account-session-linger", "0", ...fwd] });
  }
  async function alice(p: ProxyProcess, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: p.port, username: "alice", password: "alicepass", resource });
    clients.push(c);
    return c;
  }
  /** Sends a join and resolves once the self-presence (or an error) arrives, however long the lease takes. */
  async function joinSlow(c: TestClient, room: string, nick: string, timeoutMs = 25_000, history: Record<string, string> = { maxstanzas: "0" }): Promise<Element> {
    await c.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS_MUC }, xml("history", history))));
    return c.waitFor((el) => el.is("presence") && String(el.attrs.from).startsWith(`${room}/`) && (isSelfPresence(el, room) || el.attrs.type === "error"), timeoutMs);
  }

  beforeEach(async () => {
    await admin.flushall();
    // the lease tests run without forwarding: they are about who holds the account session
    nodes = await Promise.all(["n1", "n2", "n3"].map((id) => node(`${up.kind}-${id}`, { forward: false })));
    bob = await connectClient({ port: up.port, username: "bob", password: "bobpass", resource: `cluster-${Date.now()}` });
    clients.push(bob);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    for (const p of nodes) if (p.child.signalCode === null && p.child.exitCode === null) p.child.kill("SIGCONT");
    await Promise.all(nodes.map((p) => p.stop()));
  });

  it("one account session for the account: a second node's session waits for the lease, gets it when the owner lets go; the same resource on both", async () => {
    const [n1, n2] = nodes as [ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    const lease = await admin.get(`minimix:lease:alice@${up.domain}`);
    expect(lease).toMatch(new RegExp(`^${up.kind}-n1:\\d+$`));
    await until("bob sees alice", () => realJids(bob, room, "alice").length === 1);
    const first = realJids(bob, room, "alice")[0]!;

    // status and metrics show the cluster: the three live nodes, the lease held here
    let status: { cluster?: { node: string; redis: string; nodes: { id: string }[]; leases: string[] } } = {};
    await until("status lists the three nodes", () => {
      void fetch(`http://127.0.0.1:${n1.metricsPort}/status`).then(async (r) => (status = await r.json() as typeof status));
      return (status.cluster?.nodes.length ?? 0) === 3;
    });
    expect(status.cluster).toMatchObject({ node: `${up.kind}-n1`, redis: "reachable", leases: [`alice@${up.domain}`] });
    expect(status.cluster!.nodes.map((n) => n.id)).toEqual(["n1", "n2", "n3"].map((n) => `${up.kind}-${n}`));
    const metricsText = await (await fetch(`http://127.0.0.1:${n1.metricsPort}/metrics`)).text();
    expect(metricsText).toMatch(/^minimix_cluster_leases_held 1$/m);
    expect(metricsText).toMatch(/^minimix_cluster_redis_up 1$/m);
    expect(metricsText).toMatch(/^minimix_cluster_lease_events_total\{event="acquired"\} 1$/m);
    expect(first).toMatch(new RegExp(`^alice@${up.domain}/minimix-[0-9a-f]{12}$`));

    // alice's laptop lands on n2: n2 must not open a second account session
    const a2 = await alice(n2, "laptop");
    const joined2 = joinSlow(a2, room, "alice");
    await n2.waitForLog((l) => l.code === "LEASE_ELSEWHERE" && l.owner === `${up.kind}-n1`);
    await sleep(1500);
    expect(n2.logs().some((l) => l.msg === "account session online")).toBe(false);
    expect(realJids(bob, room, "alice")).toEqual([first]);

    // the phone leaves and logs out: n1's account leaves the room, closes its account session (nothing uses it any
    // more) and releases the lease; n2 takes it
    await a1.send(xml("presence", { to: `${room}/alice`, type: "unavailable" }));
    await a1.stop();
    const self2 = await joined2;
    expect(isSelfPresence(self2, room)).toBe(true);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${up.kind}-n2:\\d+$`));
    expect(Number((await admin.get(`minimix:lease:alice@${up.domain}`))!.split(":")[1])).toBeGreaterThan(Number(lease!.split(":")[1]));
    await until("bob sees alice again", () => realJids(bob, room, "alice").length === 1);
    // the same account-session resource on every node (docs/architecture.md §8.7)
    expect(realJids(bob, room, "alice")).toEqual([first]);

    await groupchat(bob, room, "to the laptop");
    await a2.waitFor((el) => groupchatsWithBody(a2, room, "to the laptop").length > 0);
  });

  it("a session on a node that does not own its account: 1:1 works, a room join that waits past --join-timeout gets an error presence (not served until forwarding is built)", async () => {
    const [n1] = nodes as [ProxyProcess];
    const n4 = await node(`${up.kind}-n4`, { joinTimeoutS: 2, forward: false });
    nodes.push(n4);
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    const a4 = await alice(n4, "laptop");
    const answer = await joinSlow(a4, room, "alice", 20_000);
    expect(answer.attrs.type).toBe("error");
    expect(realJids(bob, room, "alice")).toHaveLength(1);
    // its own leg is the server's as usual: a 1:1 message from bob reaches it
    await bob.send(xml("message", { to: `alice@${up.domain}/laptop`, type: "chat" }, xml("body", {}, "direct to the laptop")));
    await a4.waitFor((el) => el.is("message") && el.getChildText("body") === "direct to the laptop");
  });

  it("credential records are shared in Redis: made at a PLAIN login on one node, they verify a SCRAM login on another (not relayed)", async () => {
    const [n1, n2] = nodes as [ProxyProcess, ProxyProcess];
    const c1 = await connectClient({ port: n1.port, username: "carol", password: "carolpass", resource: "plain" });
    clients.push(c1);
    await n1.waitForLog((l) => l.msg === "SCRAM records created after a password login");
    expect(await admin.hexists("minimix:credentials", `carol@${up.domain}`)).toBe(1);
    const c2 = await connectClient({ port: n2.port, username: "carol", password: "carolpass", resource: "scram", sasl: "offered" });
    clients.push(c2);
    const auth = await n2.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("authenticated"));
    expect(auth.msg).toBe("authenticated");
    expect(auth.mechanism).toBe("SCRAM-SHA-1");
  });

  it("SIGTERM of the owner (rolling restart): clients get <system-shutdown/>, the lease is released at once, the account is served on another node, no message lost", async () => {
    const [n1, n2] = nodes as [ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    await groupchat(bob, room, "before the restart");
    const seen = await a1.waitFor(() => groupchatsWithBody(a1, room, "before the restart").length > 0);
    void seen;
    const shutdown = new Promise<string | undefined>((resolve) => a1.xmpp.on("error", (e: { condition?: string }) => resolve(e.condition)));
    // as a client without MAM does: since about the last message it saw (Prosody stamps whole seconds)
    const since = new Date(Math.floor(Date.now() / 1000) * 1000 - 2000).toISOString();
    await n1.stop("SIGTERM");
    expect(await shutdown).toBe("system-shutdown");
    // released, not left to expire: no takeover wait
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toBeNull();
    await groupchat(bob, room, "while alice moves");
    const a2 = await alice(n2, "phone");
    const self = await joinSlow(a2, room, "alice", 25_000, { since });
    expect(isSelfPresence(self, room)).toBe(true);
    await a2.waitFor(() => groupchatsWithBody(a2, room, "while alice moves").length > 0);
    expect(n2.logs().find((l) => l.code === "LEASE_ACQUIRED")?.previous).toBeUndefined();
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${up.kind}-n2:`));
  });

  it("SIGKILL of the owner: its lease expires, the next session on a live node takes the account over; the client that reconnects with <history since> misses nothing", async () => {
    const [n1, n2] = nodes as [ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    await groupchat(bob, room, "before the kill");
    await a1.waitFor(() => groupchatsWithBody(a1, room, "before the kill").length > 0);
    const since = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000).toISOString();
    n1.child.kill("SIGKILL");
    await n1.stop();
    await groupchat(bob, room, "while the owner is dead");
    // alice's client reconnects (to another node) and rejoins with <history since> the last message it saw
    const a2 = await alice(n2, "phone");
    const self = await joinSlow(a2, room, "alice", 25_000, { since });
    expect(isSelfPresence(self, room)).toBe(true);
    await a2.waitFor(() => groupchatsWithBody(a2, room, "while the owner is dead").length > 0);
    expect(groupchatsWithBody(a2, room, "while the owner is dead")).toHaveLength(1);
    expect(n2.logs().find((l) => l.code === "LEASE_ACQUIRED")?.previous).toBe(`${up.kind}-n1`);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${up.kind}-n2:`));
    await groupchat(bob, room, "after the takeover");
    await a2.waitFor(() => groupchatsWithBody(a2, room, "after the takeover").length > 0);
    await until("one alice occupant", () => realJids(bob, room, "alice").length === 1);
  });

  it("an owner paused past its lease (SIGSTOP) cannot act on the account when it resumes: fenced by its own clock and by the server", async () => {
    const [, n2, n3] = nodes as [ProxyProcess, ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a2 = await alice(n2, "phone");
    expect(isSelfPresence(await join(a2, room, "alice"), room)).toBe(true);
    n2.child.kill("SIGSTOP");
    try {
      await sleep(TTL_S * 1000 + 500);
      const a3 = await alice(n3, "laptop");
      const self = await joinSlow(a3, room, "alice");
      expect(isSelfPresence(self, room)).toBe(true);
      expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${up.kind}-n3:`));
    } finally {
      n2.child.kill("SIGCONT");
    }
    // the paused node's client speaks as soon as it resumes (its socket buffered nothing; this is sent after)
    await groupchat(a2, room, "from the paused node");
    await n2.waitForLog((l) => l.code === "LEASE_LOST");
    await sleep(2000);
    if (process.env.CLUSTER_TEST_TRACE === "1") {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(`/tmp/cluster-${up.kind}-n2.log`, n2.stdout());
      writeFileSync(`/tmp/cluster-${up.kind}-n3.log`, n3.stdout());
      writeFileSync(`/tmp/cluster-${up.kind}-bob.xml`, bob.received.map((e) => e.toString()).join("\n"));
    }
    expect(groupchatsWithBody(bob, room, "from the paused node")).toHaveLength(0);
    // n2 did not open an account session again: the account is n3's
    const onlineAfterWake = n2.logs().filter((l) => l.msg === "account session online");
    expect(onlineAfterWake).toHaveLength(1);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${up.kind}-n3:`));
    // and n3's account session is the one in the room
    const a3 = clients.at(-1)!;
    await groupchat(a3, room, "from the owner");
    await bob.waitFor(() => groupchatsWithBody(bob, room, "from the owner").length > 0);
    expect(realJids(bob, room, "alice")).toHaveLength(1);
  });

  it("Redis restarted: the owner keeps its lease through a short outage (AOF), re-acquires after a long one, never two account sessions", async () => {
    const [, , n3] = nodes as [ProxyProcess, ProxyProcess, ProxyProcess];
    const [n1] = nodes as [ProxyProcess];
    const room = uniqueRoom(up.muc, "cluster");
    await createRoom(bob, room, "bob");
    const a3 = await alice(n3, "phone");
    expect(isSelfPresence(await join(a3, room, "alice"), room)).toBe(true);
    const before = await admin.get(`minimix:lease:alice@${up.domain}`);

    await redis.restart(300);
    await until("admin reconnected", () => admin.status === "ready");
    await sleep(1500);
    expect(logs(n3, "LEASE_LOST")).toHaveLength(0);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toBe(before);
    await groupchat(a3, room, "after a short outage");
    await bob.waitFor(() => groupchatsWithBody(bob, room, "after a short outage").length > 0);

    // a long outage: the lease runs out by n3's own clock, the account session closes; back, n3 re-acquires and rejoins
    const a1 = await alice(n1, "laptop"); // a session of the account on another node, competing for the lease
    await redis.halt();
    await n3.waitForLog((l) => l.code === "LEASE_LOST", 15_000);
    const joined1 = joinSlow(a1, room, "alice", 40_000);
    joined1.catch(() => undefined); // awaited only when n1 wins the lease; never an unhandled rejection later
    await sleep(1000);
    await redis.start();
    await until("admin reconnected", () => admin.status === "ready");
    await until("a new lease", () => n3.logs().filter((l) => l.code === "LEASE_ACQUIRED").length + n1.logs().filter((l) => l.code === "LEASE_ACQUIRED").length >= 2, 20_000);
    const owner = (await admin.get(`minimix:lease:alice@${up.domain}`))!.split(":")[0];
    expect([`${up.kind}-n1`, `${up.kind}-n3`]).toContain(owner);
    const ownerNode = owner === `${up.kind}-n1` ? n1 : n3;
    const other = ownerNode === n1 ? n3 : n1;
    await until("the owner's account session online", () => ownerNode.logs().filter((l) => l.msg === "account session online").length >= 1 + (ownerNode === n3 ? 1 : 0), 20_000);
    if (ownerNode === n1) expect(isSelfPresence(await joined1, room)).toBe(true);
    await sleep(1000);
    // the other node opened no account session after the outage
    expect(other.logs().filter((l) => l.msg === "account session online")).toHaveLength(other === n3 ? 1 : 0);
    await until("one alice occupant", () => realJids(bob, room, "alice").length === 1, 15_000);
    expect(n3.logs().some((l) => l.code === "REDIS_DOWN")).toBe(true);
    expect(n3.logs().some((l) => l.code === "REDIS_BACK")).toBe(true);
  });
});

describe.each(upstreamServers())("cluster forwarding ($kind)", (up: ProvidedUpstream) => {
  const procs: ProxyProcess[] = [];
  const clients: TestClient[] = [];
  let bob: TestClient;

  async function node(id: string, secret = secretFile, extra: string[] = []): Promise<ProxyProcess> {
    const p = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug",
      extraArgs: ["--cluster-redis", redis.url, "--node-id", id, "--cluster-lease-ttl", String(TTL_S), "--bookmarks", "ignore",
        "--cluster-advertise", `127.0.0.1:${await pickFreePort()}`, "--cluster-secret-file", secret, ...extra] });
    procs.push(p);
    return p;
  }
  async function alice(p: ProxyProcess, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: p.port, username: "alice", password: "alicepass", resource });
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    await admin.flushall();
    bob = await connectClient({ port: up.port, username: "bob", password: "bobpass", resource: `fwd-${Date.now()}` });
    clients.push(bob);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(procs.splice(0).map((p) => p.stop()));
  });

  it("a session on another node is forwarded to the account's owner: one occupant, each room message once to each session, sends go through the one account session", async () => {
    const [n1, n2] = await Promise.all([node(`${up.kind}-f1`), node(`${up.kind}-f2`)]);
    const room = uniqueRoom(up.muc, "fwd");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    await until("n2 sees n1's heartbeat", () => true);
    const a2 = await alice(n2, "laptop");
    await n2.waitForLog((l) => l.code === "FORWARDED");
    await n1.waitForLog((l) => l.msg === "cluster: forwarded session accepted");
    // answered from state by the owner: no second account session, no second occupant
    expect(isSelfPresence(await join(a2, room, "alice"), room)).toBe(true);
    expect(n2.logs().some((l) => l.msg === "account session online")).toBe(false);
    expect(realJids(bob, room, "alice")).toHaveLength(1);
    await groupchat(bob, room, "to both");
    await a1.waitFor(() => groupchatsWithBody(a1, room, "to both").length > 0);
    await a2.waitFor(() => groupchatsWithBody(a2, room, "to both").length > 0);
    await groupchat(a2, room, "from the laptop");
    await bob.waitFor(() => groupchatsWithBody(bob, room, "from the laptop").length > 0);
    await a1.waitFor(() => groupchatsWithBody(a1, room, "from the laptop").length > 0);
    await a2.waitFor(() => groupchatsWithBody(a2, room, "from the laptop").length > 0);
    await sleep(500);
    for (const c of [a1, a2]) {
      expect(groupchatsWithBody(c, room, "to both")).toHaveLength(1);
      expect(groupchatsWithBody(c, room, "from the laptop")).toHaveLength(1);
    }
    expect(groupchatsWithBody(bob, room, "from the laptop")).toHaveLength(1);
    // the owner serves both sessions: its status lists them under the account
    const st = await (await fetch(`http://127.0.0.1:${n1.metricsPort}/status`)).json() as { accounts: { jid: string; sessions: { jid?: string }[] }[] };
    expect(st.accounts.find((a) => a.jid === `alice@${up.domain}`)?.sessions.map((s) => s.jid).sort()).toEqual([`alice@${up.domain}/laptop`, `alice@${up.domain}/phone`]);
    expect((st as { cluster?: { forwarded?: { in: number } } }).cluster?.forwarded?.in).toBe(1);
    const m2 = await (await fetch(`http://127.0.0.1:${n2.metricsPort}/metrics`)).text();
    expect(m2).toMatch(/^minimix_cluster_forwarded_sessions_total\{direction="out"\} 1$/m);
  });

  it("the first node an account logs in on claims it: a later session elsewhere is forwarded there, before any room was joined", async () => {
    const [n1, n2] = await Promise.all([node(`${up.kind}-h1`), node(`${up.kind}-h2`)]);
    const room = uniqueRoom(up.muc, "fwd");
    await createRoom(bob, room, "bob");
    await alice(n1, "phone");
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    const a2 = await alice(n2, "laptop");
    await n2.waitForLog((l) => l.code === "FORWARDED");
    expect(isSelfPresence(await join(a2, room, "alice"), room)).toBe(true);
    expect(n2.logs().some((l) => l.msg === "account session online")).toBe(false);
    expect(n1.logs().filter((l) => l.msg === "account session online")).toHaveLength(1);
  });

  it("SCRAM-SHA-1-PLUS through a forwarded session: the owner verifies the binding to the client's TLS connection with the forwarding node (tls-exporter, tls-server-end-point)", async () => {
    const [n1, n2] = await Promise.all([node(`${up.kind}-p1`), node(`${up.kind}-p2`)]);
    await alice(n1, "phone"); // a PLAIN login: n1 claims alice, the records go to Redis
    await n1.waitForLog((l) => l.msg === "SCRAM records created after a password login");
    for (const plus of ["tls-exporter", "tls-server-end-point"]) {
      const r = await scramLogin({ port: n2.port, username: "alice", secret: { password: "alicepass" }, hash: "SHA-1", plus });
      expect(r.outcome, plus).toBe("success");
    }
    // the log lines follow the exchange (the owner logs after writing <success/>)
    await until("both forwarded", () => n2.logs().filter((l) => l.code === "FORWARDED").length === 2);
    await until("both verified on the owner", () => n1.logs().filter((l) => l.msg === "authenticated" && l.mechanism === "SCRAM-SHA-1-PLUS").length === 2);
  });

  it("WebSocket sessions on other nodes are forwarded too: a TLS session on A, wss on B, plain ws on C are one occupant, each gets every room message once", async () => {
    const ws = ["--listen-ws", "127.0.0.1:0", "--listen-ws-plain", "127.0.0.1:0"];
    const [n1, n2, n3] = await Promise.all([node(`${up.kind}-w1`, secretFile, ws), node(`${up.kind}-w2`, secretFile, ws), node(`${up.kind}-w3`, secretFile, ws)]);
    const room = uniqueRoom(up.muc, "fwdws");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1!, "desktop");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    const wsUrl = (p: ProxyProcess, tls: boolean): string => {
      const l = p.logs().find((x) => x.msg === "listening" && x.transport === "websocket" && x.tls === tls)!;
      return `${tls ? "wss://localhost" : "ws://127.0.0.1"}:${String(l.port)}/xmpp-websocket`;
    };
    // B: wss (its TLS channel bindings go with the request); C: plain ws behind a TLS-terminating proxy (none)
    const a2 = await connectWsClient({ url: wsUrl(n2!, true), username: "alice", password: "alicepass", resource: "browser", domain: up.domain });
    clients.push(a2);
    const a3 = await connectWsClient({ url: wsUrl(n3!, false), username: "alice", password: "alicepass", resource: "kiosk", domain: up.domain });
    clients.push(a3);
    await n2!.waitForLog((l) => l.code === "FORWARDED");
    await n3!.waitForLog((l) => l.code === "FORWARDED");
    await until("the owner accepted both", () => n1!.logs().filter((l) => l.msg === "cluster: forwarded session accepted").length === 2);
    expect(a2.jid).toBe(`alice@${up.domain}/browser`);
    expect(a3.jid).toBe(`alice@${up.domain}/kiosk`);
    // answered from state by the owner: no account session on B or C, one occupant
    expect(isSelfPresence(await join(a2, room, "alice"), room)).toBe(true);
    expect(isSelfPresence(await join(a3, room, "alice"), room)).toBe(true);
    for (const n of [n2!, n3!]) expect(n.logs().some((l) => l.msg === "account session online")).toBe(false);
    expect(n1!.logs().filter((l) => l.msg === "account session online")).toHaveLength(1);
    expect(realJids(bob, room, "alice")).toHaveLength(1);
    await groupchat(bob, room, "to all three");
    await groupchat(a2, room, "from the browser");
    for (const c of [a1, a2, a3]) {
      await c.waitFor(() => groupchatsWithBody(c, room, "to all three").length > 0 && groupchatsWithBody(c, room, "from the browser").length > 0);
    }
    await bob.waitFor(() => groupchatsWithBody(bob, room, "from the browser").length > 0);
    await sleep(500);
    for (const c of [a1, a2, a3]) {
      expect(groupchatsWithBody(c, room, "to all three")).toHaveLength(1);
      expect(groupchatsWithBody(c, room, "from the browser")).toHaveLength(1);
    }
    expect(groupchatsWithBody(bob, room, "from the browser")).toHaveLength(1);
    // the owner serves all three; a 1:1 round trip through the WebSocket splice both ways
    const st = await (await fetch(`http://127.0.0.1:${n1!.metricsPort}/status`)).json() as { accounts: { jid: string; sessions: { jid?: string }[] }[] };
    expect(st.accounts.find((a) => a.jid === `alice@${up.domain}`)?.sessions.map((s) => s.jid).sort())
      .toEqual([`alice@${up.domain}/browser`, `alice@${up.domain}/desktop`, `alice@${up.domain}/kiosk`]);
    await bob.send(xml("message", { to: `alice@${up.domain}/kiosk`, type: "chat", id: "ws1" }, xml("body", {}, "ping over ws")));
    await a3.waitFor((el) => el.is("message") && el.getChildText("body") === "ping over ws");
    // the browser leaves: the others stay joined, the owner's session count drops
    await a2.stop();
    for (let i = 0; ; i++) {
      const s2 = await (await fetch(`http://127.0.0.1:${n1!.metricsPort}/status`)).json() as typeof st;
      if (s2.accounts.find((a) => a.jid === `alice@${up.domain}`)?.sessions.length === 2) break;
      expect(i, "the owner still lists the browser's session").toBeLessThan(100);
      await sleep(100);
    }
    await groupchat(bob, room, "after the browser left");
    await a3.waitFor(() => groupchatsWithBody(a3, room, "after the browser left").length > 0);
  });

  it("a node with another secret is refused by the owner; the session is then served where it landed (its joins wait for the lease)", async () => {
    const other = joinPath(secretDir, "other.secret");
    writeFileSync(other, randomBytes(32).toString("hex"), { mode: 0o600 });
    const [n1, n2] = await Promise.all([node(`${up.kind}-g1`), node(`${up.kind}-g2`, other)]);
    const room = uniqueRoom(up.muc, "fwd");
    await createRoom(bob, room, "bob");
    const a1 = await alice(n1, "phone");
    expect(isSelfPresence(await join(a1, room, "alice"), room)).toBe(true);
    const a2 = await alice(n2, "laptop");
    await n1.waitForLog((l) => l.code === "FORWARD_REFUSED");
    await n2.waitForLog((l) => l.code === "FORWARD_FAILED");
    expect(a2.jid).toBe(`alice@${up.domain}/laptop`);
    expect(n2.logs().some((l) => l.code === "FORWARDED")).toBe(false);
  });
});
