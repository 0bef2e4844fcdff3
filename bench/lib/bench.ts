/**
 * The whole benchmark: one Prosody, the proxy and the pipe relay as child processes, the five
 * measurements of issue 4 interleaved path by path and round by round, every figure summarized as
 * median and spread, and every target of the issue judged from ratios measured in this run.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AccountGroup, type AccountWinRound, ChatPair, FanOut, latencyStats, occupy, openIdle, parserFloor, reconnectRound,
  type ReconnectRound, settledRss,
} from "./measure.js";
import { connect, joinRooms, type Path, type PathName, resource } from "./paths.js";
import { type Child, type Prosody, ROOT, cpuSeconds, makeCert, rssBytes, startProsody, startProxy, startRelay } from "./procs.js";
import { type ProfileSummary, summarizeProfile } from "./profile.js";
import { type Summary, median, perRound, quantile, ratioOf, sortNum, summarize } from "./stats.js";
import { type InactiveOptions, type InactiveResults, measureInactive } from "./inactive.js";
import { mobileTargets } from "./mobile-targets.js";
import { type SwitchOptions, type SwitchResults, measureSwitch } from "./switch.js";
import { type LoginOptions, type LoginResults, measureLogin } from "./login.js";
import { type FirstJoinOptions, type FirstJoinResults, measureFirstJoin } from "./first-join.js";
import { Tap } from "./tap.js";
import { type ClusterOptions, type ClusterResults, measureCluster } from "./cluster.js";
import { type HotPathOptions, type HotPathResults, measureHotPath } from "./hotpath.js";
import { BenchClient, sleep } from "./xmpp.js";

export interface BenchOptions {
  quick: boolean;
  rounds: number;
  m1: { pings: number; windows: number[]; seconds: number };
  m2: { k: number; window: number; seconds: number; floorIterations: number };
  m3: { ks: number[]; rooms: number[]; messages: number };
  m4: { rooms: number[]; occupants: number; pauseMs: number };
  m5: { levels: number[]; seconds: number; relayLevel: number; settleMs: number };
  /** Issue 11 (a): back after a network switch — full reconnect vs Prosody's resume vs the proxy's resume. */
  m6: SwitchOptions;
  /** Issue 11 (b): an inactive phone in busy rooms — what reaches it, direct vs proxy. */
  m7: InactiveOptions;
  /** Issue 12: a SCRAM login through the proxy (verified against its record) vs straight to Prosody. */
  m8: LoginOptions;
  /** Issue 15: CPU per room delivery (K=1, K=4) and per chat message, one at a time, vs the pipe relay. */
  m9: HotPathOptions;
  /** Issue 15: a logged-in client's first join of a room, through the proxy vs straight to Prosody. */
  m10: FirstJoinOptions;
  /** Issue 16: 1 vs 2 vs 3 cluster nodes (same total sessions), and the takeover after the owner's SIGKILL. */
  m11: ClusterOptions;
  profile: boolean;
  /** Which measurements to run (default all). */
  only?: Measurement[];
  log?: (msg: string) => void;
}

export const MEASUREMENTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11"] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

export const FULL: BenchOptions = {
  quick: false,
  rounds: 5,
  m1: { pings: 300, windows: [8, 64, 256], seconds: 1.2 },
  m2: { k: 4, window: 32, seconds: 1.5, floorIterations: 20_000 },
  m3: { ks: [1, 2, 4, 8], rooms: [1, 10, 50], messages: 40 },
  m4: { rooms: [1, 10, 50], occupants: 20, pauseMs: 250 },
  m5: { levels: [100, 1000, 5000], seconds: 1, relayLevel: 1000, settleMs: 2000 },
  m6: { rooms: 50, occupants: 10, roomMessages: 100, chats: 10, outageMs: 1000 },
  m7: { rooms: 20, occupants: 6, seconds: 60, eventsPerSecond: 15, bodies: 6, burstGapMs: 50, rounds: 3 },
  m8: { sequential: 40, burst: 200, parallel: 8, mobileRttMs: 100, mobileLogins: 10 },
  m9: { ks: [1, 4], window: 1, seconds: 2, profile: true },
  m10: { occupants: 10, joins: 4, settleMs: 300 },
  m11: { accounts: 8, sessions: 3, paced: 100, gapMs: 20, window: 16, seconds: 2, leaseTtlS: 5, takeovers: 3 },
  profile: true,
};

export const QUICK: BenchOptions = {
  quick: true,
  rounds: 3,
  m1: { pings: 30, windows: [64], seconds: 0.3 },
  m2: { k: 2, window: 32, seconds: 0.3, floorIterations: 2000 },
  m3: { ks: [1, 2], rooms: [1, 5], messages: 5 },
  m4: { rooms: [1, 5], occupants: 4, pauseMs: 100 },
  m5: { levels: [20, 100], seconds: 0.3, relayLevel: 0, settleMs: 300 },
  m6: { rooms: 10, occupants: 3, roomMessages: 20, chats: 5, outageMs: 400 },
  m7: { rooms: 5, occupants: 3, seconds: 5, eventsPerSecond: 15, bodies: 3, burstGapMs: 50, rounds: 2 },
  m8: { sequential: 10, burst: 40, parallel: 4, mobileRttMs: 100, mobileLogins: 3 },
  m9: { ks: [1, 4], window: 1, seconds: 0.5, profile: false },
  m10: { occupants: 5, joins: 2, settleMs: 300 },
  m11: { accounts: 4, sessions: 3, paced: 30, gapMs: 20, window: 8, seconds: 0.5, leaseTtlS: 3, takeovers: 2 },
  profile: false,
};

/** The smallest pieces of every measurement, for the test suite's smoke test (seconds). */
export const SMOKE: BenchOptions = {
  quick: true,
  rounds: 1,
  m1: { pings: 10, windows: [16], seconds: 0.2 },
  m2: { k: 2, window: 16, seconds: 0.2, floorIterations: 200 },
  m3: { ks: [2], rooms: [1], messages: 3 },
  m4: { rooms: [1], occupants: 3, pauseMs: 60 },
  m5: { levels: [5], seconds: 0.2, relayLevel: 0, settleMs: 50 },
  m6: { rooms: 2, occupants: 1, roomMessages: 2, chats: 2, outageMs: 100 },
  m7: { rooms: 2, occupants: 2, seconds: 1, eventsPerSecond: 20, bodies: 2, burstGapMs: 50, rounds: 1 },
  m8: { sequential: 2, burst: 4, parallel: 2, mobileRttMs: 20, mobileLogins: 1 },
  m9: { ks: [1], window: 1, seconds: 0.2, profile: false },
  m10: { occupants: 2, joins: 1, settleMs: 100 },
  m11: { accounts: 2, sessions: 2, paced: 5, gapMs: 10, window: 4, seconds: 0.2, leaseTtlS: 2, takeovers: 1 },
  profile: false,
};

// ---------------------------------------------------------------------------- result shapes

export interface PathLatency {
  p50: Summary;
  p99: Summary;
  /** Every RTT of every round (ms), for the distribution chart. */
  samples: number[];
}

export interface Results {
  meta: {
    date: string; node: string; cpus: number; cpuModel: string; quick: boolean; rounds: number; seconds: number; prosody: string;
    /** After a partial run merged into an earlier one (bench/lib/merge.ts): the run (date) each section comes from. */
    sections?: Record<string, string>;
  };
  passthrough?: {
    pings: number;
    latency: Record<PathName, PathLatency>;
    addedP50: { proxy: Summary; relay: Summary };
    addedP99: { proxy: Summary; relay: Summary };
    /** median(proxy − direct) / median(relay − direct), p50. */
    addedRatio: number;
    throughput: { windows: number[]; rate: Record<PathName, Summary[]>; saturation: Record<PathName, Summary>; ratio: Summary; relayRatio: Summary };
    /** Prosody's own CPU per message at the saturating window, per path (a proxy can make the server work harder). */
    prosodyCpuPerMessageUs: Record<PathName, Summary>;
  };
  cpu?: {
    chat: { proxy: Summary; relay: Summary; floorParseSerialize: Summary; floorFramer: Summary; ratio: Summary; stanzaBytes: number };
    groupchat: { k: number; proxy: Summary; relay: Summary; floorParseSerialize: Summary; floorFramer: Summary; ratio: Summary; stanzaBytes: number; rate: Record<"relay" | "proxy", Summary> };
  };
  accountWin?: {
    messages: number;
    configs: {
      k: number;
      rooms: number;
      direct: { stanzas: Summary; groupchat: Summary; bytes: Summary; latencyP50: Summary; latencyP99: Summary };
      proxy: { stanzas: Summary; groupchat: Summary; bytes: Summary; latencyP50: Summary; latencyP99: Summary };
      /** proxy / direct, per round. */
      groupchatRatio: Summary;
      stanzaRatio: Summary;
      byteRatio: Summary;
    }[];
  };
  reconnect?: {
    occupants: number;
    configs: {
      rooms: number;
      direct: { totalMs: Summary; rejoinMs: Summary; loginMs: Summary; occupantsSeen: number; missedSeen: number };
      proxy: { totalMs: Summary; rejoinMs: Summary; loginMs: Summary; occupantsSeen: number; missedSeen: number };
      speedupTotal: Summary;
      speedupRejoin: Summary;
    }[];
  };
  scale?: {
    baselineRssBytes: number;
    levels: {
      sessions: number; established: number; rssBytes: number; rssPerSessionKiB: number; loginSeconds: number; cpuPerStanzaUs: Summary; rate: Summary;
      /** Prosody's CPU per message and the two processes' CPU use (fraction of one core) during the runs. */
      prosodyCpuPerMessageUs: Summary; proxyBusy: Summary; prosodyBusy: Summary;
    }[];
    relay?: { sessions: number; rssPerSessionKiB: number };
    /** CPU per stanza at the largest level / at the smallest. */
    growth: Summary;
  };
  switchBack?: SwitchResults;
  inactive?: InactiveResults;
  login?: LoginResults;
  hotPath?: HotPathResults;
  firstJoin?: FirstJoinResults;
  cluster?: ClusterResults;
  profile?: { chat?: ProfileSummary; groupchat?: ProfileSummary };
  targets: Target[];
  errors: string[];
}

export interface Target {
  id: string;
  target: string;
  measured: string;
  /** The ratio the target is about (measured / limit direction is in `limit`). */
  ratio: number;
  limit: string;
  met: boolean;
  /** Set when the proxy does not support what the target is about: no figure, `ratio` NaN, `met` false. */
  unsupported?: string;
}

// ---------------------------------------------------------------------------- helpers

const us = (s: number): number => s * 1e6;

// ---------------------------------------------------------------------------- main

export interface BenchEnv {
  prosody: Prosody;
  direct: Path;
  relay: Path;
  proxy: Path;
  proxyChild: Child;
  relayChild: Child;
  ca: string[];
  cert: ReturnType<typeof makeCert>;
  certDir: string;
  children: Child[];
}

export async function runBench(o: BenchOptions, given?: Prosody): Promise<Results> {
  const log = o.log ?? ((m: string) => process.stderr.write(`[bench] ${m}\n`));
  const started = Date.now();
  const want = (m: Measurement): boolean => !o.only || o.only.includes(m);
  const results: Results = {
    meta: { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "?", quick: o.quick, rounds: o.rounds, seconds: 0, prosody: "" },
    targets: [],
    errors: [],
  };

  const certDir = mkdtempSync(join(tmpdir(), "bench-cert-"));
  const cert = makeCert(certDir);
  log("starting Prosody");
  const prosody = given ?? (await startProsody());
  const children: Child[] = [];
  try {
    results.meta.prosody = given ? "given" : `pid ${prosody.pid}`;
    const ca = [cert.cert, prosody.cert];
    const ep = (port: number) => ({ host: "127.0.0.1", port, ca, domain: prosody.domain });
    const relayChild = await startRelay({ targetPort: prosody.tlsPort, targetCa: prosody.certFile, cert });
    children.push(relayChild);
    const proxyChild = await startProxy({ upstreamPort: prosody.tlsPort, upstreamTls: "direct", upstreamCa: prosody.certFile, cert });
    children.push(proxyChild);
    const env: BenchEnv = {
      prosody, cert, certDir, ca, children, proxyChild, relayChild,
      direct: { name: "direct", ep: ep(prosody.tlsPort) },
      relay: { name: "relay", ep: ep(relayChild.port), pid: relayChild.pid },
      proxy: { name: "proxy", ep: ep(proxyChild.port), pid: proxyChild.pid },
    };
    const [alice, bob, carol] = prosody.users as [typeof prosody.users[0], typeof prosody.users[0], typeof prosody.users[0]];
    const users = { alice, bob, carol };

    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      const t0 = Date.now();
      log(`${name}…`);
      try {
        await fn();
      } catch (err) {
        const msg = `${name}: ${(err as Error).stack ?? String(err)}`;
        log(`FAILED ${msg}`);
        results.errors.push(msg);
      }
      log(`${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };

    let chatSample: Buffer | undefined;
    if (want("m1") || want("m2")) await step("1. pass-through latency and throughput", async () => {
      chatSample = await passthrough(o, env, users, results);
    });
    if (want("m2")) await step("2. CPU per stanza", () => cpuPerStanza(o, env, users, results, chatSample));
    if (want("m3")) await step("3. account-level win", () => accountWin(o, env, users, results));
    if (want("m4")) await step("4. reconnect", () => reconnect(o, env, users, results));
    if (want("m5")) await step("5. memory and scale", () => scale(o, env, users, results));
    if (want("m6")) await step("6. back after a network switch", async () => {
      results.switchBack = await measureSwitch(o.m6, o.rounds, { direct: env.direct, proxy: env.proxy, muc: prosody.muc }, users, log);
    });
    if (want("m7")) await step("7. an inactive phone in busy rooms", async () => {
      results.inactive = await measureInactive(o.m7, { direct: env.direct, proxy: env.proxy, directPort: prosody.tlsPort, proxyPort: proxyChild.port, muc: prosody.muc }, users, log);
    });
    if (want("m8")) await step("8. SCRAM login cost", async () => {
      // the same proxy with plain legs to Prosody on loopback (--upstream-tls none), when this Prosody
      // accepts plain c2s (the one the bench starts; not the test suite's, which requires TLS)
      const plainChild = prosody.plainC2s ? await startProxy({ upstreamPort: prosody.port, upstreamTls: "none", upstreamCa: prosody.certFile, cert }) : undefined;
      if (plainChild) children.push(plainChild);
      const plainPath: Path | undefined = plainChild ? { name: "proxy", ep: ep(plainChild.port), pid: plainChild.pid } : undefined;
      // the floor of that one: the pipe relay with a plain leg to the same port
      const relayPlainChild = prosody.plainC2s ? await startRelay({ targetPort: prosody.port, targetCa: "-", cert }) : undefined;
      if (relayPlainChild) children.push(relayPlainChild);
      results.login = await measureLogin(o.m8, o.rounds, {
        direct: env.direct, proxy: env.proxy, proxyPid: proxyChild.pid, prosodyPid: prosody.pid,
        plainLogin: async (u) => (await BenchClient.open(env.proxy.ep, u.user, u.pass)).end(),
        proxyPlain: plainChild && plainPath ? { path: plainPath, pid: plainChild.pid, plainLogin: async (u) => (await BenchClient.open(plainPath.ep, u.user, u.pass)).end() } : undefined,
        relay: { path: env.relay, pid: relayChild.pid },
        relayPlain: relayPlainChild ? { path: { name: "relay", ep: ep(relayPlainChild.port), pid: relayPlainChild.pid }, pid: relayPlainChild.pid } : undefined,
      }, users.alice, log);
    });
    if (want("m9")) await step("9. the hot path: CPU per room delivery and chat message", async () => {
      results.hotPath = await measureHotPath(o.m9, o.rounds, {
        direct: env.direct, relay: env.relay, proxy: env.proxy,
        startProfiled: (dir) => {
          const child = startProxy({
            upstreamPort: env.prosody.tlsPort, upstreamTls: "direct", upstreamCa: env.prosody.certFile, cert: env.cert,
            nodeFlags: ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "200"],
          });
          void child.then((c) => env.children.push(c), () => undefined);
          return child;
        },
      }, users, prosody.muc, log);
    });
    if (want("m10")) await step("10. first join", async () => {
      // two more proxies: the shipped start mode without the linger (each login's own account session),
      // and the start mode of before issue 15 (at the first join); see first-join.ts
      const mk = async (extraArgs: string[]): Promise<Path> => {
        const c = await startProxy({ upstreamPort: prosody.tlsPort, upstreamTls: "direct", upstreamCa: prosody.certFile, cert, extraArgs });
        children.push(c);
        return { name: "proxy", ep: ep(c.port), pid: c.pid };
      };
      const proxy = await mk(["--account-session-start", "login", "--account-session-linger", "0"]);
      const proxyJoin = await mk(["--account-session-start", "join"]);
      results.firstJoin = await measureFirstJoin(o.m10, o.rounds, { direct: env.direct, proxy, proxyJoin, muc: prosody.muc }, users.carol, users.bob, log);
    });
    if (want("m11")) await step("11. cluster: 1 vs 2 vs 3 nodes, takeover after SIGKILL", async () => {
      results.cluster = await measureCluster(o.m11, o.rounds, { prosody, direct: env.direct, cert, ca }, users.bob, log);
    });
    if (o.profile && (want("m1") || want("m2"))) await step("profile", () => profile(o, env, users, results));
  } finally {
    for (const c of children) await c.stop();
    if (!given) await prosody.stop();
    rmSync(certDir, { recursive: true, force: true });
  }
  results.targets = judge(results);
  results.meta.seconds = (Date.now() - started) / 1000;
  return results;
}

type U = { alice: { user: string; pass: string }; bob: { user: string; pass: string }; carol: { user: string; pass: string } };

// ---------------------------------------------------------------------------- 1

async function passthrough(o: BenchOptions, env: BenchEnv, u: U, results: Results): Promise<Buffer | undefined> {
  const paths = [env.direct, env.relay, env.proxy];
  const pairs = new Map<PathName, ChatPair>();
  for (const p of paths) pairs.set(p.name, await ChatPair.open(p, u.alice, u.bob));
  try {
    for (const p of pairs.values()) await p.pingPong(Math.min(30, o.m1.pings)); // warm-up: JIT, TLS, Prosody caches
    const lat: Record<PathName, { p50: number[]; p99: number[]; samples: number[] }> = {
      direct: { p50: [], p99: [], samples: [] }, relay: { p50: [], p99: [], samples: [] }, proxy: { p50: [], p99: [], samples: [] },
    };
    const rate: Record<PathName, number[][]> = { direct: o.m1.windows.map(() => []), relay: o.m1.windows.map(() => []), proxy: o.m1.windows.map(() => []) };
    const prosodyCpu: Record<PathName, number[]> = { direct: [], relay: [], proxy: [] };
    const chatCpu: Record<"relay" | "proxy", number[]> = { relay: [], proxy: [] };
    await perRound(o.rounds, paths, async (p) => {
      const rtts = await pairs.get(p.name)!.pingPong(o.m1.pings);
      const s = latencyStats(rtts);
      lat[p.name].p50.push(s.p50);
      lat[p.name].p99.push(s.p99);
      lat[p.name].samples.push(...rtts);
    });
    await perRound(o.rounds, paths, async (p) => {
      const pair = pairs.get(p.name)!;
      for (let wi = 0; wi < o.m1.windows.length; wi++) {
        const w = o.m1.windows[wi]!;
        const pids = [env.prosody.pid, ...(p.pid ? [p.pid] : [])];
        const r = await pair.throughput(w, o.m1.seconds, pids);
        rate[p.name][wi]!.push(r.rate);
        // CPU per message / stanza at the largest window (the saturated run)
        if (wi === o.m1.windows.length - 1 && r.delivered > 0) {
          prosodyCpu[p.name].push(us(r.cpu[0]!) / r.delivered);
          if (p.name !== "direct") chatCpu[p.name].push(us(r.cpu[1]!) / (2 * r.delivered)); // each message crosses twice: alice→server, server→bob
        }
      }
    });
    const latency = Object.fromEntries(paths.map((p) => [p.name, { p50: summarize(lat[p.name].p50), p99: summarize(lat[p.name].p99), samples: lat[p.name].samples }])) as Record<PathName, PathLatency>;
    const addedP50 = { proxy: summarize(lat.proxy.p50.map((x, i) => x - lat.direct.p50[i]!)), relay: summarize(lat.relay.p50.map((x, i) => x - lat.direct.p50[i]!)) };
    const addedP99 = { proxy: summarize(lat.proxy.p99.map((x, i) => x - lat.direct.p99[i]!)), relay: summarize(lat.relay.p99.map((x, i) => x - lat.direct.p99[i]!)) };
    const sat = (n: PathName): number[] => Array.from({ length: o.rounds }, (_, r) => Math.max(...rate[n].map((ws) => ws[r] ?? 0)));
    results.passthrough = {
      pings: o.m1.pings,
      latency,
      addedP50,
      addedP99,
      addedRatio: addedP50.proxy.median / addedP50.relay.median,
      throughput: {
        windows: o.m1.windows,
        rate: { direct: rate.direct.map(summarize), relay: rate.relay.map(summarize), proxy: rate.proxy.map(summarize) },
        saturation: { direct: summarize(sat("direct")), relay: summarize(sat("relay")), proxy: summarize(sat("proxy")) },
        ratio: ratioOf(sat("proxy"), sat("direct")),
        relayRatio: ratioOf(sat("relay"), sat("direct")),
      },
      prosodyCpuPerMessageUs: { direct: summarize(prosodyCpu.direct), relay: summarize(prosodyCpu.relay), proxy: summarize(prosodyCpu.proxy) },
    };
    (results as { _chatCpu?: typeof chatCpu })._chatCpu = chatCpu;
    return pairs.get("proxy")?.sample ?? pairs.get("direct")?.sample;
  } finally {
    for (const p of pairs.values()) p.close();
  }
}

// ---------------------------------------------------------------------------- 2

async function cpuPerStanza(o: BenchOptions, env: BenchEnv, u: U, results: Results, chatSample: Buffer | undefined): Promise<void> {
  const chatCpu = (results as { _chatCpu?: Record<"relay" | "proxy", number[]> })._chatCpu;
  delete (results as { _chatCpu?: unknown })._chatCpu;
  const room = `bench-fanout-${process.pid.toString(36)}@${env.prosody.muc}`;
  const fans = new Map<"relay" | "proxy", FanOut>();
  const cpu: Record<"relay" | "proxy", number[]> = { relay: [], proxy: [] };
  const rate: Record<"relay" | "proxy", number[]> = { relay: [], proxy: [] };
  let gcSample: Buffer | undefined;
  try {
    for (const p of [env.relay, env.proxy]) {
      fans.set(p.name as "relay" | "proxy", await FanOut.open(p, env.direct, u.alice, u.bob, o.m2.k, room.replace("@", `-${p.name}@`)));
    }
    for (const f of fans.values()) await f.run(o.m2.window, Math.min(0.5, o.m2.seconds), [f.path.pid!]); // warm-up
    await perRound(o.rounds, [env.relay, env.proxy], async (p) => {
      const f = fans.get(p.name as "relay" | "proxy")!;
      const r = await f.run(o.m2.window, o.m2.seconds, [p.pid!]);
      cpu[p.name as "relay" | "proxy"].push(us(r.cpu[0]!) / r.delivered);
      rate[p.name as "relay" | "proxy"].push(r.rate);
    });
    gcSample = fans.get("proxy")?.sample ?? fans.get("relay")?.sample;
  } finally {
    for (const f of fans.values()) f.close();
  }
  const floors = (s: Buffer): { ps: number[]; fr: number[] } => {
    parserFloor(s, Math.min(2000, o.m2.floorIterations)); // warm-up
    const ps: number[] = [];
    const fr: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const f = parserFloor(s, o.m2.floorIterations);
      ps.push(us(f.parseSerialize));
      fr.push(us(f.framer));
    }
    return { ps, fr };
  };
  const chatS = chatSample ?? Buffer.from(`<message from='alice@localhost/x' to='bob@localhost/y' type='chat' id='t1' xmlns='jabber:client'><body>${"x".repeat(48)}</body><no-store xmlns='urn:xmpp:hints'/></message>`);
  const gcS = gcSample ?? chatS;
  const fc = floors(chatS);
  const fg = floors(gcS);
  const chatProxy = chatCpu?.proxy ?? [];
  const chatRelay = chatCpu?.relay ?? [];
  results.cpu = {
    chat: {
      proxy: summarize(chatProxy), relay: summarize(chatRelay), floorParseSerialize: summarize(fc.ps), floorFramer: summarize(fc.fr),
      ratio: summarize(chatProxy.map((x) => x / median(fc.ps))), stanzaBytes: chatS.length,
    },
    groupchat: {
      k: o.m2.k, proxy: summarize(cpu.proxy), relay: summarize(cpu.relay), floorParseSerialize: summarize(fg.ps), floorFramer: summarize(fg.fr),
      ratio: summarize(cpu.proxy.map((x) => x / median(fg.ps))), stanzaBytes: gcS.length,
      rate: { relay: summarize(rate.relay), proxy: summarize(rate.proxy) },
    },
  };
}

// ---------------------------------------------------------------------------- 3

async function accountWin(o: BenchOptions, env: BenchEnv, u: U, results: Results): Promise<void> {
  // Both paths through the counting tap, so what Prosody sends is counted the same way.
  const tap = new Tap(env.prosody.tlsPort, env.prosody.cert, env.cert);
  await tap.start();
  const tapProxy = await startProxy({ upstreamPort: tap.port, upstreamTls: "direct", upstreamCa: env.cert.certFile, cert: env.cert });
  env.children.push(tapProxy);
  const paths: Path[] = [
    { name: "direct", ep: { ...env.direct.ep, port: tap.port } },
    { name: "proxy", ep: { ...env.proxy.ep, port: tapProxy.port }, pid: tapProxy.pid },
  ];
  const maxRooms = Math.max(...o.m3.rooms);
  const tag = process.pid.toString(36);
  const roomsOf = (p: PathName): string[] => Array.from({ length: maxRooms }, (_, i) => `aw-${p}-${tag}-${i}@${env.prosody.muc}`);
  const sender = await connect(env.direct, u.bob, resource("m3s"));
  const configs: NonNullable<Results["accountWin"]>["configs"] = [];
  try {
    await joinRooms(sender, [...roomsOf("direct"), ...roomsOf("proxy")], "bob");
    for (const k of o.m3.ks) {
      const groups = new Map(paths.map((p) => [p.name, new AccountGroup(p, u.alice)]));
      try {
        for (const r of o.m3.rooms) {
          for (const p of paths) await groups.get(p.name)!.grow(k, roomsOf(p.name).slice(0, r));
          const raw: Record<string, AccountWinRound[]> = { direct: [], proxy: [] };
          await perRound(o.rounds, paths, async (p) => {
            const rooms = roomsOf(p.name).slice(0, r);
            raw[p.name]!.push(await groups.get(p.name)!.round(sender, rooms, o.m3.messages, () => tap.reset(), () => tap.countsFor(`${u.alice.user}@${env.prosody.domain}`)));
          });
          const side = (rs: AccountWinRound[]) => ({
            stanzas: summarize(rs.map((x) => x.stanzas)),
            groupchat: summarize(rs.map((x) => x.groupchat)),
            bytes: summarize(rs.map((x) => x.bytes)),
            latencyP50: summarize(rs.map((x) => latencyStats(x.latencies).p50)),
            latencyP99: summarize(rs.map((x) => latencyStats(x.latencies).p99)),
          });
          const d = raw.direct!;
          const px = raw.proxy!;
          configs.push({
            k, rooms: r, direct: side(d), proxy: side(px),
            groupchatRatio: ratioOf(px.map((x) => x.groupchat), d.map((x) => x.groupchat)),
            stanzaRatio: ratioOf(px.map((x) => x.stanzas), d.map((x) => x.stanzas)),
            byteRatio: ratioOf(px.map((x) => x.bytes), d.map((x) => x.bytes)),
          });
        }
      } finally {
        for (const g of groups.values()) g.close();
        await sleep(300);
      }
    }
  } finally {
    sender.close();
    await tapProxy.stop();
    await tap.stop();
  }
  results.accountWin = { messages: o.m3.messages, configs };
}

// ---------------------------------------------------------------------------- 4

async function reconnect(o: BenchOptions, env: BenchEnv, u: U, results: Results): Promise<void> {
  const maxRooms = Math.max(...o.m4.rooms);
  const tag = process.pid.toString(36);
  const paths: Path[] = [env.direct, env.proxy];
  const roomsOf = (p: PathName): string[] => Array.from({ length: maxRooms }, (_, i) => `rc-${p}-${tag}-${i}@${env.prosody.muc}`);
  // occupants - 1 others (the reconnecting session is the 20th)
  const occ = await occupy(env.direct, u.bob, [...roomsOf("direct"), ...roomsOf("proxy")], o.m4.occupants - 1);
  const configs: NonNullable<Results["reconnect"]>["configs"] = [];
  try {
    const sender = occ[0]!;
    let round = 0;
    for (const r of o.m4.rooms) {
      const raw: Record<string, ReconnectRound[]> = { direct: [], proxy: [] };
      for (const p of paths) await reconnectRound(p, u.alice, sender, roomsOf(p.name).slice(0, r), round++, o.m4.pauseMs); // warm-up (the proxy's account joins here)
      await perRound(o.rounds, paths, async (p) => {
        raw[p.name]!.push(await reconnectRound(p, u.alice, sender, roomsOf(p.name).slice(0, r), round++, o.m4.pauseMs));
      });
      const side = (rs: ReconnectRound[]) => ({
        totalMs: summarize(rs.map((x) => x.totalMs)),
        rejoinMs: summarize(rs.map((x) => x.rejoinMs)),
        loginMs: summarize(rs.map((x) => x.loginMs)),
        occupantsSeen: median(rs.map((x) => x.occupantsSeen)),
        missedSeen: median(rs.map((x) => x.missedSeen)),
      });
      const d = raw.direct!;
      const px = raw.proxy!;
      configs.push({
        rooms: r, direct: side(d), proxy: side(px),
        speedupTotal: ratioOf(d.map((x) => x.totalMs), px.map((x) => x.totalMs)),
        speedupRejoin: ratioOf(d.map((x) => x.rejoinMs), px.map((x) => x.rejoinMs)),
      });
    }
  } finally {
    for (const c of occ) c.close();
  }
  results.reconnect = { occupants: o.m4.occupants, configs };
}

// ---------------------------------------------------------------------------- 5

async function scale(o: BenchOptions, env: BenchEnv, u: U, results: Results): Promise<void> {
  // A fresh proxy, so its RSS holds nothing but these sessions.
  const child = await startProxy({ upstreamPort: env.prosody.tlsPort, upstreamTls: "direct", upstreamCa: env.prosody.certFile, cert: env.cert });
  env.children.push(child);
  const path: Path = { name: "proxy", ep: { ...env.proxy.ep, port: child.port }, pid: child.pid };
  const idle: BenchClient[] = [];
  const pool3 = [u.alice, u.bob, u.carol];
  try {
    // warm-up: code paths, TLS contexts, the pair used for CPU per stanza
    const pair = await ChatPair.open(path, u.alice, u.bob);
    await pair.pingPong(20);
    await pair.throughput(64, 0.3, [child.pid]);
    const warm: BenchClient[] = [];
    await openIdle(path, pool3, o.quick ? 3 : 20, warm);
    for (const c of warm) c.close();
    await sleep(o.m5.settleMs);
    const base = await settledRss(child.pid, o.m5.settleMs < 500 ? 1 : 5);
    const levels: NonNullable<Results["scale"]>["levels"] = [];
    for (const n of o.m5.levels) {
      const loginSeconds = await openIdle(path, pool3, n - idle.length, idle);
      const established = idle.filter((c) => !c.closed).length;
      await sleep(o.m5.settleMs);
      const rss = await settledRss(child.pid, o.m5.settleMs < 500 ? 1 : 5);
      const cpu: number[] = [];
      const rate: number[] = [];
      const pcpu: number[] = [];
      const busy: number[] = [];
      const pbusy: number[] = [];
      for (let r = 0; r < o.rounds; r++) {
        const t = await pair.throughput(64, o.m5.seconds, [child.pid, env.prosody.pid]);
        cpu.push(us(t.cpu[0]!) / (2 * t.delivered));
        rate.push(t.rate);
        pcpu.push(us(t.cpu[1]!) / t.delivered);
        busy.push(t.cpu[0]! / t.wall);
        pbusy.push(t.cpu[1]! / t.wall);
      }
      levels.push({
        sessions: n, established, rssBytes: rss, rssPerSessionKiB: (rss - base) / n / 1024, loginSeconds, cpuPerStanzaUs: summarize(cpu), rate: summarize(rate),
        prosodyCpuPerMessageUs: summarize(pcpu), proxyBusy: summarize(busy), prosodyBusy: summarize(pbusy),
      });
      log(o, `  ${n} sessions: ${established} up, ${((rss - base) / n / 1024).toFixed(1)} KiB/session, login ${loginSeconds.toFixed(1)} s`);
    }
    pair.close();
    const first = levels[0]!;
    const last = levels[levels.length - 1]!;
    results.scale = {
      baselineRssBytes: base,
      levels,
      growth: ratioOf(last.cpuPerStanzaUs.rounds, first.cpuPerStanzaUs.rounds),
    };
  } finally {
    for (const c of idle) c.close();
    await child.stop();
  }
  if (o.m5.relayLevel > 0 && results.scale) {
    // the floor: the same idle sessions through the pipe relay (two TLS sockets each, nothing else)
    const relay = await startRelay({ targetPort: env.prosody.tlsPort, targetCa: env.prosody.certFile, cert: env.cert });
    env.children.push(relay);
    const rp: Path = { name: "relay", ep: { ...env.relay.ep, port: relay.port }, pid: relay.pid };
    const clients: BenchClient[] = [];
    try {
      const warm: BenchClient[] = [];
      await openIdle(rp, pool3, 20, warm);
      for (const c of warm) c.close();
      await sleep(1500);
      const base = await settledRss(relay.pid);
      await openIdle(rp, pool3, o.m5.relayLevel, clients);
      await sleep(2000);
      const rss = await settledRss(relay.pid);
      results.scale.relay = { sessions: o.m5.relayLevel, rssPerSessionKiB: (rss - base) / o.m5.relayLevel / 1024 };
    } finally {
      for (const c of clients) c.close();
      await relay.stop();
    }
  }
}

function log(o: BenchOptions, m: string): void {
  (o.log ?? ((s: string) => process.stderr.write(`[bench] ${s}\n`)))(m);
}

// ---------------------------------------------------------------------------- profile

async function profile(o: BenchOptions, env: BenchEnv, u: U, results: Results): Promise<void> {
  const dir = join(ROOT, "bench", "profiles");
  const out: NonNullable<Results["profile"]> = {};
  for (const kind of ["chat", "groupchat"] as const) {
    const sub = join(dir, kind);
    rmSync(sub, { recursive: true, force: true }); // only its own: other measurements profile into bench/profiles/ too
    const spawnAt = Date.now();
    const child = await startProxy({
      upstreamPort: env.prosody.tlsPort, upstreamTls: "direct", upstreamCa: env.prosody.certFile, cert: env.cert,
      nodeFlags: ["--cpu-prof", "--cpu-prof-dir", sub, "--cpu-prof-interval", "200"],
    });
    env.children.push(child);
    const path: Path = { name: "proxy", ep: { ...env.proxy.ep, port: child.port }, pid: child.pid };
    let window: [number, number] | undefined;
    let load: { cpuMs: number; rate: number } | undefined;
    try {
      if (kind === "chat") {
        const pair = await ChatPair.open(path, u.alice, u.bob);
        await pair.throughput(64, 1, [child.pid]); // warm-up: JIT
        const t0 = Date.now();
        const r = await pair.throughput(64, 3, [child.pid]);
        window = [t0 - spawnAt + 300, Date.now() - spawnAt];
        load = { cpuMs: r.cpu[0]! * 1000, rate: r.rate };
        pair.close();
      } else {
        const f = await FanOut.open(path, env.direct, u.alice, u.bob, o.m2.k, `bench-prof-${process.pid.toString(36)}@${env.prosody.muc}`);
        await f.run(o.m2.window, 1, [child.pid]);
        const t0 = Date.now();
        const r = await f.run(o.m2.window, 3, [child.pid]);
        window = [t0 - spawnAt + 300, Date.now() - spawnAt];
        load = { cpuMs: r.cpu[0]! * 1000, rate: r.rate };
        f.close();
      }
    } finally {
      await child.stop();
    }
    const files = readdirSync(sub).filter((f) => f.endsWith(".cpuprofile"));
    if (files[0]) out[kind] = { ...summarizeProfile(join(sub, files[0]), ROOT, 20, window), procCpuMs: load?.cpuMs, rate: load?.rate };
  }
  results.profile = out;
}

// ---------------------------------------------------------------------------- targets

export function judge(r: Results): Target[] {
  const t: Target[] = [];
  const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
  if (r.passthrough) {
    const p = r.passthrough;
    t.push({
      id: "latency", target: "Added p50 latency through the proxy ≤ 2× the raw TLS pipe relay's",
      measured: `proxy +${f(p.addedP50.proxy.median * 1000, 0)} µs, relay +${f(p.addedP50.relay.median * 1000, 0)} µs (p50 RTT over direct)`,
      ratio: p.addedRatio, limit: "≤ 2", met: p.addedRatio <= 2,
    });
    t.push({
      id: "throughput", target: "Throughput ≥ 90 % of direct",
      measured: `proxy ${f(p.throughput.saturation.proxy.median, 0)} msg/s vs direct ${f(p.throughput.saturation.direct.median, 0)} msg/s`,
      ratio: p.throughput.ratio.median, limit: "≥ 0.90", met: p.throughput.ratio.median >= 0.9,
    });
  }
  if (r.cpu) {
    for (const kind of ["chat", "groupchat"] as const) {
      const c = r.cpu[kind];
      t.push({
        id: `cpu-${kind}`, target: `Proxy CPU per forwarded stanza ≤ 1.5× the parser floor (${kind}${kind === "groupchat" ? `, K=${r.cpu.groupchat.k} fan-out` : ""})`,
        measured: `${f(c.proxy.median)} µs vs floor ${f(c.floorParseSerialize.median)} µs (relay ${f(c.relay.median)} µs)`,
        ratio: c.ratio.median, limit: "≤ 1.5", met: c.ratio.median <= 1.5,
      });
    }
  }
  if (r.accountWin) {
    for (const k of [...new Set(r.accountWin.configs.map((c) => c.k))]) {
      const cs = r.accountWin.configs.filter((c) => c.k === k);
      const times = cs.flatMap((c) => c.groupchatRatio.rounds.map((x) => x * k));
      const lo = Math.min(...times);
      const hi = Math.max(...times);
      t.push({
        id: `account-k${k}`, target: `Room stanzas the server delivers to an account with K=${k} sessions: exactly 1/K of direct`,
        measured: `proxy/direct × K = ${f(lo, 3)}–${f(hi, 3)} over R=${cs.map((c) => c.rooms).join(",")} and all rounds`,
        ratio: median(times), limit: "= 1", met: lo === 1 && hi === 1,
      });
    }
  }
  if (r.reconnect) {
    const big = [...r.reconnect.configs].sort((a, b) => b.rooms - a.rooms)[0];
    if (big) {
      t.push({
        id: "reconnect", target: `Reconnect with ${big.rooms} rooms ≥ 10× faster than direct (connect → every occupant list and missed message)`,
        measured: `direct ${f(big.direct.totalMs.median, 0)} ms, proxy ${f(big.proxy.totalMs.median, 0)} ms (rejoin alone: ${f(big.direct.rejoinMs.median, 0)} vs ${f(big.proxy.rejoinMs.median, 1)} ms, ${f(big.speedupRejoin.median, 1)}×)`,
        ratio: big.speedupTotal.median, limit: "≥ 10", met: big.speedupTotal.median >= 10,
      });
    }
  }
  if (r.scale) {
    for (const l of r.scale.levels.filter((x) => x.sessions >= 1000 || x === r.scale!.levels[r.scale!.levels.length - 1])) {
      t.push({
        id: `rss-${l.sessions}`, target: `≤ 120 KiB RSS per idle proxied session (${l.sessions} sessions)`,
        measured: `${f(l.rssPerSessionKiB, 1)} KiB/session${r.scale.relay ? ` (pipe relay: ${f(r.scale.relay.rssPerSessionKiB, 1)} KiB at ${r.scale.relay.sessions})` : ""}`,
        ratio: l.rssPerSessionKiB / 120, limit: "≤ 1 (of 120 KiB)", met: l.rssPerSessionKiB <= 120,
      });
    }
    const top = r.scale.levels[r.scale.levels.length - 1]!;
    t.push({
      id: "sessions", target: "5k sessions on this machine",
      measured: `${top.established} of ${top.sessions} idle sessions established and kept (login ${f(top.loginSeconds, 1)} s)`,
      ratio: top.established / 5000, limit: "≥ 1 (of 5000)", met: top.established >= 5000,
    });
  }
  if (r.hotPath) {
    const h = r.hotPath;
    for (const { k, cost } of h.room) {
      t.push({
        id: `hot-room-k${k}`, target: `Proxy CPU per room delivery ≤ 2× the pipe relay's (K=${k}, one message at a time)`,
        measured: `proxy ${f(cost.proxy.median, 1)} µs, relay ${f(cost.relay.median, 1)} µs per delivery`,
        ratio: cost.ratio.median, limit: "≤ 2", met: cost.ratio.median <= 2,
      });
    }
    t.push({
      id: "hot-chat", target: "Proxy CPU per chat message ≤ 1.5× the pipe relay's (one at a time)",
      measured: `proxy ${f(h.chat.proxy.median, 1)} µs, relay ${f(h.chat.relay.median, 1)} µs per message`,
      ratio: h.chat.ratio.median, limit: "≤ 1.5", met: h.chat.ratio.median <= 1.5,
    });
  }
  t.push(...mobileTargets(r));
  return t;
}

export { quantile, sortNum, cpuSeconds, rssBytes };
