#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ConfigError, helpText, loadConfig } from "./config.js";
import { parseArgs } from "./cli-args.js";
import { createLogger } from "./log.js";
import { ProxyServer } from "./server.js";

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

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  let config: ReturnType<typeof loadConfig>;
  try {
    parsed = parseArgs(argv);
    if (parsed.kind === "help") {
      process.stdout.write(helpText());
      return 0;
    }
    if (parsed.kind === "version") {
      process.stdout.write(`minimix-proxy ${packageVersion()}\n`);
      return 0;
    }
    config = loadConfig(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`minimix-proxy: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.command) {
    process.stderr.write(`minimix-proxy: unknown command "${parsed.command}" (see --help)\n`);
    return 2;
  }

  const log = createLogger(config.logLevel);
  const server = new ProxyServer(config, log);
  try {
    await server.start();
  } catch (err) {
    log.fatal({ reason: (err as Error).message, code: (err as { code?: string }).code }, "could not start");
    return 1;
  }
  log.info({ version: packageVersion(), domains: config.domains, upstream: `${config.upstream.host}:${config.upstream.port}` }, "minimix-proxy started");

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      server.stop().then(() => resolve(0), () => resolve(1));
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
