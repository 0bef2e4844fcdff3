import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "./config.js";
import { helpText, parseArgs } from "./cli-args.js";
import { statusAddress } from "./cli.js";

const ENV = { HOME: "/home/u" };

describe("--metrics / metrics", () => {
  it("defaults to loopback; HOST:PORT, port 0, IPv6 and off", () => {
    expect(loadConfig(["--domain", "a.org"], ENV).metrics).toEqual({ host: "127.0.0.1", port: 5290 });
    expect(loadConfig(["--domain", "a.org", "--metrics", "[::1]:9000"], ENV).metrics).toEqual({ host: "::1", port: 9000 });
    expect(loadConfig(["--domain", "a.org", "--metrics", "127.0.0.1:0"], ENV).metrics).toEqual({ host: "127.0.0.1", port: 0 });
    expect(loadConfig(["--domain", "a.org", "--metrics", "off"], ENV).metrics).toBeUndefined();
    expect(loadConfig(["--domain", "a.org", "--metrics="], ENV).metrics).toBeUndefined();
  });

  it("bad values are one-line ConfigErrors naming the key", () => {
    for (const v of ["9000", "localhost", "1.2.3.4:99999", "::1:80"]) {
      let err: unknown;
      try {
        parseArgs(["--metrics", v]);
      } catch (e) {
        err = e;
      }
      expect(err, v).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe("metrics");
      expect((err as ConfigError).message).toMatch(/^config: --metrics: .*\(or "off"\)$/);
    }
  });

  it("the file's key, overridden by the flag", () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-metrics-"));
    const f = join(dir, "c.toml");
    writeFileSync(f, 'domain = "a.org"\nmetrics = "off"\n');
    expect(loadConfig(["--config", f], ENV).metrics).toBeUndefined();
    expect(loadConfig(["--config", f, "--metrics", "127.0.0.1:7000"], ENV).metrics).toEqual({ host: "127.0.0.1", port: 7000 });
    writeFileSync(f, 'domain = "a.org"\nmetrics = "0.0.0.0:7001"\n');
    expect(loadConfig(["--config", f, "--metrics", "off"], ENV).metrics).toBeUndefined();
    writeFileSync(f, 'domain = "a.org"\nmetrics = 7001\n');
    expect(() => loadConfig(["--config", f], ENV)).toThrow(`config: metrics: expected string, got integer in ${f}`);
  });

  it("status finds the admin server: flag, then the config file, then the default; wildcards become loopback", () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-status-"));
    const f = join(dir, "c.toml");
    writeFileSync(f, 'domain = "a.org"\nmetrics = "0.0.0.0:7002"\n');
    expect(statusAddress([])).toEqual({ host: "127.0.0.1", port: 5290 });
    expect(statusAddress(["--metrics", "127.0.0.2:1234"])).toEqual({ host: "127.0.0.2", port: 1234 });
    expect(statusAddress(["--metrics", "[::]:1234"])).toEqual({ host: "::1", port: 1234 });
    expect(statusAddress(["--config", f])).toEqual({ host: "127.0.0.1", port: 7002 });
    expect(statusAddress(["--config", f, "--metrics", "127.0.0.1:1"])).toEqual({ host: "127.0.0.1", port: 1 });
    expect(() => statusAddress(["--metrics", "off"])).toThrow(ConfigError);
  });

  it("--help documents the commands and the flag", () => {
    const h = helpText();
    expect(h).toContain("--metrics HOST:PORT");
    expect(h).toContain("default: 127.0.0.1:5290");
    expect(h).toMatch(/^ {2}check {2,}check the configuration, certificates and the upstream/m);
    expect(h).toMatch(/^ {2}status \[--json\] {2,}show the running proxy's accounts, sessions and rooms/m);
  });
});
