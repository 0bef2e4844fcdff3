/**
 * The processes a benchmark run needs — Prosody (through test/support/prosody.sh), the proxy
 * (the built CLI) and the TLS pipe relay (bench/relay.ts) as child processes — and what Linux
 * tells about them: CPU time and RSS from /proc.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateSelfSigned } from "../../tls/dev-cert.js";

/** dist/bench/lib → repository root (also bench/lib → root when run from sources). */
const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = HERE.includes(`${join("dist", "bench")}`) ? join(HERE, "..", "..", "..") : join(HERE, "..", "..");
/** The proxy under test: the built CLI, or another build given by BENCH_PROXY_CLI (before/after comparisons). */
export const PROXY_CLI = process.env.BENCH_PROXY_CLI ?? join(ROOT, "dist", "proxy", "cli.js");
export const RELAY_JS = join(ROOT, "dist", "bench", "relay.js");

// ---------------------------------------------------------------------------- /proc

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64 / arm64
const PAGE = 4096;

/** user+sys CPU seconds of `pid` (from /proc/PID/stat, 10 ms resolution). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // after "pid (comm) ": state=0 ... utime=11, stime=12 (fields 14 and 15 of the full line)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Resident set size of `pid` in bytes. */
export function rssBytes(pid: number): number {
  const statm = readFileSync(`/proc/${pid}/statm`, "utf8").split(" ");
  return Number(statm[1]) * PAGE;
}

export function nowMs(): number {
  return performance.now();
}

// ---------------------------------------------------------------------------- ports

const handedOut = new Set<number>();
// every child process adds an exit hook (track): a run with a dozen children is not a leak
process.setMaxListeners(Math.max(process.getMaxListeners(), 64));

/** A free port below the ephemeral range (32768 and up: outgoing connections may hold those), checked by binding. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false));
      srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (ok) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free port");
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port });
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------- certificate

export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: string;
}

export function makeCert(dir: string): CertFiles {
  const pem = generateSelfSigned(["localhost"]);
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  return { certFile, keyFile, cert: pem.cert };
}

// ---------------------------------------------------------------------------- Prosody

export interface Prosody {
  pid: number;
  port: number;
  tlsPort: number;
  domain: string;
  muc: string;
  certFile: string;
  cert: string;
  users: { user: string; pass: string }[];
  dir: string;
  /** Accepts plain c2s on loopback (c2s_require_encryption = false), for a proxy with --upstream-tls none. */
  plainC2s?: boolean;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout, killSignal: "SIGKILL", maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr.split("\n").slice(-20).join("\n")}`));
    });
  });
}

/** A real Prosody on loopback through the verified recipe (test/support/prosody.sh). */
export async function startProsody(): Promise<Prosody> {
  const script = join(ROOT, "test", "support", "prosody.sh");
  const dir = mkdtempSync(join(tmpdir(), "bench-prosody-"));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const env = {
      ...process.env,
      PROSODY_C2S_PORT: String(await freePort()),
      PROSODY_C2S_TLS_PORT: String(await freePort()),
      // per-connection info lines cost Prosody CPU during mass logins; both paths pay the same
      PROSODY_LOG_LEVEL: "warn",
      // plain c2s accepted (on loopback only: the test recipe listens on 127.0.0.1), for bench m8's proxy
      // with --upstream-tls none; clients of the direct paths still use the direct-TLS port
      PROSODY_REQUIRE_ENCRYPTION: "false",
    };
    try {
      await run("bash", [script, "start", dir], env, 60_000);
      const vars: Record<string, string> = {};
      for (const line of readFileSync(join(dir, "upstream.env"), "utf8").split("\n")) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
        if (m) vars[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1");
      }
      const pid = Number(vars.UPSTREAM_PID);
      const certFile = vars.UPSTREAM_CERT!;
      let stopped: Promise<void> | undefined;
      const stop = (): Promise<void> =>
        (stopped ??= run("bash", [script, "stop", dir], env, 30_000)
          .catch(() => {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              /* gone */
            }
          })
          .then(() => rmSync(dir, { recursive: true, force: true })));
      process.once("exit", () => {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          /* gone */
        }
      });
      return {
        pid,
        port: Number(vars.UPSTREAM_PORT),
        tlsPort: Number(vars.UPSTREAM_TLS_PORT),
        domain: vars.UPSTREAM_DOMAIN!,
        muc: vars.UPSTREAM_MUC!,
        certFile,
        cert: readFileSync(certFile, "utf8"),
        users: vars.UPSTREAM_USERS!.split(/\s+/).filter((s) => s.includes(":")).map((s) => ({ user: s.split(":")[0]!, pass: s.slice(s.indexOf(":") + 1) })),
        dir,
        plainC2s: true,
        stop,
      };
    } catch (err) {
      lastErr = err;
      await run("bash", [script, "stop", dir], env, 30_000).catch(() => undefined);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

// ---------------------------------------------------------------------------- children

export interface Child {
  name: string;
  pid: number;
  /** Direct-TLS port clients connect to. */
  port: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function track(name: string, child: ChildProcess, port: number): Child {
  let out = "";
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (d: string) => {
    out = (out + d).slice(-20000);
  });
  child.stderr?.on("data", (d: string) => {
    out = (out + d).slice(-20000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  return {
    name,
    pid: child.pid!,
    port,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(kill, 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface ProxyChildOptions {
  upstreamPort: number;
  /** "direct" when upstreamPort is a direct-TLS port (Prosody's c2s_direct_tls_ports, or the tap); "none": plain TCP to the c2s port. */
  upstreamTls: "direct" | "starttls" | "none";
  upstreamCa: string;
  cert: CertFiles;
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir", DIR]. */
  nodeFlags?: string[];
  logLevel?: string;
  extraArgs?: string[];
  /** Another build of the CLI (A/B experiments); default dist/proxy/cli.js. */
  cli?: string;
}

let cliFlags: string | undefined;
/** Whether the built CLI knows `flag` (the CLI evolves; optional flags are only passed when it does). */
function cliHas(flag: string): boolean {
  if (cliFlags === undefined) {
    try {
      cliFlags = execFileSync(process.execPath, [PROXY_CLI, "--help"], { encoding: "utf8", timeout: 10_000 });
    } catch {
      cliFlags = "";
    }
  }
  return new RegExp(`\\s${flag}\\b`).test(cliFlags);
}

export async function startProxy(o: ProxyChildOptions): Promise<Child> {
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), "bench-proxy-state-"));
  const args = [
    ...(o.nodeFlags ?? []),
    o.cli ?? PROXY_CLI,
    "--listen", "127.0.0.1:0",
    "--listen-tls", `127.0.0.1:${port}`,
    "--domain", "localhost",
    "--cert", o.cert.certFile, "--key", o.cert.keyFile,
    "--upstream", `127.0.0.1:${o.upstreamPort}`,
    "--upstream-tls", o.upstreamTls,
    "--upstream-ca", o.upstreamCa,
    "--state-dir", stateDir,
    "--log-level", o.logLevel ?? "warn",
    // a fixed-port metrics listener would clash between the benchmark's proxies
    ...(cliHas("--metrics") ? ["--metrics", "off"] : []),
    // the load generator logs in from one address, many at a time
    ...(cliHas("--max-unauthenticated-per-ip") ? ["--max-unauthenticated-per-ip", "1024"] : []),
    ...(o.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const c = track("proxy", child, port);
  const stop = c.stop;
  c.stop = async () => {
    await stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForPort(port),
      new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`proxy exited (${code}): ${c.output()}`)))),
    ]);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return c;
}

export interface RelayChildOptions {
  targetPort: number;
  /** The server's CA file, or "-": a plain TCP leg to the server (its plain c2s port). */
  targetCa: string;
  cert: CertFiles;
  nodeFlags?: string[];
}

/** The floor: a raw TLS pipe() relay (bench/relay.ts) in its own process. */
export async function startRelay(o: RelayChildOptions): Promise<Child> {
  const port = await freePort();
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), RELAY_JS, String(port), String(o.targetPort), o.cert.certFile, o.cert.keyFile, o.targetCa], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const c = track("relay", child, port);
  try {
    await Promise.race([
      waitForPort(port),
      new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`relay exited (${code}): ${c.output()}`)))),
    ]);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return c;
}

export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}

// ---------------------------------------------------------------------------- Prosody accounts, Redis

/** Registers more accounts on a running Prosody of prosody.sh (prosodyctl against its config), a few at a time. */
export async function registerUsers(p: Prosody, users: { user: string; pass: string }[]): Promise<void> {
  const cfg = join(p.dir, "prosody.cfg.lua");
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < users.length) {
      const u = users[next++]!;
      await run("prosodyctl", ["--config", cfg, "register", u.user, p.domain, u.pass], process.env, 30_000);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, users.length) }, worker));
}

export interface RedisChild {
  url: string;
  stop(): Promise<void>;
}

/** A private redis-server on a free loopback port, no persistence (Debian's redis-server must be installed). */
export async function startRedis(dir: string): Promise<RedisChild> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "warning"],
    { stdio: ["ignore", "pipe", "pipe"] });
  const c = track("redis", child, port);
  try {
    await Promise.race([
      waitForPort(port),
      new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${c.output()}`)))),
      new Promise((_, reject) => child.once("error", (err) => reject(new Error(`redis-server: ${err.message} (apt-get install redis-server)`)))),
    ]);
  } catch (err) {
    await c.stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, stop: c.stop };
}
