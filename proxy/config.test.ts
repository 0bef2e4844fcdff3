import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { expectConfigError } from "../test/support/config-error.js";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPTIONS } from "./cli-args.js";
import { ConfigError, DEFAULTS, defaultStateDir, loadConfig, parseConfigToml, type Config } from "./config.js";

const ENV = { HOME: "/home/u" };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minimix-config-test-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function file(text: string | Buffer, name?: string): string {
  const p = join(dir, name ?? `c${n++}.toml`);
  writeFileSync(p, text);
  return p;
}

describe("defaults", () => {
  it("only --domain given", () => {
    const c = loadConfig(["--domain", "example.org"], ENV);
    expect(c).toEqual<Config>({
      listen: [{ host: "0.0.0.0", port: 5222 }],
      listenTls: [{ host: "0.0.0.0", port: 5223 }],
      domains: ["example.org"],
      certs: [],
      upstream: { host: "example.org", port: 5222 },
      upstreamTls: "starttls",
      upstreamInsecure: false,
      proxyProtocol: false,
      proxyProtocolFrom: [{ address: "127.0.0.0", prefix: 8, family: "ipv4" }, { address: "::1", prefix: 128, family: "ipv6" }],
      logLevel: "info",
      stateDir: "/home/u/.local/state/minimix-proxy",
      clientSasl: "auto",
      limits: { maxStanzaSize: 262144, maxDepth: 64, authTimeoutMs: 30_000, maxUnauthenticatedPerIp: 32, maxUnauthenticated: 1024, maxRoomsPerAccount: 100,
        slowClientTimeoutMs: 60_000, maxBufferedBytes: 268_435_456 },
      keepaliveMs: 60_000,
      upstreamTimeoutMs: 10_000,
      accountResourcePrefix: "minimix-",
      roomHistory: 200,
      roomHistoryBytes: 1_048_576,
      maxHeldPms: 100,
      maxHeldPmBytes: 262_144,
      maxRoomOutbox: 1000,
      maxRoomOutboxBytes: 1_048_576,
      maxPendingIqs: 1000,
      maxAccountOutbox: 1000,
      maxAccountOutboxBytes: 1_048_576,
      roomIdleLeaveMs: 7_200_000,
      awayPresence: "xa",
      bookmarks: "follow",
      accountSession: { start: "login", lingerMs: 300_000 },
      joinTimeoutMs: 30_000,
      sm: { maxQueue: 5000, maxQueueBytes: 4_194_304, resumeTimeoutMs: 300_000, ackEvery: 5 },
      csi: { maxHeld: 256, maxHeldBytes: 262_144 },
      push: { rooms: "mentions", intervalMs: 10_000, withBody: false, timeoutMs: 30_000 },
      metrics: { host: "127.0.0.1", port: 5290 },
    });
  });

  it("domain is required", () => {
    expectConfigError(() => loadConfig([], ENV), 'config: domain: required; give --domain NAME or domain = "NAME" in the config file', "domain");
    expectConfigError(() => loadConfig(["--config", file("domain = []\n")], ENV), /^config: domain: required/);
  });

  it("state dir honours XDG_STATE_HOME when absolute", () => {
    expect(defaultStateDir({ HOME: "/h", XDG_STATE_HOME: "/xdg" })).toBe("/xdg/minimix-proxy");
    expect(defaultStateDir({ HOME: "/h", XDG_STATE_HOME: "rel" })).toBe("/h/.local/state/minimix-proxy");
    expect(defaultStateDir({ HOME: "/h", XDG_STATE_HOME: "" })).toBe("/h/.local/state/minimix-proxy");
    expect(loadConfig(["--domain", "a.org"], { HOME: "/h", XDG_STATE_HOME: "/xdg" }).stateDir).toBe("/xdg/minimix-proxy");
  });

  it("listener defaults apply only when no listener is given at all", () => {
    expect(loadConfig(["--domain", "a.org", "--listen-tls", "[::]:5223"], ENV)).toMatchObject({
      listen: [],
      listenTls: [{ host: "::", port: 5223 }],
    });
    expect(loadConfig(["--domain", "a.org", "--listen", "127.0.0.1:5222"], ENV)).toMatchObject({
      listen: [{ host: "127.0.0.1", port: 5222 }],
      listenTls: [],
    });
    // an explicit empty list in the file counts as "given", so no defaults fill in the other one
    const p = file('domain = "a.org"\nlisten = []\nlisten-tls = ["127.0.0.1:5223"]\n');
    expect(loadConfig(["--config", p], ENV)).toMatchObject({ listen: [], listenTls: [{ host: "127.0.0.1", port: 5223 }] });
    const q = file('domain = "a.org"\nlisten = []\n');
    expectConfigError(() => loadConfig(["--config", q], ENV), /no listener configured/);
  });

  it("no listener at all is an error", () => {
    const p = file('domain = "a.org"\nlisten = []\nlisten-tls = []\n');
    expectConfigError(() => loadConfig(["--config", p], ENV), "config: listen: no listener configured (listen and listen-tls are both empty)", "listen");
  });

  it("the same address twice is an error; port 0 may repeat", () => {
    expectConfigError(
      () => loadConfig(["--domain", "a.org", "--listen", "0.0.0.0:5222", "--listen-tls", "0.0.0.0:5222"], ENV),
      "config: listen-tls: 0.0.0.0:5222 is already used by listen",
      "listen-tls",
    );
    expectConfigError(
      () => loadConfig(["--domain", "a.org", "--listen", "[::1]:5222", "--listen", "[::1]:5222"], ENV),
      "config: listen: [::1]:5222 is already used by listen",
    );
    expect(loadConfig(["--domain", "a.org", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0"], ENV).listen).toHaveLength(1);
  });

  it("upstream defaults to the first domain; port 5223 for direct TLS", () => {
    expect(loadConfig(["--domain", "b.org", "--domain", "a.org"], ENV).upstream).toEqual({ host: "b.org", port: 5222 });
    expect(loadConfig(["--domain", "b.org", "--upstream-tls", "direct"], ENV).upstream).toEqual({ host: "b.org", port: 5223 });
    expect(loadConfig(["--domain", "[::1]"], ENV).upstream).toEqual({ host: "::1", port: 5222 });
    expect(loadConfig(["--domain", "b.org", "--upstream-tls", "direct", "--upstream", "x.org:5222"], ENV).upstream).toEqual({ host: "x.org", port: 5222 });
  });

  it("upstream-tls none: plain TCP only to a loopback upstream (port 5222 by default)", () => {
    expect(loadConfig(["--domain", "a.org", "--upstream-tls", "none", "--upstream", "127.0.0.1:5222"], ENV).upstreamTls).toBe("none");
    expect(loadConfig(["--domain", "a.org", "--upstream-tls", "none", "--upstream", "[::1]:15222"], ENV).upstream).toEqual({ host: "::1", port: 15222 });
    expect(loadConfig(["--domain", "localhost", "--upstream-tls", "none"], ENV).upstream).toEqual({ host: "localhost", port: 5222 });
    expect(loadConfig(["--domain", "a.org", "--upstream-tls", "none", "--upstream", "127.3.2.1:5222"], ENV).upstreamTls).toBe("none");
    for (const host of ["a.org", "10.0.0.1", "[2001:db8::1]", "128.0.0.1"]) {
      expectConfigError(() => loadConfig(["--domain", "a.org", "--upstream-tls", "none", "--upstream", `${host}:5222`], ENV),
        /^config: upstream-tls none sends the upstream login in the clear, so it is only allowed to a loopback address .*; use starttls or direct$/, "upstream-tls");
    }
    // the default upstream (the first domain) is not loopback either
    expectConfigError(() => loadConfig(["--domain", "a.org", "--upstream-tls", "none"], ENV), /only allowed to a loopback address/, "upstream-tls");
  });

  it("--help/--version are not configurations", () => {
    expectConfigError(() => loadConfig(["--help"], ENV), /^config: --help is not a configuration/, "argv");
    expectConfigError(() => loadConfig(["--version"], ENV), /^config: --version is not a configuration/, "argv");
  });

  it("keeps the subcommand and the config file path", () => {
    const p = file('domain = "a.org"\n');
    const c = loadConfig(["check", "--config", p], ENV);
    expect(c.command).toBe("check");
    expect(c.configFile).toBe(p);
  });
});

describe("--proxy-protocol-from", () => {
  it("defaults to loopback only; a list from the file or the command line replaces it", () => {
    expect(loadConfig(["--domain", "a.org", "--proxy-protocol"], ENV).proxyProtocolFrom).toEqual([
      { address: "127.0.0.0", prefix: 8, family: "ipv4" }, { address: "::1", prefix: 128, family: "ipv6" },
    ]);
    const p = file('domain = "a.org"\nproxy-protocol = true\nproxy-protocol-from = ["10.0.0.5", "2001:db8:1::/64"]\n');
    expect(loadConfig(["--config", p], ENV).proxyProtocolFrom).toEqual([
      { address: "10.0.0.5", prefix: 32, family: "ipv4" }, { address: "2001:db8:1::", prefix: 64, family: "ipv6" },
    ]);
    expect(loadConfig(["--config", p, "--proxy-protocol-from", "192.0.2.0/24"], ENV).proxyProtocolFrom).toEqual([
      { address: "192.0.2.0", prefix: 24, family: "ipv4" },
    ]);
    expect(loadConfig(["--config", file('domain = "a.org"\nproxy-protocol-from = "10.0.0.5"\n')], ENV).proxyProtocolFrom).toEqual([
      { address: "10.0.0.5", prefix: 32, family: "ipv4" },
    ]);
  });

  it("an empty list with proxy-protocol on would refuse everyone: an error", () => {
    expectConfigError(() => loadConfig(["--config", file('domain = "a.org"\nproxy-protocol = true\nproxy-protocol-from = []\n')], ENV),
      /^config: proxy-protocol-from: empty, so every connection would be refused/, "proxy-protocol-from");
    expectConfigError(() => loadConfig(["--config", file('domain = "a.org"\nproxy-protocol-from = ["10.0.0.0/99"]\n')], ENV),
      /^config: proxy-protocol-from: prefix length must be 0-32, got "10.0.0.0\/99" in /);
  });
});

describe("cluster", () => {
  it("absent without --cluster-redis; with it: the node id, advertise address and lease TTL", () => {
    expect(loadConfig(["--domain", "a.org"], ENV).cluster).toBeUndefined();
    const c = loadConfig(["--domain", "a.org", "--cluster-redis", "redis://10.0.0.5:6379/1", "--node-id", "n-1", "--cluster-advertise", "10.0.0.11:5299", "--cluster-lease-ttl", "4"], ENV);
    expect(c.cluster).toEqual({ redisUrl: "redis://10.0.0.5:6379/1", nodeId: "n-1", advertise: { host: "10.0.0.11", port: 5299 }, leaseTtlMs: 4000 });
    const f = loadConfig(["--config", file('domain = "a.org"\ncluster-redis = "rediss://r:6380"\n')], ENV);
    expect(f.cluster?.leaseTtlMs).toBe(10_000);
    expect(f.cluster?.nodeId).toMatch(/^[A-Za-z0-9._-]+-5222$/);
  });

  it("refuses a bad URL (without echoing its password), a bad node id, and cluster keys without cluster-redis", () => {
    expectConfigError(() => loadConfig(["--domain", "a.org", "--cluster-redis", "http://u:pw@h"], ENV), /^config: --cluster-redis: expected redis:\/\/host:port/, "cluster-redis");
    expect(() => loadConfig(["--domain", "a.org", "--cluster-redis", "http://u:pw@h"], ENV)).toThrow(/\/\/\*\*\*@h/);
    expectConfigError(() => loadConfig(["--domain", "a.org", "--cluster-redis", "redis://h:1", "--node-id", "a b"], ENV), /^config: --node-id: expected 1-64 letters/, "node-id");
    expectConfigError(() => loadConfig(["--domain", "a.org", "--node-id", "n1"], ENV), /^config: node-id: only meaningful with cluster-redis/, "node-id");
    expectConfigError(() => loadConfig(["--domain", "a.org", "--cluster-redis", "redis://h:1", "--cluster-lease-ttl", "1"], ENV), /^config: --cluster-lease-ttl: /, "cluster-lease-ttl");
    expectConfigError(() => loadConfig(["--domain", "a.org", "--cluster-redis", "redis://h:1", "--cluster-advertise", "nope"], ENV), /^config: --cluster-advertise: /, "cluster-advertise");
  });

  it("--cluster-client-address: HOST or HOST:PORT, IPv6 in brackets; refused when malformed or without cluster-redis", () => {
    const base = ["--domain", "a.org", "--cluster-redis", "redis://h:1"];
    expect(loadConfig([...base, "--cluster-client-address", "node1.a.org"], ENV).cluster?.clientAddress).toEqual({ host: "node1.a.org" });
    expect(loadConfig([...base, "--cluster-client-address", "10.0.0.11:15222"], ENV).cluster?.clientAddress).toEqual({ host: "10.0.0.11", port: 15222 });
    expect(loadConfig([...base, "--cluster-client-address", "[2001:db8::11]"], ENV).cluster?.clientAddress).toEqual({ host: "2001:db8::11" });
    expect(loadConfig([...base, "--cluster-client-address", "[2001:db8::11]:5222"], ENV).cluster?.clientAddress).toEqual({ host: "2001:db8::11", port: 5222 });
    expect(loadConfig(["--config", file('domain = "a.org"\ncluster-redis = "redis://h:1"\ncluster-client-address = "n1.a.org:5222"\n')], ENV).cluster?.clientAddress).toEqual({ host: "n1.a.org", port: 5222 });
    expect(loadConfig(base, ENV).cluster?.clientAddress).toBeUndefined();
    for (const bad of ["2001:db8::11", "[nope]", "bad host", "h:0", "h:x"]) {
      expectConfigError(() => loadConfig([...base, "--cluster-client-address", bad], ENV), /^config: --cluster-client-address: /, "cluster-client-address");
    }
    expectConfigError(() => loadConfig(["--domain", "a.org", "--cluster-client-address", "n1.a.org"], ENV), /^config: cluster-client-address: only meaningful with cluster-redis/, "cluster-client-address");
  });
});

describe("--client-sasl", () => {
  it("takes repeated and comma-separated names in any case, strongest first, without duplicates", () => {
    const c = loadConfig(["--domain", "example.org", "--client-sasl", "plain", "--client-sasl", "SCRAM-SHA-1, scram-sha-512-plus,PLAIN"], ENV);
    expect(c.clientSasl).toEqual(["SCRAM-SHA-512-PLUS", "SCRAM-SHA-1", "PLAIN"]);
  });

  it("refuses unknown mechanisms and an empty list", () => {
    expect(() => loadConfig(["--domain", "example.org", "--client-sasl", "SCRAM-SHA-1,DIGEST-MD5"], ENV)).toThrow(
      /^config: --client-sasl: unknown mechanism "DIGEST-MD5" \(expected auto, or some of SCRAM-SHA-512-PLUS, /);
    expect(loadConfig(["--domain", "example.org", "--client-sasl", "AUTO"], ENV).clientSasl).toBe("auto");
    expect(() => loadConfig(["--domain", "example.org", "--client-sasl", "auto,PLAIN"], ENV)).toThrow(/^config: --client-sasl: "auto" stands alone/);
    expect(() => loadConfig(["--domain", "example.org", "--client-sasl", " , "], ENV)).toThrow(/^config: --client-sasl: no mechanism given/);
    expect(() => loadConfig(["--config", file('domain = "example.org"\nclient-sasl = []\n')], ENV)).toThrow(/^config: client-sasl: no mechanism given.* in /);
  });
});

describe("TOML file", () => {
  const FULL = `
listen = ["127.0.0.1:5222", "[::1]:5222"]
listen-tls = "[::]:5223"
domain = ["Example.org", "example.net."]
cert = ["/etc/letsencrypt/live/example.org/fullchain.pem", "net.pem"]
key = ["/etc/letsencrypt/live/example.org/privkey.pem", "net.key"]
upstream = "xmpp.example.org:5269"
upstream-tls = "direct"
upstream-ca = "ca/bundle.pem"
upstream-insecure = true
log-level = "debug"
state-dir = "~/state"
client-sasl = ["SCRAM-SHA-256", "scram-sha-1-plus,PLAIN"]
max-stanza-size = 1_048_576
max-depth = 32
auth-timeout = 15
keepalive = 0
upstream-timeout = 5
account-resource-prefix = "mm-"
room-history = 50
room-history-bytes = 65536
room-idle-leave = 600
away-presence = "away"
bookmarks = "ignore"
account-session-start = "join"
account-session-linger = 0
join-timeout = 12
sm-max-queue = 100
sm-max-queue-bytes = 65536
sm-resume-timeout = 60
sm-ack-every = 2
csi-max-held = 50
csi-max-held-bytes = 10000
push-rooms = "all"
push-interval = 0
push-body = true
push-timeout = 5
metrics = "[::1]:9100"
`;

  it("every key", () => {
    const sub = join(dir, "full");
    mkdirSync(sub, { recursive: true });
    const p = file(FULL, "full/config.toml");
    const c = loadConfig(["--config", p], ENV);
    expect(c).toEqual<Config>({
      listen: [
        { host: "127.0.0.1", port: 5222 },
        { host: "::1", port: 5222 },
      ],
      listenTls: [{ host: "::", port: 5223 }],
      domains: ["example.org", "example.net"],
      certs: [
        { certFile: "/etc/letsencrypt/live/example.org/fullchain.pem", keyFile: "/etc/letsencrypt/live/example.org/privkey.pem" },
        { certFile: join(sub, "net.pem"), keyFile: join(sub, "net.key") },
      ],
      upstream: { host: "xmpp.example.org", port: 5269 },
      upstreamTls: "direct",
      upstreamCa: join(sub, "ca/bundle.pem"),
      upstreamInsecure: true,
      proxyProtocol: false,
      proxyProtocolFrom: [{ address: "127.0.0.0", prefix: 8, family: "ipv4" }, { address: "::1", prefix: 128, family: "ipv6" }],
      logLevel: "debug",
      stateDir: "/home/u/state",
      clientSasl: ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "PLAIN"],
      limits: { maxStanzaSize: 1_048_576, maxDepth: 32, authTimeoutMs: 15_000, maxUnauthenticatedPerIp: 32, maxUnauthenticated: 1024, maxRoomsPerAccount: 100,
        slowClientTimeoutMs: 60_000, maxBufferedBytes: 268_435_456 },
      keepaliveMs: 0,
      upstreamTimeoutMs: 5_000,
      accountResourcePrefix: "mm-",
      roomHistory: 50,
      roomHistoryBytes: 65536,
      maxHeldPms: 100,
      maxHeldPmBytes: 262_144,
      maxRoomOutbox: 1000,
      maxRoomOutboxBytes: 1_048_576,
      maxPendingIqs: 1000,
      maxAccountOutbox: 1000,
      maxAccountOutboxBytes: 1_048_576,
      roomIdleLeaveMs: 600_000,
      awayPresence: "away",
      bookmarks: "ignore",
      accountSession: { start: "join", lingerMs: 0 },
      joinTimeoutMs: 12_000,
      sm: { maxQueue: 100, maxQueueBytes: 65536, resumeTimeoutMs: 60_000, ackEvery: 2 },
      csi: { maxHeld: 50, maxHeldBytes: 10_000 },
      push: { rooms: "all", intervalMs: 0, withBody: true, timeoutMs: 5_000 },
      metrics: { host: "::1", port: 9100 },
      configFile: p,
    });
  });

  it("flags override the file; repeatable flags replace the whole list", () => {
    const p = file(FULL);
    const c = loadConfig(
      [
        "--config", p,
        "--listen", "10.0.0.1:5222",
        "--domain", "other.org",
        "--cert", "c.pem", "--key", "k.pem",
        "--upstream", "u.org:5222",
        "--upstream-tls", "starttls",
        "--upstream-ca", "/ca.pem",
        "--upstream-insecure=false",
        "--log-level", "error",
        "--state-dir", "/var/lib/mm",
        "--max-stanza-size", "2048",
        "--max-depth", "16",
        "--auth-timeout", "7",
        "--keepalive", "30",
        "--upstream-timeout", "20",
        "--account-resource-prefix", "p-",
        "--room-history", "1",
        "--room-idle-leave", "0",
        "--away-presence", "keep",
        "--bookmarks", "ignore",
        "--account-session-linger", "60",
        "--join-timeout", "0",
        "--sm-resume-timeout", "0",
        "--sm-ack-every", "1",
      ],
      ENV,
    );
    expect(c).toMatchObject({
      listen: [{ host: "10.0.0.1", port: 5222 }],
      listenTls: [{ host: "::", port: 5223 }], // not overridden → from the file
      domains: ["other.org"],
      certs: [{ certFile: resolve("c.pem"), keyFile: resolve("k.pem") }], // CLI paths: relative to cwd
      upstream: { host: "u.org", port: 5222 },
      upstreamTls: "starttls",
      upstreamCa: "/ca.pem",
      upstreamInsecure: false,
      logLevel: "error",
      stateDir: "/var/lib/mm",
      limits: { maxStanzaSize: 2048, maxDepth: 16, authTimeoutMs: 7000 },
      keepaliveMs: 30_000,
      upstreamTimeoutMs: 20_000,
      accountResourcePrefix: "p-",
      roomHistory: 1,
      roomHistoryBytes: 65536,
      maxHeldPms: 100,
      maxHeldPmBytes: 262_144,
      maxRoomOutbox: 1000,
      maxRoomOutboxBytes: 1_048_576,
      maxPendingIqs: 1000,
      maxAccountOutbox: 1000,
      maxAccountOutboxBytes: 1_048_576,
      roomIdleLeaveMs: 0,
      awayPresence: "keep",
      bookmarks: "ignore",
      accountSession: { start: "join", lingerMs: 60_000 },
      joinTimeoutMs: 0,
      sm: { maxQueue: 100, maxQueueBytes: 65536, resumeTimeoutMs: 0, ackEvery: 1 },
    });
  });

  it("file over defaults, flags over file, key by key", () => {
    const p = file('domain = "a.org"\nmax-depth = 10\nlog-level = "warn"\n');
    const c = loadConfig(["--config", p, "--log-level", "trace"], ENV);
    expect(c.limits.maxDepth).toBe(10);
    expect(c.logLevel).toBe("trace");
    expect(c.roomHistory).toBe(DEFAULTS.roomHistory);
    expect(c.awayPresence).toBe("xa");
  });

  it("single strings work for repeatable keys", () => {
    const c = loadConfig(["--config", file('domain = "a.org"\ncert = "c.pem"\nkey = "k.pem"\nlisten = "[::]:5222"\n')], ENV);
    expect(c.domains).toEqual(["a.org"]);
    expect(c.certs).toEqual([{ certFile: join(dir, "c.pem"), keyFile: join(dir, "k.pem") }]);
    expect(c.listen).toEqual([{ host: "::", port: 5222 }]);
  });

  it("unknown keys", () => {
    const p = file('lisen = "x:1"\n');
    expectConfigError(() => loadConfig(["--config", p], ENV), `config: unknown key "lisen" in ${p} (did you mean "listen"?)`, "lisen");
    const q = file('domain = "a"\nmax_stanza_size = 5\n');
    expectConfigError(() => loadConfig(["--config", q], ENV), `config: unknown key "max_stanza_size" in ${q} (did you mean "max-stanza-size"?)`);
    const r = file('frobnicate = 1\n');
    expectConfigError(() => loadConfig(["--config", r], ENV), `config: unknown key "frobnicate" in ${r}`);
    const s = file('[certificate]\ncert = "a"\n');
    expectConfigError(() => loadConfig(["--config", s], ENV), `config: unknown key "certificate" in ${s}`, "certificate");
    expectConfigError(() => parseConfigToml('config = "x"\n', "f.toml"), 'config: unknown key "config" in f.toml (--config only exists on the command line)');
    expectConfigError(() => parseConfigToml("help = true\n", "f.toml"), 'config: unknown key "help" in f.toml');
  });

  it.each([
    ['max-depth = "64"', "config: max-depth: expected integer, got string in f.toml"],
    ["max-depth = 64.0", "config: max-depth: expected integer, got float in f.toml"],
    ["max-depth = 2", "config: max-depth: expected integer between 4 and 1024, got 2 in f.toml"],
    ["max-depth = 99999999999999999", "config: max-depth: expected integer between 4 and 1024, got 99999999999999999 in f.toml"],
    ["keepalive = -1", "config: keepalive: expected integer between 0 and 3600, got -1 in f.toml"],
    ['upstream-insecure = "true"', "config: upstream-insecure: expected boolean, got string in f.toml"],
    ['upstream = ["a.org:5222"]', "config: upstream: expected string, got array in f.toml"],
    ["log-level = 1", "config: log-level: expected string, got integer in f.toml"],
    ["listen = 5222", "config: listen: expected string or array of strings, got integer in f.toml"],
    ["listen = [5222]", "config: listen: expected array of strings, got array containing integer in f.toml"],
    ["domain = 2024-01-01", "config: domain: expected string or array of strings, got datetime in f.toml"],
    ["[listen]\nport = 1", "config: listen: expected string or array of strings, got table in f.toml"],
    ['listen = "abc"', 'config: listen: expected HOST:PORT, got "abc" in f.toml'],
    ['upstream-tls = "TLS"', 'config: upstream-tls: expected starttls|direct|none, got "TLS" in f.toml'],
    ['domain = "a b"', 'config: domain: expected a domain name, got "a b" in f.toml'],
    ['state-dir = ""', 'config: state-dir: expected a path, got "" in f.toml'],
    ['cert = ["a", "b"]\nkey = "c"', "config: cert has 2 entries but key has 1 in f.toml"],
    ['key = "c"', "config: cert has 0 entries but key has 1 in f.toml"],
  ])("%s", (toml, msg) => {
    expectConfigError(() => parseConfigToml(`${toml}\n`, "f.toml"), msg);
  });

  it("prototype-polluting keys are refused", () => {
    expectConfigError(() => parseConfigToml("__proto__ = 1\n", "f.toml"), "config: f.toml:1:1: invalid TOML: document contains an unsafe property");
  });

  it("a TOML syntax error names the file and line", () => {
    const p = file('domain = "a.org"\nmax-depth = \n');
    expectConfigError(() => loadConfig(["--config", p], ENV), `config: ${p}:2:13: invalid TOML: invalid value`, "config");
    expectConfigError(() => parseConfigToml('a = 1\na = 2\n', "x.toml"), /^config: x\.toml:2:1: invalid TOML: /);
    expectConfigError(() => parseConfigToml('listen = ["a:1",\n', "x.toml"), /^config: x\.toml:\d+:\d+: invalid TOML: /);
  });

  it("unreadable files", () => {
    expectConfigError(() => loadConfig(["--config", join(dir, "missing.toml")], ENV), `config: cannot read config file ${join(dir, "missing.toml")}: no such file`, "config");
    expectConfigError(() => loadConfig(["--config", dir], ENV), `config: cannot read config file ${dir}: is a directory`);
    const bad = file(Buffer.from([0x64, 0x3d, 0x22, 0xff, 0x22, 0x0a]));
    expectConfigError(() => loadConfig(["--config", bad], ENV), `config: ${bad}: not valid UTF-8`);
  });

  it("a relative --config is resolved against the working directory; ~ is expanded", () => {
    const p = file('domain = "a.org"\n', "rel.toml");
    // (no process.chdir: it is not allowed in worker threads)
    expect(loadConfig(["--config", relative(process.cwd(), p)], ENV).configFile).toBe(p);
    expect(loadConfig(["--config", "~/rel.toml"], { HOME: dir }).configFile).toBe(p);
  });

  it("CLI paths: ~ is expanded, relative ones resolved against the working directory", () => {
    const c = loadConfig(["--domain", "a.org", "--state-dir=~/s", "--upstream-ca", "ca.pem"], ENV);
    expect(c.stateDir).toBe("/home/u/s");
    expect(c.upstreamCa).toBe(resolve("ca.pem"));
  });
});

describe("config.example.toml", () => {
  const example = readFileSync(new URL("../config.example.toml", import.meta.url), "utf8");

  it("is valid as shipped", () => {
    const c = loadConfig(["--config", file(example)], ENV);
    expect(c.domains).toEqual(["example.org"]);
    expect(c.certs).toEqual([
      { certFile: "/etc/letsencrypt/live/example.org/fullchain.pem", keyFile: "/etc/letsencrypt/live/example.org/privkey.pem" },
    ]);
    expect(c.listen).toEqual([{ host: "0.0.0.0", port: 5222 }]);
  });

  it("documents every key, and its commented-out values are the defaults", () => {
    const keys = new Set<string>();
    for (const m of example.matchAll(/^#? ?([a-z-]+)\s*=/gm)) keys.add(m[1] ?? "");
    const fileKeys = OPTIONS.filter((o) => !o.cliOnly).map((o) => o.name);
    expect(fileKeys).toHaveLength(60);
    for (const k of fileKeys) expect(keys, k).toContain(k);
    for (const k of keys) expect(fileKeys, k).toContain(k);
    // Uncomment the single-line "# key = value" defaults (skipping alternatives that are examples).
    const skip = new Set(["cert", "key", "state-dir", "upstream-ca", "cluster-redis", "node-id", "cluster-advertise", "cluster-client-address", "cluster-lease-ttl", "cluster-secret-file"]);
    const lines = example.split("\n").map((l) => {
      const m = /^# ([a-z-]+) = (.*)$/.exec(l);
      return m && !skip.has(m[1] ?? "") ? l.slice(2) : l;
    });
    const uncommented = lines.join("\n");
    const c = loadConfig(["--config", file(uncommented)], ENV);
    const d = loadConfig(["--domain", "example.org", "--cert", "/etc/letsencrypt/live/example.org/fullchain.pem", "--key", "/etc/letsencrypt/live/example.org/privkey.pem"], ENV);
    expect({ ...c, configFile: undefined }).toEqual({ ...d, upstream: { host: "example.org", port: 5222 }, configFile: undefined });
  });
});
