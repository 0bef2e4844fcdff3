import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(ROOT, "dist", "proxy", "cli.js");

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ProxyProcess {
  child: ChildProcess;
  /** STARTTLS port and direct-TLS port the proxy actually bound. */
  port: number;
  tlsPort: number;
  /** Port of the admin HTTP server (/metrics, /status); undefined with --metrics off. */
  metricsPort: number | undefined;
  /** Every stdout line so far, raw (for "no password in logs" checks) and parsed. */
  stdout(): string;
  stderr(): string;
  logs(): LogLine[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ProxyOptions {
  upstreamPort: number;
  upstreamCa: string;
  cert: string;
  key: string;
  domain?: string;
  extraArgs?: string[];
  logLevel?: string;
}

/** Starts the real CLI (the built dist/) as a child process on ephemeral ports. */
export async function startProxy(o: ProxyOptions): Promise<ProxyProcess> {
  const args = [
    CLI,
    "--listen", "127.0.0.1:0",
    "--listen-tls", "127.0.0.1:0",
    "--domain", o.domain ?? "localhost",
    ...(o.cert ? ["--cert", o.cert, "--key", o.key] : []),
    "--upstream", `127.0.0.1:${o.upstreamPort}`,
    ...(o.upstreamCa ? ["--upstream-ca", o.upstreamCa] : []),
    ...((o.extraArgs ?? []).includes("--state-dir") ? [] : ["--state-dir", mkdtempSync(join(tmpdir(), "minimix-state-"))]),
    "--log-level", o.logLevel ?? "trace",
    // an ephemeral metrics port, so parallel proxies do not fight over the default one
    ...((o.extraArgs ?? []).some((a) => a === "--metrics" || a.startsWith("--metrics=")) ? [] : ["--metrics", "127.0.0.1:0"]),
    ...(o.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let partial = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    out += d;
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const l = JSON.parse(line) as LogLine;
        lines.push(l);
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(l)) waiters.splice(i, 1)[0]!.resolve(l);
        }
      } catch {
        /* not JSON: kept in stdout() */
      }
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${err}\nstdout: ${out.slice(-2000)}`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
    });
  };

  const started = await Promise.race([
    waitForLog((l) => l.msg === "minimix-proxy started", 15_000),
    exited.then((code) => {
      throw new Error(`proxy exited with ${code} during start-up: ${err} ${out}`);
    }),
  ]);
  void started;
  const listening = lines.filter((l) => l.msg === "listening");
  const port = listening.find((l) => l.transport === "starttls")?.port as number;
  const tlsPort = listening.find((l) => l.transport === "direct-tls")?.port as number;
  const metricsPort = lines.find((l) => l.msg === "metrics listening")?.port as number | undefined;
  return {
    child, port, tlsPort, metricsPort,
    stdout: () => out,
    stderr: () => err,
    logs: () => lines,
    waitForLog,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
