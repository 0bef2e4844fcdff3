/**
 * A private redis-server (Debian's 7.x, `apt-get install -y redis-server` when missing) on a free
 * loopback port, in its own temporary directory, for the cluster tests (docs/architecture.md §8.7).
 *
 * Persistence: append-only file with `appendfsync always`, so a test that restarts Redis (restart())
 * finds the leases and the fencing counter as they were — what a production Redis with AOF does, and
 * what the cluster relies on (a Redis that forgets its leases on restart leaves only the server-side
 * resource conflict as the fence; docs/operations.md § Cluster). No RDB snapshots.
 * Nothing of the system's Redis service or /etc/redis is used or touched. stop() (and process exit)
 * kills it by PID.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pickFreePort } from "../../proxy/local-upstream.js";

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  pid(): number | undefined;
  /** SIGTERM (Redis writes its AOF and exits), wait, start again on the same port and directory. */
  restart(downMs?: number): Promise<void>;
  /** Stop it (SIGTERM, then SIGKILL); start() brings it back on the same port and directory. */
  halt(): Promise<void>;
  start(): Promise<void>;
  /** Stop and delete the directory. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function ensureInstalled(): void {
  if (spawnSync("sh", ["-c", "command -v redis-server"]).status === 0) return;
  const r = spawnSync("sh", ["-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server)"],
    { stdio: "inherit", timeout: 600_000 });
  if (r.status !== 0) throw new Error("redis-server is not installed and apt-get install -y redis-server failed");
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.on("error", () => resolve(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      s.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
  });
}

export async function startRedis(): Promise<RedisServer> {
  ensureInstalled();
  const dir = mkdtempSync(join(tmpdir(), "minimix-redis-"));
  const port = await pickFreePort();
  let child: ChildProcess | undefined;
  let log = "";
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }

  const start = async (): Promise<void> => {
    const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
      "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"],
    { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    live.add(c);
    c.stdout!.on("data", (d: Buffer) => (log += d.toString()));
    c.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    c.once("exit", () => live.delete(c));
    for (let i = 0; i < 100; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}: ${log}`);
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer on ${port}: ${log}`);
  };

  const halt = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  };

  await start();
  let stopped = false;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    pid: () => child?.pid,
    start,
    halt,
    restart: async (downMs = 0) => {
      await halt();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
