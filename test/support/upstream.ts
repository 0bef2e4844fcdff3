/**
 * Real Prosody / ejabberd servers on loopback for integration tests, started through the verified recipes
 * beside this file (prosody.sh, ejabberd.sh). Each instance gets its own directory and free ports.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pickFreePort, readUpstreamEnv } from "../../proxy/local-upstream.js";

export { readUpstreamEnv };

export type UpstreamKind = "prosody" | "ejabberd";

export interface UpstreamUser {
  user: string;
  pass: string;
}

export interface Upstream {
  kind: UpstreamKind;
  host: string;
  /** c2s port, STARTTLS required. */
  port: number;
  /** direct-TLS c2s port (XEP-0368). */
  tlsPort: number;
  domain: string;
  muc: string;
  users: UpstreamUser[];
  /** The server's self-signed certificate (covers domain, muc and 127.0.0.1): pass it as `ca`. */
  certFile: string;
  dir: string;
  pid: number;
  logFile: string;
  /** The XEP-0114 listener for the external component `host` (a push app server stand-in), when the script was given one. */
  component?: UpstreamComponent;
  /**
   * `script stop DIR`, then SIGKILL if the pid survived. Safe to call twice. A directory startUpstream
   * created itself is deleted too, unless UPSTREAM_KEEP_DIR=1 (to read the logs after a failure).
   */
  stop(): Promise<void>;
}

export interface UpstreamComponent {
  port: number;
  host: string;
  secret: string;
}

export interface StartUpstreamOptions {
  /** Instance directory; restarting on the same dir keeps accounts and archives. Default: a new temp dir. */
  dir?: string;
  /** "user:pass user:pass ..." (default alice/bob/carol, see the scripts). */
  users?: string;
  /** Limit for the whole start script (default 45 s Prosody, 90 s ejabberd; more if it must apt-get install). */
  timeoutMs?: number;
  /** Extra environment for the script (its documented variables, e.g. EJABBERD_MAX_USER_SESSIONS). */
  env?: Record<string, string>;
}

/** The script failed: carries what it printed, since that is the only diagnosis there is. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** Never hand out the same port twice from one process, even after the server using it stopped. */
const handedOut = new Set<number>();
/** Servers still running at exit get SIGTERM, so a crashed test run does not leave daemons behind. */
const live = new Set<number>();
let exitHookInstalled = false;

const HERE = fileURLToPath(new URL(".", import.meta.url));
const CLASH = /already in use|eaddrinuse|could not bind|failed to open server port/i;

export async function startUpstream(kind: UpstreamKind, opts: StartUpstreamOptions = {}): Promise<Upstream> {
  const script = join(HERE, `${kind}.sh`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `upstream-${kind}-`));
  // a fresh machine installs the package first (apt-get update + install): never SIGKILL that midway
  const installed = spawnSync("sh", ["-c", `command -v ${kind === "prosody" ? "prosodyctl" : "ejabberdctl"}`]).status === 0;
  const timeout = opts.timeoutMs ?? (!installed ? 900_000 : kind === "prosody" ? 45_000 : 90_000);

  for (let attempt = 0; ; attempt++) {
    const env = { ...process.env, ...opts.env, ...portEnv(kind, await freePorts(kind === "prosody" ? 3 : 4)) };
    if (opts.users !== undefined) env[kind === "prosody" ? "PROSODY_USERS" : "EJABBERD_USERS"] = opts.users;
    try {
      await run(script, ["start", dir], env, timeout);
    } catch (e) {
      // A half-started server (e.g. registration failed after launch) must not outlive the failure.
      await run(script, ["stop", dir], env, 30_000).catch(() => undefined);
      if (attempt === 0 && e instanceof UpstreamError && CLASH.test(e.stderr)) continue;
      if (ownDir && process.env.UPSTREAM_KEEP_DIR !== "1" && e instanceof UpstreamError) {
        e.message += `\n(logs were in ${dir}; set UPSTREAM_KEEP_DIR=1 to keep it)`;
        rmSync(dir, { recursive: true, force: true });
      }
      throw e;
    }
    const upstream = fromEnv(kind, readUpstreamEnv(join(dir, "upstream.env")), script, env, ownDir);
    installExitHook();
    live.add(upstream.pid);
    return upstream;
  }
}

/** True while `pid` runs; a zombie (exited, not yet reaped by init) counts as gone. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // /proc/PID/stat: "pid (comm) STATE ..." — comm may contain spaces, so look after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function fromEnv(
  kind: UpstreamKind,
  vars: Record<string, string>,
  script: string,
  env: NodeJS.ProcessEnv,
  removeDir: boolean,
): Upstream {
  const need = (key: string): string => {
    const v = vars[key];
    if (v === undefined || v === "") throw new UpstreamError(`upstream.env lacks ${key}`, "", "");
    return v;
  };
  const pid = Number(need("UPSTREAM_PID"));
  const dir = need("UPSTREAM_DIR");
  let stopping: Promise<void> | undefined;
  const componentPort = vars.UPSTREAM_COMPONENT_PORT;
  const component = componentPort ? { port: Number(componentPort), host: need("UPSTREAM_COMPONENT_HOST"), secret: need("UPSTREAM_COMPONENT_SECRET") } : undefined;
  return {
    ...(component ? { component } : {}),
    kind,
    host: need("UPSTREAM_HOST"),
    port: Number(need("UPSTREAM_PORT")),
    tlsPort: Number(need("UPSTREAM_TLS_PORT")),
    domain: need("UPSTREAM_DOMAIN"),
    muc: need("UPSTREAM_MUC"),
    users: parseUsers(need("UPSTREAM_USERS")),
    certFile: need("UPSTREAM_CERT"),
    dir,
    pid,
    logFile: need("UPSTREAM_LOG"),
    stop: () => (stopping ??= stopInstance(script, dir, pid, env, removeDir && process.env.UPSTREAM_KEEP_DIR !== "1")),
  };
}

async function stopInstance(script: string, dir: string, pid: number, env: NodeJS.ProcessEnv, removeDir: boolean): Promise<void> {
  try {
    await run(script, ["stop", dir], env, 30_000);
  } finally {
    if (processAlive(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone between the check and the kill
      }
      for (let i = 0; i < 50 && processAlive(pid); i++) await sleep(100);
    }
    live.delete(pid);
    if (removeDir) rmSync(dir, { recursive: true, force: true });
  }
}

function parseUsers(s: string): UpstreamUser[] {
  return s
    .split(/\s+/)
    .filter((up) => up.includes(":"))
    .map((up) => ({ user: up.slice(0, up.indexOf(":")), pass: up.slice(up.indexOf(":") + 1) }));
}

function portEnv(kind: UpstreamKind, ports: number[]): Record<string, string> {
  if (kind === "prosody") {
    const [c2s, tls, component] = ports.map(String);
    return { PROSODY_C2S_PORT: c2s as string, PROSODY_C2S_TLS_PORT: tls as string, PROSODY_COMPONENT_PORT: component as string };
  }
  const [c2s, tls, dist, component] = ports.map(String);
  return { EJABBERD_C2S_PORT: c2s as string, EJABBERD_C2S_TLS_PORT: tls as string, EJABBERD_DIST_PORT: dist as string,
    EJABBERD_COMPONENT_PORT: component as string };
}

/** Free ports below the ephemeral range (see proxy/local-upstream.ts), never one handed out before. */
async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    let port: number;
    try {
      port = await pickFreePort({ avoid: handedOut });
    } catch (e) {
      throw new UpstreamError((e as Error).message, "", "");
    }
    handedOut.add(port);
    ports.push(port);
  }
  return ports;
}

function run(script: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [script, ...args], { env, timeout, killSignal: "SIGKILL", maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      const why = err.killed ? `timed out after ${timeout} ms` : `exit code ${String(err.code)}`;
      const tail = stderr.trim().split("\n").slice(-30).join("\n");
      reject(new UpstreamError(`${script} ${args.join(" ")}: ${why}\n${tail}`, stdout, stderr));
    });
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of live) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
