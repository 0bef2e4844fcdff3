/**
 * contrib/minimix-proxy.service and the Dockerfile: the hardening they promise, command lines the CLI
 * accepts, and `systemd-analyze verify` where it exists. (The image itself cannot be built here.)
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "../../proxy/cli-args.js";
import { CLI } from "../support/proxy-process.js";

const ROOT = new URL("../../", import.meta.url);
const unit = readFileSync(new URL("contrib/minimix-proxy.service", ROOT), "utf8");
const dockerfile = readFileSync(new URL("Dockerfile", ROOT), "utf8");

/** `Key=value` lines of the unit (comments skipped); a key may repeat. */
function directives(text: string): [string, string][] {
  return text.split("\n").filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}
const get = (key: string): string[] => directives(unit).filter(([k]) => k === key).map(([, v]) => v);

describe("contrib/minimix-proxy.service", () => {
  it("is hardened: dynamic user, read-only system, no privileges, no capabilities for ports above 1024", () => {
    expect(get("DynamicUser")).toEqual(["yes"]);
    expect(get("StateDirectory")).toEqual(["minimix-proxy"]);
    expect(get("ConfigurationDirectory")).toEqual(["minimix-proxy"]);
    expect(get("ProtectSystem")).toEqual(["strict"]);
    expect(get("ProtectHome")).toEqual(["yes"]);
    expect(get("NoNewPrivileges")).toEqual(["yes"]);
    expect(get("CapabilityBoundingSet")).toEqual([""]);
    expect(get("AmbientCapabilities")).toEqual([""]);
    expect(get("PrivateTmp")).toEqual(["yes"]);
    expect(get("SystemCallFilter")).toEqual(["@system-service"]);
    // V8's JIT needs W+X pages
    expect(get("MemoryDenyWriteExecute")).toEqual([]);
  });

  it("reloads with SIGHUP and stops with SIGTERM", () => {
    expect(get("ExecReload")).toEqual(["/bin/kill -HUP $MAINPID"]);
    expect(get("KillSignal")).toEqual(["SIGTERM"]);
  });

  it("starts the proxy with a command line the CLI accepts", () => {
    const [exec] = get("ExecStart");
    const argv = exec!.split(/\s+/);
    expect(argv[0]).toMatch(/\/minimix-proxy$/);
    const parsed = parseArgs(argv.slice(1));
    expect(parsed).toMatchObject({ kind: "run", configFile: "/etc/minimix-proxy/config.toml", flags: { stateDir: "/var/lib/minimix-proxy" } });
    expect(parsed.kind === "run" && parsed.command).toBeFalsy();
  });

  const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
  it.skipIf(analyze.status !== 0)("passes systemd-analyze verify (ExecStart pointed at the built CLI)", () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-unit-"));
    const file = join(dir, "minimix-proxy.service");
    // verify insists that the ExecStart binary exists
    writeFileSync(file, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${CLI}`));
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", file], { encoding: "utf8" });
    const complaints = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.includes("minimix-proxy.service"));
    expect(complaints).toEqual([]);
    expect(r.status).toBe(0);
  });
});

describe("Dockerfile", () => {
  it("node:20-slim, builds then installs production dependencies only, runs as a non-root user", () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-slim$/m);
    expect(dockerfile).toMatch(/^FROM \$\{NODE_IMAGE\} AS build$/m);
    expect(dockerfile).toMatch(/^RUN npm run build/m);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    expect(users).toEqual(["node"]);
    // USER comes after the last RUN: nothing at run time is root
    expect(dockerfile.lastIndexOf("\nUSER ")).toBeGreaterThan(dockerfile.lastIndexOf("\nRUN "));
  });

  it("reads its config from /etc/minimix-proxy/ with a command line the CLI accepts", () => {
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    const args = JSON.parse(cmd![1]!) as string[];
    expect(parseArgs(args)).toMatchObject({ kind: "run", configFile: "/etc/minimix-proxy/config.toml", flags: { stateDir: "/var/lib/minimix-proxy" } });
    expect(dockerfile).toMatch(/^ENTRYPOINT \["minimix-proxy"\]$/m);
    expect(dockerfile).toMatch(/^EXPOSE 5222 5223 5290$/m);
  });

  it("the built CLI runs as the image runs it (shebang, version)", () => {
    const r = spawnSync(process.execPath, [CLI, "--version"], { encoding: "utf8" });
    expect(r.stdout).toMatch(/^minimix-proxy \d+\.\d+\.\d+/);
    expect(readFileSync(CLI, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
  });
});
