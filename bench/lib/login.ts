/**
 * Measurement 8 (issue 12): what a SCRAM login costs through the proxy vs straight to Prosody. alice
 * logs in with SCRAM-SHA-1 over direct TLS, as a real client does it after its first login: with the
 * SaltedPassword it cached for the server's salt (RFC 5802 §5.1), so no PBKDF2 on the client. The
 * proxy has her record from a PLAIN login made before (the server's salt mirrored): it verifies with
 * HMACs, then logs her own leg in upstream with the revealed ClientKey.
 *
 * - latency: `sequential` logins one after the other, each timed from the TCP connect to the bind
 *   result (the first moment a client can send); p50 per round.
 * - throughput: `burst` logins, `parallel` at a time; logins per second of wall time, and the CPU
 *   time the proxy and Prosody spent on them (from /proc), as logins per second of one core.
 * - over a mobile link: the same logins with `mobileRttMs` of round trip between the phone and
 *   whatever it connects to (a DelayPipe in front of Prosody, and in front of the proxy — whose own
 *   leg to Prosody stays on loopback, as when the proxy runs next to the server). This is where the
 *   proxy's overlapping of its upstream login with the client's round trips shows; on loopback the
 *   three processes share two cores and CPU decides.
 * - the floor: the same logins through the TLS pipe relay (bench/relay.ts: TLS in, TLS out, pipe(), no
 *   XMPP at all; SASL runs end to end with Prosody), and through the relay with a plain leg to Prosody
 *   beside the plain-leg proxy. Whatever a Node process that terminates the client's TLS adds to a login
 *   shows there; what the proxy adds beyond it is its own.
 * - SCRAM-SHA-1-PLUS (tls-exporter) through the proxy, latency only: Prosody's own -PLUS is not
 *   comparable on this path (the proxy never binds upstream).
 * Rounds interleave the paths.
 */
import * as tls from "node:tls";
import { ScramClient, type ScramKeys } from "../../core/sasl/scram.js";
import { channelBindings } from "../../proxy/channel-binding.js";
import type { Path } from "./paths.js";
import { cpuSeconds, nowMs } from "./procs.js";
import { type Summary, median, perRound, ratioOf, summarize } from "./stats.js";
import { BenchClient, pool, sleep } from "./xmpp.js";
import { DelayPipe } from "./delay-pipe.js";

type Cred = { user: string; pass: string };

export interface LoginOptions {
  /** Logins timed one after the other, per path and round. */
  sequential: number;
  /** Logins of the throughput burst, per path and round. */
  burst: number;
  /** How many of them at a time. */
  parallel: number;
  /** Round trip of the emulated mobile link (ms), and logins timed over it per path and round. */
  mobileRttMs: number;
  mobileLogins: number;
}

export interface LoginSide {
  /** Median login time of a round (ms). */
  p50Ms: Summary;
  /** Logins per second of wall time, `parallel` at a time. */
  perSecond: Summary;
  /** CPU milliseconds per login: the serving process (the proxy, or Prosody when direct). */
  cpuMsPerLogin: Summary;
  /** Prosody's CPU milliseconds per login (on the proxy path: the proxy's own upstream logins). */
  serverCpuMsPerLogin: Summary;
}

export interface LoginResults {
  options: LoginOptions;
  direct: LoginSide;
  proxy: LoginSide;
  /** SCRAM-SHA-1-PLUS with tls-exporter through the proxy: median login time per round (ms). */
  proxyPlusP50Ms: Summary;
  /** proxy p50 / direct p50, per round. */
  proxyVsDirect: Summary;
  /** Over the emulated mobile link: median login time per round (ms), and proxy / direct per round. */
  mobile: { direct: Summary; proxy: Summary; proxyVsDirect: Summary };
  /** Logins per second of one core: 1000 / CPU ms per login, of the proxy and of Prosody (direct). */
  perCoreSecond: { proxy: number; direct: number };
  /**
   * PLAIN logins (connect → bound, `sequential` per round, the round's median), which send the password
   * every time: through the proxy its upstream SCRAM login reuses the SaltedPassword it computed before
   * (core/sasl/salted-cache.ts). Absent in runs made before issue 15.
   */
  plain?: { direct: Summary; proxy: Summary; proxyVsDirect: Summary };
  /**
   * A second proxy whose own legs to Prosody are plain TCP on loopback (`--upstream-tls none`, Prosody
   * with c2s_require_encryption = false): the same logins, bursts and CPU. Absent before issue 15's last part.
   */
  proxyPlain?: LoginSide & { vsDirect: Summary };
  /**
   * The floor: the TLS pipe relay (TLS both legs), and the relay with a plain TCP leg to Prosody; the same
   * logins, bursts and CPU (serving process: the relay). `vsDirect`: relay ÷ direct; `proxyVsRelay`:
   * the proxy (or the plain-leg proxy) ÷ that relay, per round. Absent before issue 15's last part.
   */
  relay?: LoginSide & { vsDirect: Summary; proxyVsRelay: Summary };
  relayPlain?: LoginSide & { vsDirect: Summary; proxyVsRelay?: Summary };
  /**
   * Logins whose client offers the TLS session it kept from its previous connection (as phones do on
   * reconnect): sequential, the round's median; CPU per login of the serving process and of Prosody
   * over those logins; the share of connects the server resumed (Prosody 0.12 resumes none).
   */
  resumed?: {
    direct: Summary; proxy: Summary; proxyPlain?: Summary; proxyVsDirect: Summary; proxyPlainVsDirect?: Summary;
    cpuMsPerLogin: { direct: Summary; proxy: Summary; proxyPlain?: Summary };
    serverCpuMsPerLogin: { direct: Summary; proxy: Summary; proxyPlain?: Summary };
    resumedShare: { direct: number; proxy: number; proxyPlain?: number };
  };
}

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const header = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;

/**
 * A client's TLS session cache for one server (what a phone keeps between connections): the last
 * session ticket it got, offered at the next connect; counts how many connects the server resumed.
 */
export interface TlsSessionCache {
  session?: Buffer;
  connects: number;
  resumed: number;
}

/**
 * One SCRAM-SHA-1 login over direct TLS up to the bind result; resolves with its duration (ms). With
 * `cache`, the client offers the TLS session it kept from its previous connection to this server.
 */
export async function scramLoginOnce(p: Path, u: Cred, keys: ScramKeys | undefined, plus = false, cache?: TlsSessionCache): Promise<{ ms: number; keys: ScramKeys }> {
  const t0 = nowMs();
  const socket = tls.connect({ host: p.ep.host, port: p.ep.port, servername: p.ep.domain, ca: p.ep.ca, ALPNProtocols: ["xmpp-client"], session: cache?.session });
  if (cache) {
    socket.on("session", (s: Buffer) => (cache.session = s));
    socket.once("secureConnect", () => {
      cache.connects++;
      if (socket.isSessionReused()) cache.resumed++;
    });
  }
  let buf = "";
  let wake: (() => void) | undefined;
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => {
    buf += d;
    wake?.();
  });
  const closed = new Promise<never>((_, reject) => {
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`${p.name}: connection closed during login`)));
  });
  closed.catch(() => undefined);
  const until = async (re: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      const m = buf.match(re);
      if (m) {
        buf = buf.slice((m.index ?? 0) + m[0].length);
        return m;
      }
      await Promise.race([new Promise<void>((r) => (wake = r)), closed, sleep(30_000).then(() => Promise.reject(new Error(`${p.name}: login timeout at ${re}`)))]);
    }
  };
  try {
    await Promise.race([new Promise<void>((r) => socket.once("secureConnect", () => r())), closed]);
    socket.write(header(p.ep.domain));
    await until(/<\/stream:features>/);
    const gs2 = plus ? { gs2: { type: "tls-exporter", data: channelBindings(socket, "client").get("tls-exporter")! } } : {};
    const c = new ScramClient("SHA-1", u.user, keys ?? { password: u.pass }, gs2);
    socket.write(`<auth xmlns='${NS_SASL}' mechanism='${c.mechanism}'>${Buffer.from(c.clientFirst()).toString("base64")}</auth>`);
    const ch = await until(/<challenge[^>]*>([^<]*)<\/challenge>|<failure[\s\S]*?<\/failure>/);
    if (ch[0].startsWith("<failure")) throw new Error(`${p.name}: SCRAM failed: ${ch[0]}`);
    socket.write(`<response xmlns='${NS_SASL}'>${Buffer.from(await c.clientFinalAsync(Buffer.from(ch[1]!, "base64").toString("utf8"))).toString("base64")}</response>`);
    const ok = await until(/<success[^>]*\/>|<success[^>]*>([^<]*)<\/success>|<failure[\s\S]*?<\/failure>/);
    if (ok[0].startsWith("<failure")) throw new Error(`${p.name}: SCRAM failed: ${ok[0]}`);
    c.verifyServerFinal(Buffer.from(ok[1] ?? "", "base64").toString("utf8"));
    socket.write(header(p.ep.domain));
    await until(/<\/stream:features>/);
    socket.write("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await until(/<jid>[^<]+<\/jid>/);
    const ms = nowMs() - t0;
    return { ms, keys: keys ?? c.keys };
  } finally {
    socket.end("</stream:stream>");
    setTimeout(() => socket.destroy(), 200).unref();
  }
}

/**
 * Waits until the proxy verifies alice itself: a -PLUS login succeeds only against a record (an
 * account without one is refused, docs/architecture.md §3.5).
 */
async function untilVerified(proxy: Path, u: Cred, keys: ScramKeys): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await scramLoginOnce(proxy, u, keys, true);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("the proxy never verified alice's SCRAM login (no record after her PLAIN login?)");
}

export interface LoginEnv {
  direct: Path;
  proxy: Path;
  proxyPid: number;
  prosodyPid: number;
  /** A PLAIN login of `u` through the proxy, which makes its records. */
  plainLogin(u: Cred): Promise<void>;
  /** The proxy with plain legs to Prosody (`--upstream-tls none`), measured like the proxy when given. */
  proxyPlain?: { path: Path; pid: number; plainLogin(u: Cred): Promise<void> };
  /** The TLS pipe relay to Prosody's direct TLS port, and one with a plain leg to its plain c2s port. */
  relay?: { path: Path; pid: number };
  relayPlain?: { path: Path; pid: number };
}

export async function measureLogin(o: LoginOptions, rounds: number, env: LoginEnv, u: Cred, log: (m: string) => void): Promise<LoginResults> {
  // the cached SaltedPassword, from one login straight to Prosody (the proxy mirrors its salt)
  const { keys } = await scramLoginOnce(env.direct, u, undefined);
  await env.plainLogin(u);
  await untilVerified(env.proxy, u, keys);
  if (env.proxyPlain) {
    await env.proxyPlain.plainLogin(u);
    await untilVerified(env.proxyPlain.path, u, keys);
  }
  log("  record in place: the proxy verifies alice's SCRAM logins itself");
  const newRaw = () => ({ p50: [] as number[], perSecond: [] as number[], cpu: [] as number[], server: [] as number[] });
  const raw = { direct: newRaw(), proxy: newRaw(), proxyPlain: newRaw(), relay: newRaw(), relayPlain: newRaw() };
  // sequential logins offering the previous connection's TLS session: per path its cache, medians, CPU
  type Side = "direct" | "proxy" | "proxyPlain";
  type Floor = "relay" | "relayPlain";
  const caches: Record<Side, TlsSessionCache> = { direct: { connects: 0, resumed: 0 }, proxy: { connects: 0, resumed: 0 }, proxyPlain: { connects: 0, resumed: 0 } };
  const resumed = { direct: newRaw(), proxy: newRaw(), proxyPlain: newRaw() };
  const pathOf = (side: Side | Floor): { path: Path; pid: number } =>
    side === "direct" ? { path: env.direct, pid: env.prosodyPid } : side === "proxy" ? { path: env.proxy, pid: env.proxyPid }
      : side === "proxyPlain" ? { path: env.proxyPlain!.path, pid: env.proxyPlain!.pid } : env[side]!;
  const floors = (["relay", "relayPlain"] as const).filter((f) => env[f] !== undefined);
  const plusP50: number[] = [];
  const plain = { direct: [] as number[], proxy: [] as number[] };
  let plainSeq = 0;
  const mobile = { direct: [] as number[], proxy: [] as number[] };
  const half = o.mobileRttMs / 2;
  const pipes = { direct: new DelayPipe(env.direct.ep.port, half), proxy: new DelayPipe(env.proxy.ep.port, half) };
  const far = { direct: { ...env.direct, ep: { ...env.direct.ep, port: await pipes.direct.start() } }, proxy: { ...env.proxy, ep: { ...env.proxy.ep, port: await pipes.proxy.start() } } };
  for (const p of [env.direct, env.proxy, ...(env.proxyPlain ? [env.proxyPlain.path] : []), ...floors.map((f) => pathOf(f).path)]) await scramLoginOnce(p, u, keys); // warm-up
  for (const side of ["direct", "proxy", ...(env.proxyPlain ? ["proxyPlain" as const] : [])] as const) await scramLoginOnce(pathOf(side).path, u, keys, false, caches[side]); // the first ticket
  type Kind = Side | Floor | "plus" | "mobile-direct" | "mobile-proxy" | "plain-direct" | "plain-proxy" | "resumed-direct" | "resumed-proxy" | "resumed-proxyPlain";
  const kinds: Kind[] = ["direct", "proxy", "plus", "mobile-direct", "mobile-proxy", "plain-direct", "plain-proxy", "resumed-direct", "resumed-proxy",
    ...(env.proxyPlain ? (["proxyPlain", "resumed-proxyPlain"] as const) : []), ...floors];
  try {
  await perRound(rounds, kinds, async (kind) => {
    if (kind === "resumed-direct" || kind === "resumed-proxy" || kind === "resumed-proxyPlain") {
      const side: Side = kind === "resumed-direct" ? "direct" : kind === "resumed-proxy" ? "proxy" : "proxyPlain";
      const { path, pid } = pathOf(side);
      const ms: number[] = [];
      const cpu0 = cpuSeconds(pid);
      const srv0 = cpuSeconds(env.prosodyPid);
      for (let i = 0; i < o.sequential; i++) ms.push((await scramLoginOnce(path, u, keys, false, caches[side])).ms);
      await sleep(300); // the close of the last login
      resumed[side].p50.push(median(ms));
      resumed[side].cpu.push(((cpuSeconds(pid) - cpu0) * 1000) / o.sequential);
      resumed[side].server.push(((cpuSeconds(env.prosodyPid) - srv0) * 1000) / o.sequential);
      return;
    }
    if (kind === "plain-direct" || kind === "plain-proxy") {
      const p = kind === "plain-direct" ? env.direct : env.proxy;
      const ms: number[] = [];
      for (let i = 0; i < o.sequential; i++) {
        const t0 = nowMs();
        const c = await BenchClient.connect(p.ep, u.user, u.pass, `plain-${++plainSeq}`);
        ms.push(nowMs() - t0);
        c.end();
      }
      plain[kind === "plain-direct" ? "direct" : "proxy"].push(median(ms));
      return;
    }
    if (kind === "mobile-direct" || kind === "mobile-proxy") {
      const which = kind === "mobile-direct" ? "direct" : "proxy";
      const ms: number[] = [];
      for (let i = 0; i < o.mobileLogins; i++) ms.push((await scramLoginOnce(far[which], u, keys)).ms);
      mobile[which].push(median(ms));
      return;
    }
    if (kind === "plus") {
      const ms: number[] = [];
      for (let i = 0; i < o.sequential; i++) ms.push((await scramLoginOnce(env.proxy, u, keys, true)).ms);
      plusP50.push(median(ms));
      return;
    }
    const { path, pid: servingPid } = pathOf(kind);
    const ms: number[] = [];
    for (let i = 0; i < o.sequential; i++) ms.push((await scramLoginOnce(path, u, keys)).ms);
    const cpu0 = cpuSeconds(servingPid);
    const srv0 = cpuSeconds(env.prosodyPid);
    const t0 = nowMs();
    await pool(Array.from({ length: o.burst }, (_, i) => i), o.parallel, () => scramLoginOnce(path, u, keys));
    const wall = nowMs() - t0;
    await sleep(300); // the closes of the last logins
    const r = raw[kind];
    r.p50.push(median(ms));
    r.perSecond.push((o.burst * 1000) / wall);
    r.cpu.push(((cpuSeconds(servingPid) - cpu0) * 1000) / o.burst);
    r.server.push(((cpuSeconds(env.prosodyPid) - srv0) * 1000) / o.burst);
  });
  } finally {
    await pipes.direct.stop();
    await pipes.proxy.stop();
  }
  const side = (k: Side | Floor): LoginSide => ({
    p50Ms: summarize(raw[k].p50),
    perSecond: summarize(raw[k].perSecond),
    cpuMsPerLogin: summarize(raw[k].cpu),
    serverCpuMsPerLogin: summarize(raw[k].server),
  });
  const direct = side("direct");
  const proxy = side("proxy");
  const relay = env.relay ? { ...side("relay"), vsDirect: ratioOf(raw.relay.p50, raw.direct.p50), proxyVsRelay: ratioOf(raw.proxy.p50, raw.relay.p50) } : undefined;
  const relayPlain = env.relayPlain
    ? { ...side("relayPlain"), vsDirect: ratioOf(raw.relayPlain.p50, raw.direct.p50), ...(env.proxyPlain ? { proxyVsRelay: ratioOf(raw.proxyPlain.p50, raw.relayPlain.p50) } : {}) }
    : undefined;
  return {
    options: o,
    direct,
    proxy,
    proxyPlusP50Ms: summarize(plusP50),
    proxyVsDirect: ratioOf(raw.proxy.p50, raw.direct.p50),
    mobile: { direct: summarize(mobile.direct), proxy: summarize(mobile.proxy), proxyVsDirect: ratioOf(mobile.proxy, mobile.direct) },
    perCoreSecond: { proxy: 1000 / proxy.cpuMsPerLogin.median, direct: 1000 / direct.cpuMsPerLogin.median },
    plain: { direct: summarize(plain.direct), proxy: summarize(plain.proxy), proxyVsDirect: ratioOf(plain.proxy, plain.direct) },
    proxyPlain: env.proxyPlain ? { ...side("proxyPlain"), vsDirect: ratioOf(raw.proxyPlain.p50, raw.direct.p50) } : undefined,
    relay,
    relayPlain,
    resumed: {
      direct: summarize(resumed.direct.p50),
      proxy: summarize(resumed.proxy.p50),
      proxyPlain: env.proxyPlain ? summarize(resumed.proxyPlain.p50) : undefined,
      proxyVsDirect: ratioOf(resumed.proxy.p50, resumed.direct.p50),
      proxyPlainVsDirect: env.proxyPlain ? ratioOf(resumed.proxyPlain.p50, resumed.direct.p50) : undefined,
      cpuMsPerLogin: { direct: summarize(resumed.direct.cpu), proxy: summarize(resumed.proxy.cpu), proxyPlain: env.proxyPlain ? summarize(resumed.proxyPlain.cpu) : undefined },
      serverCpuMsPerLogin: { direct: summarize(resumed.direct.server), proxy: summarize(resumed.proxy.server), proxyPlain: env.proxyPlain ? summarize(resumed.proxyPlain.server) : undefined },
      resumedShare: {
        direct: caches.direct.resumed / Math.max(1, caches.direct.connects),
        proxy: caches.proxy.resumed / Math.max(1, caches.proxy.connects),
        proxyPlain: env.proxyPlain ? caches.proxyPlain.resumed / Math.max(1, caches.proxyPlain.connects) : undefined,
      },
    },
  };
}
