/**
 * node dist/bench/cluster.js   (after npm run build; ≈ 2 min)  — issue 16's cluster measurements,
 * written to bench/CLUSTER.md (separate from npm run bench's RESULTS.md):
 *  1. 1 vs 2 vs 3 proxy nodes on one Redis, the same total sessions (12 accounts × 2 sessions; an
 *     account's two sessions on different nodes whenever there are two or more, so the second is
 *     forwarded to the owner), one room: p50 delivery latency of paced room messages, and the
 *     throughput of a burst (deliveries per second until every session has every message).
 *  2. Time from the SIGKILL of one of three nodes until every account it owned is served again: its
 *     clients reconnect at once to a live node and join; the clock stops when the last one has its
 *     self-presence. Dominated by --cluster-lease-ttl (given below).
 * Prosody through test/support/prosody.sh, a private redis-server without persistence.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, makeCert, ROOT, startProsody, startProxy, waitForPort, type Child } from "./lib/procs.js";
import { BenchClient, pool, sleep, type Endpoint } from "./lib/xmpp.js";
import { quantile, sortNum } from "./lib/stats.js";

const ACCOUNTS = 12;
const PACED = Number(process.env.CLUSTER_BENCH_PACED ?? 200);
const BURST = Number(process.env.CLUSTER_BENCH_BURST ?? 300);
const TTL_S = 5;

const work = mkdtempSync(join(tmpdir(), "bench-cluster-"));
process.env.PROSODY_USERS = [...Array.from({ length: ACCOUNTS }, (_, i) => `u${i}:p${i}`), "sender:senderpass"].join(" ");
const prosody = await startProsody();
const cert = makeCert(work);
const secret = join(work, "cluster.secret");
writeFileSync(secret, "0123456789abcdef0123456789abcdef0123456789", { mode: 0o600 });
const redisPort = await freePort();
const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--dir", work, "--save", "", "--appendonly", "no"], { stdio: "ignore" });
process.once("exit", () => redis.kill("SIGKILL"));
await waitForPort(redisPort);
const room = `bench-${Date.now()}@${prosody.muc}`;
const lines: string[] = [];
const log = (s: string): void => {
  process.stderr.write(`[cluster-bench] ${s}\n`);
  lines.push(s);
};

async function nodes(k: number): Promise<Child[]> {
  const out: Child[] = [];
  for (let i = 0; i < k; i++) {
    out.push(await startProxy({ upstreamPort: prosody.tlsPort, upstreamTls: "direct", upstreamCa: prosody.certFile, cert,
      extraArgs: ["--cluster-redis", `redis://127.0.0.1:${redisPort}`, "--node-id", `b${k}-${i}`, "--cluster-lease-ttl", String(TTL_S),
        "--cluster-advertise", `127.0.0.1:${await freePort()}`, "--cluster-secret-file", secret, "--bookmarks", "ignore",
        ] }));
  }
  return out;
}
const ep = (n: Child): Endpoint => ({ host: "127.0.0.1", port: n.port, ca: [cert.cert, prosody.cert], domain: prosody.domain });
const direct: Endpoint = { host: "127.0.0.1", port: prosody.tlsPort, ca: [prosody.cert], domain: prosody.domain };

async function joinRoom(c: BenchClient, nick: string): Promise<void> {
  const self = c.waitFor((n, b) => n === "presence" && (b.includes("status code='110'") || b.includes('status code="110"')), 30_000, "self-presence");
  c.send(`<presence to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
  await self;
}

/** The sessions of one layout: account a's session s on node (a + s) % k; first sessions first (they claim the account). */
async function sessions(ns: Child[]): Promise<BenchClient[][]> {
  const k = ns.length;
  const first = await pool(Array.from({ length: ACCOUNTS }, (_, a) => a), 6, (a) => BenchClient.connect(ep(ns[a % k]!), `u${a}`, `p${a}`, "s0"));
  await sleep(300);
  const second = await pool(Array.from({ length: ACCOUNTS }, (_, a) => a), 6, (a) => BenchClient.connect(ep(ns[(a + 1) % k]!), `u${a}`, `p${a}`, "s1"));
  const all = first.map((c, a) => [c, second[a]!]);
  await pool(all.flat(), 6, (c) => joinRoom(c, c.jid.split("@")[0]!));
  return all;
}

async function measure(k: number, sender: BenchClient): Promise<{ p50: number; p90: number; rate: number }> {
  const ns = await nodes(k);
  const accounts = await sessions(ns);
  const flat = accounts.flat();
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  let got = 0;
  const offs = flat.map((c) => c.onStanza((name, bytes, at) => {
    if (name !== "message") return;
    const m = /<body>(m\d+)<\/body>/.exec(bytes.toString("latin1"));
    if (!m) return;
    got++;
    const t = sentAt.get(m[1]!);
    if (t !== undefined) lat.push(at - t);
  }));
  // paced: one message every 20 ms
  for (let i = 0; i < PACED; i++) {
    const id = `m${i}`;
    sentAt.set(id, performance.now());
    sender.send(`<message to='${room}' type='groupchat' id='${id}'><body>${id}</body></message>`);
    await sleep(20);
  }
  const want1 = PACED * flat.length;
  for (let i = 0; i < 500 && got < want1; i++) await sleep(20);
  const pacedGot = got;
  const sorted = sortNum(lat);
  // burst
  got = 0;
  const t0 = performance.now();
  for (let i = 0; i < BURST; i++) sender.send(`<message to='${room}' type='groupchat' id='b${i}'><body>m${PACED + i}</body></message>`);
  const want2 = BURST * flat.length;
  for (let i = 0; i < 3000 && got < want2; i++) await sleep(10);
  const secs = (performance.now() - t0) / 1000;
  const rate = got / secs;
  log(`${k} node(s): ${flat.length} sessions, paced ${pacedGot}/${want1} delivered, p50 ${quantile(sorted, 0.5).toFixed(2)} ms, p90 ${quantile(sorted, 0.9).toFixed(2)} ms; burst ${got}/${want2} in ${secs.toFixed(2)} s = ${rate.toFixed(0)} deliveries/s`);
  for (const off of offs) off();
  for (const c of flat) c.end();
  await Promise.all(ns.map((n) => n.stop()));
  await sleep(500);
  return { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), rate };
}

const sender = await BenchClient.connect(direct, "sender", "senderpass", "bench");
{
  const self = sender.waitFor((n, b) => n === "presence" && (b.includes("status code='110'") || b.includes('status code="110"')), 30_000, "sender join");
  sender.send(`<presence to='${room}/sender'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
  await self;
}
const results: { k: number; p50: number; p90: number; rate: number }[] = [];
for (const k of [1, 2, 3]) results.push({ k, ...(await measure(k, sender)) });

// takeover: SIGKILL one of three nodes
const ns = await nodes(3);
const accounts = await sessions(ns);
const victim = ns[0]!;
const owned = Array.from({ length: ACCOUNTS }, (_, a) => a).filter((a) => a % 3 === 0);
const t0 = performance.now();
victim.child.kill("SIGKILL");
// every session of those accounts dropped (on the victim, or forwarded to it): reconnect to node 1 and join
const back = await Promise.all(owned.map(async (a) => {
  for (;;) {
    try {
      const c = await BenchClient.connect(ep(ns[1]!), `u${a}`, `p${a}`, "s0");
      await joinRoom(c, `u${a}`);
      c.end();
      return performance.now() - t0;
    } catch {
      await sleep(100);
    }
  }
}));
const takeover = Math.max(...back);
log(`takeover: SIGKILL of the node owning ${owned.length} accounts → every one served again on a live node after ${(takeover / 1000).toFixed(2)} s (lease TTL ${TTL_S} s; median ${(sortNum(back)[Math.floor(back.length / 2)]! / 1000).toFixed(2)} s)`);
for (const c of accounts.flat()) c.close();
await Promise.all(ns.map((n) => n.stop()));
sender.end();
await prosody.stop();
redis.kill("SIGTERM");
rmSync(work, { recursive: true, force: true });

const md = [
  "# Cluster measurements (issue 16)",
  "",
  `\`node dist/bench/cluster.js\`, ${new Date().toISOString().slice(0, 16)}Z, on this 2-core machine (Prosody, Redis, the proxies and the load generator share it).`,
  `${ACCOUNTS} accounts × 2 sessions, one room, a sender straight on Prosody; with 2 or 3 nodes each account's two sessions are on different nodes (the second is forwarded to the owner: one extra hop).`,
  `Latency: ${PACED} messages 20 ms apart, send → arrival at each session. Throughput: a burst of ${BURST}, deliveries per second until all arrived.`,
  "",
  "| nodes | p50 latency | p90 latency | burst throughput |",
  "|---|---|---|---|",
  ...results.map((r) => `| ${r.k} | ${r.p50.toFixed(2)} ms | ${r.p90.toFixed(2)} ms | ${r.rate.toFixed(0)} deliveries/s |`),
  "",
  `Takeover: ${lines.at(-1)!.replace(/^takeover: /, "")}.`,
  "",
].join("\n");
writeFileSync(join(ROOT, "bench", "CLUSTER.md"), md);
process.stderr.write(md);
process.exit(0);
