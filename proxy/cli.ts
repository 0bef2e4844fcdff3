#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { resolve } from "node:path";
import { homedir } from "node:os";
import * as http from "node:http";
import { ConfigError, DEFAULTS, helpText, loadConfig, readConfigFile, type HostPort } from "./config.js";
import { parseArgs } from "./cli-args.js";
import { createLogger } from "./log.js";
import { ProxyServer } from "./server.js";
import { metrics } from "./metrics.js";
import { startAdmin, type AdminServer } from "./admin.js";
import { buildStatus, formatStatus, type Status } from "./status.js";
import { exitCode, formatResult, runChecks } from "./check.js";
import { FileCredentialStore } from "./credentials/file-store.js";
import { CredentialStoreError } from "./credentials/store.js";
import { importHelpText, parseImportArgs } from "./import/args.js";
import { runImport } from "./import/run.js";
import { openImportStore, type ImportStore } from "./import/store.js";

function packageVersion(): string {
  // dist/proxy/cli.js → package.json two levels up (also true for proxy/cli.ts under tsx)
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "..", "..", "package.json"), join(here, "..", "package.json")]) {
    try {
      const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "minimix-proxy" && pkg.version) return pkg.version;
    } catch {
      /* try the next candidate */
    }
  }
  return "unknown";
}

/** Answers --help and --version (with their exit code), or returns the validated config. Throws ConfigError. */
function configOrInfo(argv: string[]): { exit: number } | { config: ReturnType<typeof loadConfig>; command?: string } {
  const parsed = parseArgs(argv);
  if (parsed.kind === "help") {
    process.stdout.write(helpText());
    return { exit: 0 };
  }
  if (parsed.kind === "version") {
    process.stdout.write(`minimix-proxy ${packageVersion()}\n`);
    return { exit: 0 };
  }
  return { config: loadConfig(argv), command: parsed.command };
}

/** A ConfigError is one line on stderr naming the key, and exit code 2 (README, Configuration); anything else is rethrown. */
function configErrorExit(err: unknown): number {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`minimix-proxy: ${err.message}\n`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "status") return status(argv.slice(1));
  if (argv[0] === "check") return check(argv);
  if (argv[0] === "import-credentials") return importCredentials(argv.slice(1));
  let loaded: ReturnType<typeof configOrInfo>;
  try {
    loaded = configOrInfo(argv);
  } catch (err) {
    return configErrorExit(err);
  }
  if ("exit" in loaded) return loaded.exit;
  const { config } = loaded;
  if (loaded.command) {
    process.stderr.write(`minimix-proxy: unknown command "${loaded.command}" (see --help)\n`);
    return 2;
  }

  const log = createLogger(config.logLevel);
  // The client leg's SCRAM records (docs/architecture.md §3.5): checked before any client is taken, so
  // a damaged or unreadable store stops the start with its code instead of failing someone's login later.
  // A cluster member keeps them in Redis instead (docs/architecture.md §8.7), opened by server.start().
  let store: FileCredentialStore | undefined;
  if (!config.cluster) {
    try {
      const opened = await FileCredentialStore.open(config.stateDir);
      store = opened.store;
      log.info({ store: store.description, accounts: opened.accounts }, "credential store checked");
    } catch (err) {
      if (!(err instanceof CredentialStoreError)) throw err;
      log.fatal({ code: err.code, reason: err.message, path: err.path }, "could not start: credential store unusable");
      return 1;
    }
  }
  const server = new ProxyServer(config, log, store ? { credentials: store } : {});
  try {
    await server.start();
  } catch (err) {
    log.fatal({ reason: (err as Error).message, code: (err as { code?: string }).code }, "could not start");
    return 1;
  }
  let admin: AdminServer | undefined;
  if (config.metrics) {
    metrics.bind(server);
    const info = { version: packageVersion(), startedAt: Date.now() };
    try {
      admin = await startAdmin({ address: config.metrics, metrics, status: () => buildStatus(server, info), log });
    } catch (err) {
      log.fatal({ reason: (err as Error).message, code: (err as { code?: string }).code, metrics: config.metrics }, "could not start the metrics server (--metrics off disables it)");
      await server.stop(0);
      return 1;
    }
  }
  log.info({ version: packageVersion(), domains: config.domains, upstream: `${config.upstream.host}:${config.upstream.port}` }, "minimix-proxy started");

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      server.stop().then(async () => {
        await admin?.close();
        resolve(0);
      }, () => resolve(1));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("SIGHUP: reloading certificates");
      server.reloadCertificates();
    });
  });
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === (await import("node:fs")).realpathSync(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      // let pino flush before leaving
      setTimeout(() => process.exit(code), 50);
    },
    (err: unknown) => {
      process.stderr.write(`minimix-proxy: internal error: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// minimix-proxy check

async function check(argv: string[]): Promise<number> {
  let loaded: ReturnType<typeof configOrInfo>;
  try {
    loaded = configOrInfo(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stdout.write(`${formatResult({ level: "FAIL", name: "config", detail: err.message.replace(/^config: /, "") })}\n`);
      return 2;
    }
    throw err;
  }
  if ("exit" in loaded) return loaded.exit;
  const results = await runChecks(loaded.config);
  for (const r of results) process.stdout.write(`${formatResult(r)}\n`);
  return exitCode(results);
}

// ---------------------------------------------------------------------------------------------------
// minimix-proxy import-credentials

async function importCredentials(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseImportArgs>;
  let loaded: ReturnType<typeof configOrInfo>;
  try {
    parsed = parseImportArgs(args);
    if (parsed.kind === "help") {
      process.stdout.write(importHelpText());
      return 0;
    }
    loaded = configOrInfo(parsed.rest);
  } catch (err) {
    return configErrorExit(err);
  }
  if ("exit" in loaded) return loaded.exit;
  if (loaded.command !== undefined) {
    process.stderr.write(`minimix-proxy: config: unexpected argument "${loaded.command}" after import-credentials\n`);
    return 2;
  }
  // the file store under --state-dir, or with --cluster-redis the Redis store the nodes read
  let opened: ImportStore;
  try {
    opened = await openImportStore(loaded.config);
  } catch (err) {
    if (!(err instanceof CredentialStoreError)) throw err;
    process.stderr.write(`minimix-proxy: ${err.message} (${err.code})\n`);
    return 1;
  }
  try {
    const report = await runImport(parsed.flags, loaded.config.domains, opened.store, (line) => process.stdout.write(`${line}\n`));
    return report.errors > 0 ? 1 : 0;
  } finally {
    opened.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// minimix-proxy status

/** Where the running proxy's admin server is, from --metrics, else the config file's metrics key. */
export function statusAddress(argv: string[]): HostPort | null {
  const parsed = parseArgs(argv);
  if (parsed.kind !== "run") return null;
  let addr = parsed.flags.metrics;
  if (addr === undefined && parsed.configFile !== undefined) {
    const f = parsed.configFile;
    const file = readConfigFile(resolve(f === "~" ? homedir() : f.startsWith("~/") ? resolve(homedir(), f.slice(2)) : f));
    addr = file.metrics;
  }
  if (addr === null) throw new ConfigError("metrics", "config: metrics: is \"off\", so the proxy serves no status; give --metrics HOST:PORT of a proxy that has it on");
  const hp = addr ?? { ...DEFAULTS.metrics };
  // a wildcard bind is reached on loopback (and /status answers loopback clients only)
  if (hp.host === "0.0.0.0") return { host: "127.0.0.1", port: hp.port };
  if (hp.host === "::") return { host: "::1", port: hp.port };
  return hp;
}

function httpGet(addr: HostPort, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: addr.host, port: addr.port, path, timeout: timeoutMs, headers: { accept: "application/json" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
    req.on("error", reject);
  });
}

async function status(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const rest = args.filter((a) => a !== "--json");
  let addr: HostPort | null;
  try {
    const parsed = parseArgs(rest);
    if (parsed.kind === "help") {
      process.stdout.write(helpText());
      return 0;
    }
    addr = statusAddress(rest);
  } catch (err) {
    return configErrorExit(err);
  }
  if (addr === null) return 2;
  const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
  const url = `http://${host}:${addr.port}/status`;
  let body: string;
  try {
    const res = await httpGet(addr, "/status", 5000);
    body = res.body;
    if (res.status !== 200) {
      process.stderr.write(`minimix-proxy: ${url}: HTTP ${res.status}: ${body.trim()}\n`);
      return 1;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(`minimix-proxy: cannot reach the proxy at ${url}: ${code ?? (err as Error).message} (is it running, with metrics on at that address?)\n`);
    return 1;
  }
  if (json) {
    process.stdout.write(body.endsWith("\n") ? body : `${body}\n`);
    return 0;
  }
  process.stdout.write(formatStatus(JSON.parse(body) as Status));
  return 0;
}
