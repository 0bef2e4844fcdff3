/**
 * Measurement 11 (issue 16): the cluster — 1 vs 2 vs 3 proxy nodes on one Redis with the same total
 * sessions, and the time from the owner's SIGKILL until every account it owned is served again.
 *
 * - Layouts: for k = 1, 2, 3 a cluster of k nodes (`--cluster-redis`, forwarding on), each with its own
 *   `accounts` accounts and one room; every account has `sessions` sessions, session s of account a on
 *   node (a + s) mod k (what a round-robin load balancer does), the first sessions logged in first, so
 *   account a is owned by node a mod k and its other sessions that land elsewhere are forwarded to the
 *   owner (docs/architecture.md §8.7). The three clusters run side by side on one redis-server (their
 *   accounts and node ids are disjoint, so they never meet) and their rounds interleave, the order
 *   rotating every round. Per layout and round: `paced` room messages `gapMs` apart from bob straight on
 *   Prosody (send → arrival at each session: p50, p90), then a closed loop with `window` messages in
 *   flight for `seconds` (a message is done when every session has it): deliveries per second and the CPU
 *   of all the layout's nodes per delivery. Ratios vs 1 node are per round.
 * - Takeover: a fresh 3-node cluster (the k = 3 accounts); one node is SIGKILLed; at once, each account it
 *   owned logs in again on a live node and joins the room; the clock stops at its self-presence. The
 *   login lands while the dead node's lease is still in Redis, so its join waits for the lease to expire
 *   (`leaseTtlS`) and for the new account session (login, bind, the 1 s settle after a takeover, join).
 *   Per repeat the figure is the last account's time; the victim rotates.
 *
 * No target: issue 16 asks for the figures side by side, not for a limit (report only).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { connect, groupchat, joinRooms, type Path, resource } from "./paths.js";
import { type Child, type CertFiles, type Prosody, cpuSeconds, freePort, nowMs, registerUsers, startProxy, startRedis } from "./procs.js";
import { type Summary, fmt, fmtS, median, perRound, quantile, ratioOf, sortNum, summarize, table } from "./stats.js";
import { type BenchClient, pool, sleep } from "./xmpp.js";

type Cred = { user: string; pass: string };

export interface ClusterOptions {
  /** Accounts per layout; every account has `sessions` sessions: the same total in every layout. */
  accounts: number;
  sessions: number;
  /** Paced room messages per layout and round, `gapMs` apart (latency). */
  paced: number;
  gapMs: number;
  /** Closed loop: messages in flight, seconds measured per layout and round (throughput). */
  window: number;
  seconds: number;
  /** --cluster-lease-ttl of every node (seconds). */
  leaseTtlS: number;
  /** SIGKILL takeovers timed. */
  takeovers: number;
}

export interface ClusterLayout {
  nodes: number;
  /** Sessions in all / of them forwarded to their account's owner on another node. */
  sessions: number;
  forwarded: number;
  p50Ms: Summary;
  p90Ms: Summary;
  /** Room deliveries per second, closed loop. */
  rate: Summary;
  /** CPU (user+sys) of all the layout's nodes per delivery during the closed loop (µs). */
  cpuUsPerDelivery: Summary;
  /** This layout ÷ 1 node, per round. */
  p50VsOne: Summary;
  rateVsOne: Summary;
  cpuVsOne: Summary;
  /** Paced messages delivered / expected (messages × sessions), summed over the rounds. */
  delivered: number;
  expected: number;
}

export interface ClusterResults {
  options: ClusterOptions;
  layouts: ClusterLayout[];
  takeover: {
    /** SIGKILL → the last affected account served again, per repeat (ms). */
    lastMs: Summary;
    /** SIGKILL → each affected account served again, all repeats (ms). */
    perAccountMs: Summary;
    /** Accounts the victim owned, per repeat. */
    accounts: number[];
    leaseTtlS: number;
  };
  /** os.loadavg() (1, 5, 15 min) when the measurement started and ended: how busy the shared machine was. */
  loadAvg?: { start: number[]; end: number[] };
}

export interface ClusterEnv {
  prosody: Prosody;
  direct: Path;
  cert: CertFiles;
  ca: string[];
}

// ---------------------------------------------------------------------------- pure rules

/** The node (0‥k−1) session `s` of account `a` lands on: round-robin, the account's first session on a mod k. */
export function nodeOf(a: number, s: number, k: number): number {
  return (a + s) % k;
}

/** Sessions that land on another node than their account's owner (the node of its first session). */
export function forwardedSessions(accounts: number, sessions: number, k: number): number {
  let n = 0;
  for (let a = 0; a < accounts; a++) for (let s = 1; s < sessions; s++) if (nodeOf(a, s, k) !== nodeOf(a, 0, k)) n++;
  return n;
}

/** The accounts node `victim` owns in a layout of k nodes. */
export function ownedBy(victim: number, accounts: number, k: number): number[] {
  return Array.from({ length: accounts }, (_, a) => a).filter((a) => nodeOf(a, 0, k) === victim);
}

/** The body text of a message stanza (the bench's own bodies: no markup, no entities). */
export function bodyOf(bytes: Buffer): string | undefined {
  const i = bytes.indexOf("<body>");
  if (i < 0) return undefined;
  const j = bytes.indexOf("</body>", i);
  return j < 0 ? undefined : bytes.toString("latin1", i + 6, j);
}

/** One layout's rounds summarized, with the ratios to the 1-node layout's rounds (same rounds, same run). */
export interface LayoutRounds {
  nodes: number;
  sessions: number;
  forwarded: number;
  p50: number[];
  p90: number[];
  rate: number[];
  cpuUs: number[];
  delivered: number;
  expected: number;
}

export function summarizeLayouts(raw: LayoutRounds[]): ClusterLayout[] {
  const one = raw.find((r) => r.nodes === 1);
  return raw.map((r) => ({
    nodes: r.nodes, sessions: r.sessions, forwarded: r.forwarded,
    p50Ms: summarize(r.p50), p90Ms: summarize(r.p90), rate: summarize(r.rate), cpuUsPerDelivery: summarize(r.cpuUs),
    p50VsOne: one ? ratioOf(r.p50, one.p50) : summarize([]),
    rateVsOne: one ? ratioOf(r.rate, one.rate) : summarize([]),
    cpuVsOne: one ? ratioOf(r.cpuUs, one.cpuUs) : summarize([]),
    delivered: r.delivered, expected: r.expected,
  }));
}

// ---------------------------------------------------------------------------- processes

interface Cluster {
  redisUrl: string;
  secretFile: string;
  env: ClusterEnv;
  ttlS: number;
  seq: number;
}

async function startNodes(c: Cluster, k: number, label: string): Promise<Child[]> {
  const ids = Array.from({ length: k }, (_, i) => `m11-${label}-${++c.seq}-${i}`);
  return Promise.all(ids.map(async (id) => startProxy({
    upstreamPort: c.env.prosody.tlsPort, upstreamTls: "direct", upstreamCa: c.env.prosody.certFile, cert: c.env.cert,
    extraArgs: ["--cluster-redis", c.redisUrl, "--node-id", id, "--cluster-lease-ttl", String(c.ttlS),
      "--cluster-advertise", `127.0.0.1:${await freePort()}`, "--cluster-secret-file", c.secretFile, "--bookmarks", "ignore"],
  })));
}

/** One layout: its nodes, every account's sessions joined to its room, deliveries routed to `onBody`. */
class Layout {
  onBody: ((body: string, at: number) => void) | undefined;
  private constructor(readonly nodes: Child[], readonly clients: BenchClient[][], readonly room: string) {}

  get sessions(): BenchClient[] {
    return this.clients.flat();
  }

  static async open(c: Cluster, nodes: Child[], accounts: Cred[], sessions: number, room: string): Promise<Layout> {
    const k = nodes.length;
    const ep = (n: number): Path => ({ name: "proxy", ep: { host: "127.0.0.1", port: nodes[n]!.port, ca: c.env.ca, domain: c.env.prosody.domain } });
    const clients: BenchClient[][] = accounts.map(() => []);
    try {
      // first sessions first: each claims its account on the node it lands on (a mod k)
      for (let s = 0; s < sessions; s++) {
        const made = await pool(accounts, 4, (u, a) => connect(ep(nodeOf(a, s, k)), u, resource(`m11s${s}`)));
        made.forEach((cl, a) => clients[a]!.push(cl));
        if (s === 0) await sleep(200);
      }
      const l = new Layout(nodes, clients, room);
      await pool(clients.flatMap((cs, a) => cs.map((cl) => [cl, a] as const)), 4, ([cl, a]) => joinRooms(cl, [room], `a${a}`, "<history maxstanzas='0'/>", 60_000));
      for (const cl of l.sessions) {
        cl.onStanza((name, bytes, at) => {
          if (name !== "message") return;
          const b = bodyOf(bytes);
          if (b !== undefined) l.onBody?.(b, at);
        });
      }
      return l;
    } catch (err) {
      for (const cl of clients.flat()) cl.close();
      throw err;
    }
  }

  cpu(): number {
    let s = 0;
    for (const n of this.nodes) s += cpuSeconds(n.pid);
    return s;
  }

  async close(): Promise<void> {
    for (const cl of this.sessions) cl.close();
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/** Paced messages: send → arrival at every session (ms), and how many arrived. */
async function pacedRound(l: Layout, sender: BenchClient, tag: string, n: number, gapMs: number): Promise<{ lat: number[]; delivered: number }> {
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  let delivered = 0;
  l.onBody = (body, at) => {
    const t = sentAt.get(body);
    if (t === undefined) return;
    delivered++;
    lat.push(at - t);
  };
  for (let i = 0; i < n; i++) {
    const id = `${tag}p${i}`;
    sentAt.set(id, nowMs());
    sender.send(groupchat(l.room, id, id, false));
    await sleep(gapMs);
  }
  const want = n * l.sessions.length;
  const deadline = Date.now() + 10_000;
  while (delivered < want && Date.now() < deadline) await sleep(20);
  l.onBody = undefined;
  return { lat, delivered };
}

/** Closed loop: `window` messages in flight, each done when every session has it. */
async function throughputRound(l: Layout, sender: BenchClient, tag: string, window: number, seconds: number): Promise<{ rate: number; cpuUs: number }> {
  const k = l.sessions.length;
  const prefix = `${tag}t`;
  let sent = 0;
  let delivered = 0;
  let running = true;
  const fill = (): void => {
    if (!running) return;
    let batch = "";
    while (sent - Math.floor(delivered / k) < window) {
      const id = `${prefix}${sent++}`;
      batch += groupchat(l.room, id, id, false);
    }
    if (batch) sender.send(batch);
  };
  l.onBody = (body) => {
    if (!body.startsWith(prefix)) return;
    delivered++;
    fill();
  };
  fill();
  await sleep(Math.min(300, seconds * 300));
  const d0 = delivered;
  const c0 = l.cpu();
  const t0 = nowMs();
  await sleep(seconds * 1000);
  const d1 = delivered;
  const c1 = l.cpu();
  const wall = (nowMs() - t0) / 1000;
  running = false;
  const deadline = Date.now() + 15_000;
  while (delivered < sent * k && Date.now() < deadline) await sleep(20);
  l.onBody = undefined;
  return { rate: (d1 - d0) / wall, cpuUs: ((c1 - c0) * 1e6) / Math.max(1, d1 - d0) };
}

/** One SIGKILL takeover: the time until each account the victim owned is served again (ms). */
async function takeover(c: Cluster, accounts: Cred[], sessions: number, room: string, victim: number): Promise<number[]> {
  const nodes = await startNodes(c, 3, "tk");
  let layout: Layout | undefined;
  const back: BenchClient[] = [];
  try {
    layout = await Layout.open(c, nodes, accounts, sessions, room);
    await sleep(500);
    const owned = ownedBy(victim, accounts.length, 3);
    const live = [0, 1, 2].filter((i) => i !== victim);
    const t0 = nowMs();
    nodes[victim]!.child.kill("SIGKILL");
    return await Promise.all(owned.map(async (a, i) => {
      const node = nodes[live[i % live.length]!]!;
      const p: Path = { name: "proxy", ep: { host: "127.0.0.1", port: node.port, ca: c.env.ca, domain: c.env.prosody.domain } };
      for (let attempt = 0; ; attempt++) {
        try {
          const cl = await connect(p, accounts[a]!, resource("m11back"));
          back.push(cl);
          await joinRooms(cl, [room], `a${a}`, "<history maxstanzas='0'/>", 60_000);
          return nowMs() - t0;
        } catch (err) {
          if (nowMs() - t0 > 120_000) throw err;
          await sleep(100);
        }
      }
    }));
  } finally {
    for (const cl of back) cl.close();
    if (layout) await layout.close();
    else await Promise.all(nodes.map((n) => n.stop()));
  }
}

// ---------------------------------------------------------------------------- the measurement

export async function measureCluster(o: ClusterOptions, rounds: number, env: ClusterEnv, bob: Cred, log: (m: string) => void): Promise<ClusterResults> {
  const loadStart = loadavg();
  const work = mkdtempSync(join(tmpdir(), "bench-cluster-"));
  const secretFile = join(work, "cluster.secret");
  writeFileSync(secretFile, `${Array.from({ length: 48 }, () => Math.floor(Math.random() * 16).toString(16)).join("")}\n`, { mode: 0o600 });
  const redis = await startRedis(work);
  const c: Cluster = { redisUrl: redis.url, secretFile, env, ttlS: o.leaseTtlS, seq: 0 };
  const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const ks = [1, 2, 3];
  const accountsOf = new Map(ks.map((k) => [k, Array.from({ length: o.accounts }, (_, a) => ({ user: `m11${tag}k${k}a${a}`, pass: `pw${a}${tag}` }))]));
  const roomOf = (k: number): string => `m11-${tag}-k${k}@${env.prosody.muc}`;
  const layouts = new Map<number, Layout>();
  let sender: BenchClient | undefined;
  try {
    await registerUsers(env.prosody, [...accountsOf.values()].flat());
    sender = await connect(env.direct, bob, resource("m11b"));
    await joinRooms(sender, ks.map(roomOf), "bob");
    for (const k of ks) {
      const nodes = await startNodes(c, k, `k${k}`);
      try {
        layouts.set(k, await Layout.open(c, nodes, accountsOf.get(k)!, o.sessions, roomOf(k)));
      } catch (err) {
        await Promise.all(nodes.map((n) => n.stop()));
        throw err;
      }
      log(`  ${k} node(s): ${o.accounts} accounts × ${o.sessions} sessions joined, ${forwardedSessions(o.accounts, o.sessions, k)} forwarded`);
    }
    const raw = new Map<number, LayoutRounds>(ks.map((k) => [k, {
      nodes: k, sessions: o.accounts * o.sessions, forwarded: forwardedSessions(o.accounts, o.sessions, k), p50: [], p90: [], rate: [], cpuUs: [], delivered: 0, expected: 0,
    }]));
    // warm-up, not counted: JIT, TLS records, the first deliveries through every forwarded link
    for (const k of ks) {
      await pacedRound(layouts.get(k)!, sender, `w${k}-`, Math.min(20, o.paced), o.gapMs);
      await throughputRound(layouts.get(k)!, sender, `w${k}-`, o.window, Math.min(0.5, o.seconds));
    }
    const s = sender;
    await perRound(rounds, ks, async (k, round) => {
      const l = layouts.get(k)!;
      const r = raw.get(k)!;
      const paced = await pacedRound(l, s, `r${round}k${k}-`, o.paced, o.gapMs);
      const sorted = sortNum(paced.lat);
      r.p50.push(quantile(sorted, 0.5));
      r.p90.push(quantile(sorted, 0.9));
      r.delivered += paced.delivered;
      r.expected += o.paced * l.sessions.length;
      const t = await throughputRound(l, s, `r${round}k${k}-`, o.window, o.seconds);
      r.rate.push(t.rate);
      r.cpuUs.push(t.cpuUs);
      log(`  round ${round + 1}, ${k} node(s): p50 ${fmt(quantile(sorted, 0.5))} ms, ${paced.delivered}/${o.paced * l.sessions.length} delivered; ${fmt(t.rate, 0)} deliveries/s, ${fmt(t.cpuUs, 1)} µs CPU per delivery`);
    });
    for (const l of layouts.values()) await l.close();
    layouts.clear();

    const last: number[] = [];
    const each: number[] = [];
    const affected: number[] = [];
    for (let i = 0; i < o.takeovers; i++) {
      const times = await takeover(c, accountsOf.get(3)!, o.sessions, roomOf(3), i % 3);
      last.push(Math.max(...times));
      each.push(...times);
      affected.push(times.length);
      log(`  takeover ${i + 1}: ${times.length} accounts served again after ${fmt(Math.max(...times), 0)} ms (median ${fmt(median(times), 0)} ms; lease TTL ${o.leaseTtlS} s)`);
    }
    return {
      options: o,
      layouts: summarizeLayouts(ks.map((k) => raw.get(k)!)),
      takeover: { lastMs: summarize(last), perAccountMs: summarize(each), accounts: affected, leaseTtlS: o.leaseTtlS },
      loadAvg: { start: loadStart, end: loadavg() },
    };
  } finally {
    sender?.close();
    for (const l of layouts.values()) await l.close();
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------- report

export function clusterSection(r: ClusterResults | undefined, L: string[]): void {
  if (!r) return;
  const o = r.options;
  L.push("## 11. Cluster: 1 vs 2 vs 3 nodes, and takeover after SIGKILL", "");
  L.push(`Three clusters side by side on one redis-server (no persistence), every node with \`--cluster-redis\`, forwarding on (\`--cluster-advertise\`, ` +
    `\`--cluster-secret-file\`) and \`--cluster-lease-ttl ${o.leaseTtlS}\`: 1, 2 and 3 proxy processes, each cluster with its own ${o.accounts} accounts × ` +
    `${o.sessions} sessions (${o.accounts * o.sessions} sessions in every layout) and its own room. Session s of account a lands on node (a + s) mod k, ` +
    "the first sessions first, so each account is owned by the node of its first session and its sessions on other nodes are forwarded there " +
    "(one extra hop through a node-to-node TLS link; docs/architecture.md §8.7). bob posts straight to Prosody. " +
    `Latency: ${o.paced} room messages ${o.gapMs} ms apart, send → arrival at each session (p50, p90 of all deliveries of the round). ` +
    `Throughput: a closed loop with ${o.window} messages in flight for ${fmt(o.seconds, 1)} s, a message done when every session has it; deliveries/s and ` +
    "the CPU of all the layout's proxy processes (user+sys from /proc) per delivery. The layouts interleave round by round (order rotating); " +
    "ratios are to the 1-node layout of the same round. All processes share this 2-core machine, so more nodes cannot mean more cores here: " +
    "the figures show what forwarding and the spread cost, not how a cluster of machines scales. No target: issue 16 asks for the figures, not a limit.", "");
  L.push(table(["nodes", "sessions forwarded", "p50 ms", "p90 ms", "p50 ÷ 1 node", "deliveries/s", "÷ 1 node", "CPU µs per delivery (all nodes)", "÷ 1 node", "paced delivered"],
    r.layouts.map((x) => [
      String(x.nodes), `${x.forwarded} of ${x.sessions}`, fmtS(x.p50Ms, 2), fmtS(x.p90Ms, 2), x.nodes === 1 ? "—" : fmtS(x.p50VsOne, 2),
      fmtS(x.rate, 0), x.nodes === 1 ? "—" : fmtS(x.rateVsOne, 2), fmtS(x.cpuUsPerDelivery, 1), x.nodes === 1 ? "—" : fmtS(x.cpuVsOne, 2), `${x.delivered}/${x.expected}`,
    ])), "");
  if (r.loadAvg) {
    const la = (x: number[]): string => x.map((v) => v.toFixed(2)).join(" / ");
    L.push(`Load average (1 / 5 / 15 min) at the start: ${la(r.loadAvg.start)}; at the end: ${la(r.loadAvg.end)} (2 cores).`, "");
  }
  const t = r.takeover;
  L.push(`**Takeover** (lease TTL **${t.leaseTtlS} s**): a fresh 3-node cluster of the same accounts and sessions; the node owning ${[...new Set(t.accounts)].join(" or ")} of the ` +
    "accounts is SIGKILLed (a different node each repeat); at once each of those accounts logs in again on a live node and joins the room. " +
    `SIGKILL → the last of them served again (its self-presence): **${fmtS(t.lastMs, 0)} ms**, median over ${t.lastMs.rounds.length} repeats; every account: ` +
    `${fmtS(t.perAccountMs, 0)} ms. The login is answered at once (the dead node's address refuses the forwarding link, so the live node serves it); ` +
    "the join waits for the dead node's lease to expire in Redis — at most the TTL after its last renewal, and renewals come every TTL/3, so " +
    `${fmt((t.leaseTtlS * 2) / 3, 1)}–${t.leaseTtlS} s after the kill — then for the new account session's login and bind, the 1 s settle after a takeover ` +
    "(docs/architecture.md §8.7) and the join.", "");
}
