import { describe, expect, it } from "vitest";
import { expectConfigError } from "../test/support/config-error.js";
import { ConfigError, OPTIONS, helpText, parseArgs, parseHostPort, type PartialConfig } from "./cli-args.js";

function flags(argv: string[]): PartialConfig {
  const r = parseArgs(argv);
  if (r.kind !== "run") throw new Error(`expected run, got ${r.kind}`);
  return r.flags;
}

describe("parseArgs: help, version, command", () => {
  it("--help and -h, anywhere, even next to errors", () => {
    expect(parseArgs(["--help"])).toEqual({ kind: "help" });
    expect(parseArgs(["-h"])).toEqual({ kind: "help" });
    expect(parseArgs(["--domain", "x.org", "--help"])).toEqual({ kind: "help" });
    expect(parseArgs(["--bogus", "--help"])).toEqual({ kind: "help" });
    expect(parseArgs(["--version", "--help"])).toEqual({ kind: "help" });
  });

  it("--version", () => {
    expect(parseArgs(["--version"])).toEqual({ kind: "version" });
    expect(parseArgs(["status", "--version"])).toEqual({ kind: "version" });
  });

  it("no arguments is a run with no flags", () => {
    expect(parseArgs([])).toEqual({ kind: "run", flags: {} });
  });

  it("a leading word is the subcommand", () => {
    expect(parseArgs(["status"])).toEqual({ kind: "run", command: "status", flags: {} });
    expect(parseArgs(["check", "--config", "/etc/x.toml", "--domain", "a.org"])).toEqual({
      kind: "run",
      command: "check",
      configFile: "/etc/x.toml",
      flags: { domains: ["a.org"] },
    });
  });

  it("rejects stray positional arguments", () => {
    expectConfigError(() => parseArgs(["status", "extra"]), 'config: unexpected argument "extra"', "argv");
    expectConfigError(() => parseArgs(["--domain", "a.org", "status"]), 'config: unexpected argument "status"');
    expectConfigError(() => parseArgs(["config.toml"]), 'config: unexpected argument "config.toml" (options start with "--")');
    expectConfigError(() => parseArgs(["-d", "x"]), /^config: unexpected argument "-d"/);
    expectConfigError(() => parseArgs(["--", "x"]), 'config: unexpected argument "x"');
    expect(parseArgs(["--domain", "a.org", "--"])).toEqual({ kind: "run", flags: { domains: ["a.org"] } });
  });
});

describe("parseArgs: syntax", () => {
  it("accepts --flag VALUE and --flag=VALUE", () => {
    expect(flags(["--log-level", "debug"]).logLevel).toBe("debug");
    expect(flags(["--log-level=warn"]).logLevel).toBe("warn");
    expect(flags(["--account-resource-prefix=--x"]).accountResourcePrefix).toBe("--x");
  });

  it("unknown flags, with a hint", () => {
    expectConfigError(() => parseArgs(["--lisen", "x"]), "config: unknown flag --lisen (did you mean --listen?)", "lisen");
    expectConfigError(() => parseArgs(["--max_depth=3"]), "config: unknown flag --max_depth (did you mean --max-depth?)");
    expectConfigError(() => parseArgs(["--frobnicate"]), "config: unknown flag --frobnicate", "frobnicate");
  });

  it("missing values", () => {
    expectConfigError(() => parseArgs(["--listen"]), "config: --listen: missing value (expected HOST:PORT)", "listen");
    expectConfigError(() => parseArgs(["--listen", "--domain", "x.org"]), "config: --listen: missing value (expected HOST:PORT)");
    expectConfigError(() => parseArgs(["--config"]), "config: --config: missing value (expected FILE)", "config");
    expectConfigError(() => parseArgs(["--config="]), 'config: --config: expected a path, got ""');
    expectConfigError(() => parseArgs(["--listen", "--"]), "config: --listen: missing value (expected HOST:PORT)");
  });

  it("a value may start with a single dash; only \"--\" needs \"=\"", () => {
    expect(flags(["--account-resource-prefix", "-x"]).accountResourcePrefix).toBe("-x");
    expectConfigError(() => parseArgs(["--keepalive", "-1"]), 'config: --keepalive: expected integer, got "-1"', "keepalive");
  });

  it("short options other than -h, alone or grouped, are stray arguments", () => {
    expectConfigError(() => parseArgs(["-abc"]), 'config: unexpected argument "-abc" (options start with "--")', "argv");
    expectConfigError(() => parseArgs(["-hx"]), 'config: unexpected argument "-hx" (options start with "--")');
    expectConfigError(() => parseArgs(["status", "-v"]), 'config: unexpected argument "-v"');
  });

  it("single-valued flags given twice", () => {
    expectConfigError(() => parseArgs(["--upstream", "a:1", "--upstream", "b:2"]), "config: --upstream: given more than once (it takes one value)", "upstream");
    expectConfigError(() => parseArgs(["--max-depth", "8", "--max-depth=9"]), "config: --max-depth: given more than once (it takes one value)");
    expectConfigError(() => parseArgs(["--config", "a", "--config", "b"]), "config: --config: given more than once");
    expectConfigError(() => parseArgs(["--upstream-insecure", "--upstream-insecure"]), "config: --upstream-insecure: given more than once");
  });
});

describe("parseArgs: every flag", () => {
  it("--listen / --listen-tls (repeatable, IPv4, IPv6, names, port 0)", () => {
    expect(flags(["--listen", "127.0.0.1:5222", "--listen", "[::1]:5222", "--listen", "localhost:0"]).listen).toEqual([
      { host: "127.0.0.1", port: 5222 },
      { host: "::1", port: 5222 },
      { host: "localhost", port: 0 },
    ]);
    expect(flags(["--listen-tls", "[::]:5223", "--listen-tls=xmpp.example.org:443"]).listenTls).toEqual([
      { host: "::", port: 5223 },
      { host: "xmpp.example.org", port: 443 },
    ]);
  });

  it.each([
    ["abc", 'config: --listen: expected HOST:PORT, got "abc"'],
    [":5222", 'config: --listen: expected HOST:PORT, got ":5222"'],
    ["host:", 'config: --listen: expected HOST:PORT, got "host:"'],
    ["host:port", 'config: --listen: expected HOST:PORT, got "host:port"'],
    ["host:65536", 'config: --listen: port must be 0-65535, got "host:65536"'],
    ["host:-1", 'config: --listen: expected HOST:PORT, got "host:-1"'],
    ["::1:5222", 'config: --listen: IPv6 addresses need brackets, e.g. [::1]:5222, got "::1:5222"'],
    ["[::1]5222", 'config: --listen: expected HOST:PORT, got "[::1]5222"'],
    ["[::1]", 'config: --listen: expected HOST:PORT, got "[::1]"'],
    ["[nope]:5222", 'config: --listen: expected an IPv6 address in [...], got "[nope]:5222"'],
    ["bad host:5222", 'config: --listen: invalid host in "bad host:5222"'],
    ["-x.org:5222", 'config: --listen: invalid host in "-x.org:5222"'],
  ])("--listen %j", (v, msg) => {
    expectConfigError(() => parseArgs([`--listen=${v}`]), msg, "listen");
  });

  it("--domain (repeatable, normalised, de-duplicated)", () => {
    expect(flags(["--domain", "Example.ORG.", "--domain", "example.net", "--domain", "example.org"]).domains).toEqual(["example.org", "example.net"]);
    expectConfigError(() => parseArgs(["--domain", "user@example.org"]), 'config: --domain: expected a domain name, got "user@example.org"', "domain");
    expectConfigError(() => parseArgs(["--domain", "a..b"]), 'config: --domain: expected a domain name, got "a..b"');
    expectConfigError(() => parseArgs(["--domain="]), 'config: --domain: expected a domain name, got ""');
  });

  it("--cert / --key pair in order", () => {
    expect(flags(["--cert", "a.pem", "--key", "a.key", "--cert", "b.pem", "--key", "b.key"]).certs).toEqual([
      { certFile: "a.pem", keyFile: "a.key" },
      { certFile: "b.pem", keyFile: "b.key" },
    ]);
    // interleaving does not matter, order within each does
    expect(flags(["--cert", "a.pem", "--cert", "b.pem", "--key", "a.key", "--key", "b.key"]).certs).toEqual([
      { certFile: "a.pem", keyFile: "a.key" },
      { certFile: "b.pem", keyFile: "b.key" },
    ]);
  });

  it("--cert / --key count mismatch", () => {
    expectConfigError(() => parseArgs(["--cert", "a", "--cert", "b", "--key", "c"]), "config: --cert given 2 times but --key 1 time", "key");
    expectConfigError(() => parseArgs(["--key", "c"]), "config: --cert given 0 times but --key 1 time", "cert");
    expectConfigError(() => parseArgs(["--cert", "c"]), "config: --cert given 1 time but --key 0 times");
  });

  it("--upstream", () => {
    expect(flags(["--upstream", "xmpp.example.org:5222"]).upstream).toEqual({ host: "xmpp.example.org", port: 5222 });
    expect(flags(["--upstream", "[2001:db8::1]:5223"]).upstream).toEqual({ host: "2001:db8::1", port: 5223 });
    expectConfigError(() => parseArgs(["--upstream", "x.org:0"]), 'config: --upstream: port must be 1-65535, got "x.org:0"', "upstream");
    expectConfigError(() => parseArgs(["--upstream", "x.org"]), 'config: --upstream: expected HOST:PORT, got "x.org"');
  });

  it("--upstream-tls", () => {
    expect(flags(["--upstream-tls", "direct"]).upstreamTls).toBe("direct");
    expect(flags(["--upstream-tls", "starttls"]).upstreamTls).toBe("starttls");
    expect(flags(["--upstream-tls", "none"]).upstreamTls).toBe("none");
    expectConfigError(() => parseArgs(["--upstream-tls", "tls"]), 'config: --upstream-tls: expected starttls|direct|none, got "tls"', "upstream-tls");
  });

  it("--upstream-ca", () => {
    expect(flags(["--upstream-ca", "ca.pem"]).upstreamCa).toBe("ca.pem");
  });

  it("--upstream-insecure (boolean)", () => {
    expect(flags(["--upstream-insecure"]).upstreamInsecure).toBe(true);
    expect(flags(["--upstream-insecure=false"]).upstreamInsecure).toBe(false);
    expect(flags(["--upstream-insecure=true"]).upstreamInsecure).toBe(true);
    expect(flags([]).upstreamInsecure).toBeUndefined();
    expectConfigError(() => parseArgs(["--upstream-insecure=yes"]), 'config: --upstream-insecure: expected true or false, got "yes"');
    // a boolean never swallows the next word
    expectConfigError(() => parseArgs(["--upstream-insecure", "false"]), 'config: unexpected argument "false"');
  });

  it("--bookmarks", () => {
    for (const v of ["follow", "ignore"]) expect(flags(["--bookmarks", v]).bookmarks).toBe(v);
    expectConfigError(() => parseArgs(["--bookmarks", "sync"]), 'config: --bookmarks: expected follow|ignore, got "sync"', "bookmarks");
  });

  it("--away-presence", () => {
    for (const v of ["xa", "away", "keep"]) expect(flags(["--away-presence", v]).awayPresence).toBe(v);
    expectConfigError(() => parseArgs(["--away-presence", "dnd"]), 'config: --away-presence: expected xa|away|keep, got "dnd"', "away-presence");
  });

  it("--push-rooms, --push-body", () => {
    for (const v of ["mentions", "all", "off"]) expect(flags(["--push-rooms", v]).pushRooms).toBe(v);
    expectConfigError(() => parseArgs(["--push-rooms", "some"]), 'config: --push-rooms: expected mentions|all|off, got "some"', "push-rooms");
    expect(flags(["--push-body"]).pushBody).toBe(true);
    expect(flags([]).pushBody).toBeUndefined();
    expectConfigError(() => parseArgs(["--push-body=maybe"]), 'config: --push-body: expected true or false, got "maybe"');
  });

  it("--log-level", () => {
    for (const l of ["trace", "debug", "info", "warn", "error", "fatal", "silent"]) expect(flags(["--log-level", l]).logLevel).toBe(l);
    expectConfigError(
      () => parseArgs(["--log-level", "loud"]),
      'config: --log-level: expected trace|debug|info|warn|error|fatal|silent, got "loud"',
      "log-level",
    );
  });

  it("--state-dir", () => {
    expect(flags(["--state-dir", "/var/lib/minimix"]).stateDir).toBe("/var/lib/minimix");
    expectConfigError(() => parseArgs(["--state-dir="]), 'config: --state-dir: expected a path, got ""');
  });

  it.each([
    ["max-stanza-size", "maxStanzaSize", "1024", 1024, "1023", "1024", "67108864"],
    ["max-depth", "maxDepth", "128", 128, "3", "4", "1024"],
    ["auth-timeout", "authTimeout", "5", 5, "0", "1", "3600"],
    ["keepalive", "keepalive", "0", 0, "3601", "0", "3600"],
    ["upstream-timeout", "upstreamTimeout", "3", 3, "601", "1", "600"],
    ["room-history", "roomHistory", "0", 0, "100001", "0", "100000"],
    ["room-history-bytes", "roomHistoryBytes", "4096", 4096, "1073741825", "0", "1073741824"],
    ["max-held-pms", "maxHeldPms", "5", 5, "100001", "0", "100000"],
    ["csi-max-held", "csiMaxHeld", "10", 10, "100001", "0", "100000"],
    ["csi-max-held-bytes", "csiMaxHeldBytes", "4096", 4096, "1073741825", "0", "1073741824"],
    ["max-held-pm-bytes", "maxHeldPmBytes", "4096", 4096, "1073741825", "0", "1073741824"],
    ["max-room-outbox", "maxRoomOutbox", "5", 5, "0", "1", "100000"],
    ["max-room-outbox-bytes", "maxRoomOutboxBytes", "4096", 4096, "1023", "1024", "1073741824"],
    ["max-pending-iqs", "maxPendingIqs", "5", 5, "0", "1", "100000"],
    ["max-account-outbox", "maxAccountOutbox", "5", 5, "0", "1", "100000"],
    ["max-account-outbox-bytes", "maxAccountOutboxBytes", "4096", 4096, "1023", "1024", "1073741824"],
    ["room-idle-leave", "roomIdleLeave", "60", 60, "31536001", "0", "31536000"],
    ["join-timeout", "joinTimeout", "45", 45, "3601", "0", "3600"],
    ["push-interval", "pushInterval", "30", 30, "3601", "0", "3600"],
    ["push-timeout", "pushTimeout", "5", 5, "0", "1", "600"],
    ["max-buffered-bytes", "maxBufferedBytes", "536870912", 536_870_912, "1048575", "1048576", "1099511627776"],
  ] as const)("--%s (integer with bounds)", (flag, field, good, parsed, bad, min, max) => {
    expect(flags([`--${flag}`, good])[field]).toBe(parsed);
    expect(flags([`--${flag}=${min}`])[field]).toBe(Number(min));
    expect(flags([`--${flag}=${max}`])[field]).toBe(Number(max));
    expectConfigError(() => parseArgs([`--${flag}`, bad]), `config: --${flag}: expected integer between ${min} and ${max}, got ${bad}`, flag);
    expectConfigError(() => parseArgs([`--${flag}`, "abc"]), `config: --${flag}: expected integer, got "abc"`, flag);
    expectConfigError(() => parseArgs([`--${flag}`, "1.5"]), `config: --${flag}: expected integer, got "1.5"`);
    expectConfigError(() => parseArgs([`--${flag}=-1`]), `config: --${flag}: expected integer, got "-1"`);
    expectConfigError(() => parseArgs([`--${flag}=9999999999999999999`]), `config: --${flag}: expected integer, got "9999999999999999999"`);
  });

  it("--proxy-protocol-from (repeatable; IPv4, IPv6, CIDR or a plain address)", () => {
    expect(flags(["--proxy-protocol-from", "10.0.0.0/8", "--proxy-protocol-from", "2001:db8::/32", "--proxy-protocol-from=192.0.2.7",
      "--proxy-protocol-from", "::1"]).proxyProtocolFrom).toEqual([
      { address: "10.0.0.0", prefix: 8, family: "ipv4" },
      { address: "2001:db8::", prefix: 32, family: "ipv6" },
      { address: "192.0.2.7", prefix: 32, family: "ipv4" },
      { address: "::1", prefix: 128, family: "ipv6" },
    ]);
    expect(flags(["--proxy-protocol-from", "0.0.0.0/0"]).proxyProtocolFrom).toEqual([{ address: "0.0.0.0", prefix: 0, family: "ipv4" }]);
    for (const bad of ["lb.example.org", "1.2.3", ""]) {
      expectConfigError(() => parseArgs([`--proxy-protocol-from=${bad}`]),
        `config: --proxy-protocol-from: expected an IP address or CIDR (10.0.0.0/8, 2001:db8::/32), got ${JSON.stringify(bad)}`, "proxy-protocol-from");
    }
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "10.0.0.0/x"]), 'config: --proxy-protocol-from: prefix length must be 0-32, got "10.0.0.0/x"');
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "10.0.0.0/"]), 'config: --proxy-protocol-from: prefix length must be 0-32, got "10.0.0.0/"');
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "10.0.0.0/33"]), 'config: --proxy-protocol-from: prefix length must be 0-32, got "10.0.0.0/33"');
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "::/129"]), 'config: --proxy-protocol-from: prefix length must be 0-128, got "::/129"');
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "[::1]"]), /expected an IP address or CIDR/);
    expectConfigError(() => parseArgs(["--proxy-protocol-from", "fe80::1%eth0"]), /expected an IP address or CIDR/);
  });

  it("--account-resource-prefix", () => {
    expect(flags(["--account-resource-prefix", "mm."]).accountResourcePrefix).toBe("mm.");
    expectConfigError(
      () => parseArgs(["--account-resource-prefix", "a b"]),
      'config: --account-resource-prefix: expected 1-64 printable ASCII characters without spaces, got "a b"',
    );
    expectConfigError(() => parseArgs(["--account-resource-prefix="]), /account-resource-prefix: expected 1-64/);
  });

  it("--config is kept apart from the settings", () => {
    const r = parseArgs(["--config", "rel/x.toml"]);
    expect(r).toEqual({ kind: "run", configFile: "rel/x.toml", flags: {} });
  });

  it("error messages stay on one line even for hostile values", () => {
    const e = expectConfigError(() => parseArgs(["--listen", "a\nb\u2028c"]), /^config: --listen: /);
    expect(e.message).toContain("\\n");
    expect(e.message).toContain("\\u2028");
  });
});

describe("parseHostPort", () => {
  it("zone ids and the wildcard", () => {
    expect(parseHostPort("[fe80::1%eth0]:5222", true)).toEqual({ host: "fe80::1%eth0", port: 5222 });
    expect(parseHostPort("0.0.0.0:5222", false)).toEqual({ host: "0.0.0.0", port: 5222 });
  });
});

describe("helpText", () => {
  it("lists every flag and its default", () => {
    const h = helpText();
    for (const o of OPTIONS) {
      expect(h).toContain(`--${o.name}`);
      if (o.default !== "") expect(h).toContain(`default: ${o.default}`);
    }
    expect(h).toMatch(/^Usage: minimix-proxy \[COMMAND\] \[--config FILE\] \[flags\]/);
    for (const d of ["262144", "64", "30", "60", "10", "minimix-", "200", "7200", "0.0.0.0:5222", "0.0.0.0:5223", "starttls", "info"]) {
      expect(h).toContain(d);
    }
    expect(h.endsWith("\n")).toBe(true);
  });
});

