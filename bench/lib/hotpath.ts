/**
 * Measurement 9 (issue 15): what one room delivery and one chat message cost the proxy, next to the
 * floor a Node process cannot beat — the TLS pipe relay (bench/relay.ts) — on the same traffic.
 *
 * - room delivery: K sessions of alice joined to one room through the path (the relay, or the proxy,
 *   where the account session receives each message once and fans it out); bob, straight on the
 *   server, posts one message at a time (window 1: the next one when all K sessions have the last), as
 *   a real room does — one stanza per read and per write, so the per-stanza fixed costs (event loop,
 *   TLS records, system calls) count as they do in production, not only the parse. CPU of the proxy /
 *   relay process (user+sys from /proc) ÷ deliveries.
 * - chat: alice → bob through the path, one at a time; CPU ÷ messages (each crosses twice).
 * - a CPU profile of the proxy under each load (node --cpu-prof), ranked by self time.
 *
 * The paths run interleaved, the order rotating every round; every ratio is proxy ÷ relay of one run.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { ChatPair, FanOut } from "./measure.js";
import type { Path } from "./paths.js";
import { type Child, ROOT, startProxy } from "./procs.js";
import { type ProfileSummary, summarizeProfile } from "./profile.js";
import { type Summary, fmt, fmtS, perRound, ratioOf, summarize, table } from "./stats.js";

type Cred = { user: string; pass: string };

export interface HotPathOptions {
  /** Session counts of the room deliveries. */
  ks: number[];
  /** Messages in flight (1: one at a time). */
  window: number;
  /** Seconds measured per path, round and load. */
  seconds: number;
  /** Profile the proxy under each load. */
  profile: boolean;
}

export interface HotPathCost {
  /** CPU µs per room delivery / per chat message. */
  proxy: Summary;
  relay: Summary;
  /** proxy ÷ relay, per round. */
  ratio: Summary;
  /** Deliveries (messages) per second during the measurement. */
  rate: { proxy: Summary; relay: Summary };
}

export interface HotPathResults {
  options: HotPathOptions;
  room: { k: number; cost: HotPathCost }[];
  chat: HotPathCost;
  profiles?: { name: string; summary: ProfileSummary; cpuUsPerUnit: number }[];
}

export interface HotPathEnv {
  direct: Path;
  relay: Path;
  proxy: Path;
  /** For a profiled proxy of its own. */
  startProfiled: (dir: string) => Promise<Child>;
}

const us = (s: number): number => s * 1e6;

/** One load on one path, run repeatedly: FanOut (room deliveries) or ChatPair (chat), the same closed loop. */
interface Load {
  run(window: number, seconds: number, pids: number[]): Promise<{ rate: number; delivered: number; cpu: number[] }>;
  close(): void;
}

type OpenLoad = (path: Path) => Promise<Load>;

function roomLoad(env: HotPathEnv, u: { alice: Cred; bob: Cred }, k: number, room: (path: Path) => string): OpenLoad {
  return (path) => FanOut.open(path, env.direct, u.alice, u.bob, k, room(path));
}

function chatLoad(u: { alice: Cred; bob: Cred }): OpenLoad {
  return async (path) => {
    const pair = await ChatPair.open(path, u.alice, u.bob);
    return { run: (w, s, pids) => pair.throughput(w, s, pids), close: () => pair.close() };
  };
}

export async function measureHotPath(o: HotPathOptions, rounds: number, env: HotPathEnv, u: { alice: Cred; bob: Cred }, muc: string, log: (m: string) => void): Promise<HotPathResults> {
  const tag = process.pid.toString(36);
  const room: HotPathResults["room"] = [];
  for (const k of o.ks) {
    log(`  room deliveries, K=${k}`);
    room.push({ k, cost: await sideBySide(o, rounds, env, roomLoad(env, u, k, (p) => `bench-hot-${tag}-${k}-${p.name}@${muc}`)) });
  }
  log("  chat");
  const result: HotPathResults = { options: o, room, chat: await sideBySide(o, rounds, env, chatLoad(u)) };
  if (o.profile) result.profiles = await profiles(o, env, u, muc, log);
  return result;
}

/** The load on the relay and on the proxy, warmed up, then `rounds` rounds interleaved: CPU per unit of each. */
async function sideBySide(o: HotPathOptions, rounds: number, env: HotPathEnv, open: OpenLoad): Promise<HotPathCost> {
  const paths = [env.relay, env.proxy];
  const loads = new Map<string, Load>();
  const cpu: Record<string, number[]> = { relay: [], proxy: [] };
  const rate: Record<string, number[]> = { relay: [], proxy: [] };
  try {
    for (const p of paths) loads.set(p.name, await open(p));
    for (const p of paths) await loads.get(p.name)!.run(o.window, warmUp(o), [p.pid!]); // warm-up: JIT
    await perRound(rounds, paths, async (p) => {
      const r = await loads.get(p.name)!.run(o.window, o.seconds, [p.pid!]);
      cpu[p.name]!.push(us(r.cpu[0]!) / r.delivered);
      rate[p.name]!.push(r.rate);
    });
  } finally {
    for (const l of loads.values()) l.close();
  }
  return cost(cpu, rate);
}

/** Long enough for V8 to have optimized the hot functions (a running proxy's steady state, not its first second). */
function warmUp(o: HotPathOptions): number {
  return Math.max(o.seconds, Math.min(3, o.seconds * 4));
}

function cost(cpu: Record<string, number[]>, rate: Record<string, number[]>): HotPathCost {
  return {
    proxy: summarize(cpu.proxy!), relay: summarize(cpu.relay!), ratio: ratioOf(cpu.proxy!, cpu.relay!),
    rate: { proxy: summarize(rate.proxy!), relay: summarize(rate.relay!) },
  };
}

/** Where the profiling runs write (bench/profiles/ is not committed). */
export const HOTPATH_PROFILE_DIR = join(ROOT, "bench", "profiles", "m9");

/** Where the compressed raw profiles are kept in the repository (open with Chrome DevTools or speedscope after gunzip). */
export const HOTPATH_PROFILE_KEEP = join(ROOT, "bench", "cpu-profiles");

async function profiles(o: HotPathOptions, env: HotPathEnv, u: { alice: Cred; bob: Cred }, muc: string, log: (m: string) => void): Promise<NonNullable<HotPathResults["profiles"]>> {
  rmSync(HOTPATH_PROFILE_DIR, { recursive: true, force: true });
  const out: NonNullable<HotPathResults["profiles"]> = [];
  const tag = process.pid.toString(36);
  const loads: [string, OpenLoad][] = [
    ...o.ks.map((k): [string, OpenLoad] => [`room-k${k}`, roomLoad(env, u, k, () => `bench-hotprof-${tag}-${k}@${muc}`)]),
    ["chat", chatLoad(u)],
  ];
  for (const [name, open] of loads) {
    log(`  profile: ${name}`);
    const dir = join(HOTPATH_PROFILE_DIR, name);
    const spawnAt = Date.now();
    const child = await env.startProfiled(dir);
    const path: Path = { name: "proxy", ep: { ...env.proxy.ep, port: child.port }, pid: child.pid };
    let window: [number, number] = [0, 0];
    let load = { cpu: 0, units: 0 };
    try {
      const l = await open(path);
      await l.run(o.window, warmUp(o), [child.pid]);
      const t0 = Date.now();
      const r = await l.run(o.window, Math.max(2, o.seconds * 2), [child.pid]);
      window = [t0 - spawnAt + 300, Date.now() - spawnAt];
      load = { cpu: r.cpu[0]!, units: r.delivered };
      l.close();
    } finally {
      await child.stop();
    }
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) continue;
    // the raw profile, compressed, is committed beside the figures (bench/profiles/ itself is not)
    mkdirSync(HOTPATH_PROFILE_KEEP, { recursive: true });
    writeFileSync(join(HOTPATH_PROFILE_KEEP, `m9-${name}.cpuprofile.gz`), gzipSync(readFileSync(join(dir, file)), { level: 9 }));
    out.push({ name, summary: { ...summarizeProfile(join(dir, file), ROOT, 25, window), procCpuMs: load.cpu * 1000 }, cpuUsPerUnit: load.units > 0 ? us(load.cpu) / load.units : 0 });
  }
  return out;
}

/** Section 9 of RESULTS.md. */
export function hotPathSection(h: HotPathResults | undefined, L: string[]): void {
  if (!h) return;
  const o = h.options;
  L.push("## 9. The hot path: CPU per room delivery and per chat message", "");
  L.push(`K sessions of alice in one room, through the pipe relay (bench/relay.ts: TLS in, TLS out, \`pipe()\`) or through the proxy (the ` +
    "account session receives each message once and fans it out to the K sessions); bob, straight on Prosody, posts " +
    `${o.window === 1 ? "one message at a time (the next when all K sessions have the last)" : `with ${o.window} messages in flight`}, so every ` +
    "stanza is its own read and its own write, as in a real room, and the per-stanza fixed costs (event loop, TLS records, system calls) count. " +
    "Chat: alice → bob through the path, the same way. CPU is the proxy's or the relay's process (user+sys, /proc) ÷ deliveries or messages " +
    `(a chat message crosses the path twice). ${fmt(o.seconds, 1)} s per path and round, paths interleaved.`, "");
  const row = (name: string, c: HotPathCost): string[] => [name, fmtS(c.proxy, 1), fmtS(c.relay, 1), `**${fmtS(c.ratio, 2)}**`, fmtS(c.rate.proxy, 0), fmtS(c.rate.relay, 0)];
  L.push(table(["Load", "proxy CPU µs", "relay CPU µs", "proxy ÷ relay", "proxy per s", "relay per s"],
    [...h.room.map((r) => row(`room delivery, K=${r.k}`, r.cost)), row("chat message", h.chat)]), "");
  if (h.profiles?.length) {
    L.push("### Where the proxy's time goes (node --cpu-prof)", "");
    L.push("A separate proxy process per load with `--cpu-prof` (200 µs sampling), the same load as above over a longer window; self time of " +
      "the samples in the window, idle excluded. Native work (TLS, system calls) is charged to the JS function that called it, or to " +
      "(program)/(idle) when libuv does it outside JS. Raw profiles: bench/cpu-profiles/m9-*.cpuprofile.gz (gunzip, then Chrome DevTools or speedscope).", "");
    for (const p of h.profiles) {
      const s = p.summary;
      L.push(`#### ${p.name}`, "");
      L.push(`${fmt(p.cpuUsPerUnit, 1)} µs of process CPU per ${p.name === "chat" ? "message" : "delivery"} while profiled; ` +
        `${fmt((s.busyPct / 100) * s.totalMs, 0)} ms of non-idle samples in ${fmt(s.totalMs, 0)} ms, /proc: ${fmt(s.procCpuMs ?? NaN, 0)} ms.`, "");
      L.push(table(["function", "where", "self ms", "% of busy"], s.functions.slice(0, 15).map((f) => [`\`${f.name}\``, f.where, fmt(f.selfMs, 1), fmt(f.pct, 1)])), "");
      L.push(table(["file", "self ms", "% of busy"], s.files.slice(0, 8).map((f) => [f.name, fmt(f.selfMs, 1), fmt(f.pct, 1)])), "");
    }
  }
}
