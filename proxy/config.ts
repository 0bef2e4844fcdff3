/**
 * Configuration: command line (cli-args.ts) over TOML file over defaults, fully validated into a typed
 * `Config`. Pure apart from reading the --config file. Every problem is a ConfigError with a
 * one-line message naming the key; the CLI prints it and exits with status 2.
 *
 * The TOML file uses the flag names without "--" as top-level keys (see config.example.toml).
 * Repeatable settings are a string or an array of strings. Certificates are the parallel arrays
 * `cert = [...]` and `key = [...]`, paired by position exactly like repeated --cert/--key flags —
 * the same names as the flags, and no second, table-based syntax to learn.
 */
import { readFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { TomlDate, TomlError, parse as parseToml } from "smol-toml";
import type { ClientSaslMechanism } from "../core/sasl/mechanisms.js";
import {
  type AwayPresence,
  type BookmarksMode,
  type AccountSessionStart,
  type PushRoomsMode,
  ConfigError,
  OPTIONS,
  fail,
  isLoopback,
  oneLine,
  parseArgs,
  quote,
  suggest,
  toPartial,
  type CertPair,
  type Cidr,
  type HostPort,
  type LogLevel,
  type PartialConfig,
  type RawValue,
  type Source,
  type UpstreamTls,
} from "./cli-args.js";

export { ConfigError, formatCidr, helpText, parseArgs, type CertPair, type Cidr, type HostPort, type LogLevel, type ParsedArgs, type PartialConfig, type UpstreamTls } from "./cli-args.js";

export interface Limits {
  /** Largest stanza, in bytes, accepted from either side. */
  maxStanzaSize: number;
  /** Deepest XML nesting accepted. */
  maxDepth: number;
  /** From connect to authenticated session. */
  authTimeoutMs: number;
  /** Connections not yet authenticated, per client IP address and in total (excess: policy-violation / resource-constraint). */
  maxUnauthenticatedPerIp: number;
  maxUnauthenticated: number;
  /** Rooms one account may be in through the proxy; a join beyond it gets a policy-violation presence error. */
  maxRoomsPerAccount: number;
  /** A client whose socket stays congested this long (relay path) is cut; room fan-out is bounded by bytes instead. */
  slowClientTimeoutMs: number;
  /** Unread output held for all clients together; beyond it the sessions holding the most are cut (resource-constraint). */
  maxBufferedBytes: number;
}

export interface Config {
  /** STARTTLS client listeners. */
  listen: HostPort[];
  /** Direct-TLS client listeners (XEP-0368). */
  listenTls: HostPort[];
  /** XMPP over WebSocket (RFC 7395): wss listeners, plain loopback ones, and the HTTP path; absent = none. */
  websocket?: { listen: HostPort[]; listenPlain: HostPort[]; path: string };
  /** Served XMPP domains, normalised (lowercase, no trailing dot), at least one, no duplicates. */
  domains: string[];
  /** Absolute paths; empty = use a self-signed certificate from stateDir. */
  certs: CertPair[];
  upstream: HostPort;
  upstreamTls: UpstreamTls;
  /** Absolute path of a PEM CA bundle; absent = system CAs. */
  upstreamCa?: string;
  upstreamInsecure: boolean;
  /** Every listener expects a PROXY protocol header first (the real client address). */
  proxyProtocol: boolean;
  /**
   * Sources allowed to send a PROXY header; a connection from anywhere else is closed before TLS.
   * Loopback only (DEFAULTS.proxyProtocolFrom) when proxy-protocol is on and none were configured.
   */
  proxyProtocolFrom: Cidr[];
  logLevel: LogLevel;
  /** Absolute path. */
  stateDir: string;
  /**
   * SASL mechanisms to offer clients, strongest first (core/sasl/mechanisms.ts). Not used by the
   * client leg yet, which offers PLAIN only until the SCRAM verifier is wired in (issue 12).
   */
  /** --client-sasl: a fixed list, or "auto" (mirror the server's SCRAM hashes; proxy/downstream/sasl-offer.ts). */
  clientSasl: ClientSaslMechanism[] | "auto";
  limits: Limits;
  /** Whitespace keepalive interval per leg; 0 = off. */
  keepaliveMs: number;
  /** Upstream connect + TLS + stream features deadline. */
  upstreamTimeoutMs: number;
  accountResourcePrefix: string;
  roomHistory: number;
  roomHistoryBytes: number;
  maxHeldPms: number;
  maxHeldPmBytes: number;
  maxRoomOutbox: number;
  maxRoomOutboxBytes: number;
  maxPendingIqs: number;
  /** The hub's queue while the account session connects (count and bytes, per account). */
  maxAccountOutbox: number;
  maxAccountOutboxBytes: number;
  /** 0 = never leave idle rooms. */
  roomIdleLeaveMs: number;
  /** The account's room presence while no session is in a room it did not leave. */
  awayPresence: AwayPresence;
  /** XEP-0402/0048: the account joins its autojoin bookmarks and follows them (docs/architecture.md §4.6). */
  bookmarks: BookmarksMode;
  /** When the account session logs in, and how long it stays after nothing needs it (docs/architecture.md §4.1). */
  accountSession: { start: AccountSessionStart; lingerMs: number };
  /** A session waiting on a room join gets an error after this long; 0 = waits. */
  joinTimeoutMs: number;
  /** XEP-0198 on the client leg (docs/architecture.md §8.4). */
  sm: SmConfig;
  /** XEP-0352 room traffic held per inactive session (docs/architecture.md §8.5). */
  csi: { maxHeld: number; maxHeldBytes: number };
  /** XEP-0357 push for sleeping devices (docs/architecture.md §8.6). */
  push: PushConfig;
  /** Admin HTTP server (/metrics, /status); absent = off. */
  metrics?: HostPort;
  /** --cluster-redis: this node is a cluster member (docs/architecture.md §8.7); absent = a single node. */
  cluster?: ClusterConfig;
  /** Absolute path of the config file that was read, if any. */
  configFile?: string;
  /** Subcommand from the command line (e.g. "check"), if any. */
  command?: string;
}

export interface ClusterConfig {
  /** Redis URL (may carry a password: never logged as is). */
  redisUrl: string;
  nodeId: string;
  advertise?: HostPort;
  /** --cluster-client-address: published for <see-other-host/> at a peer's SIGTERM (docs/architecture.md §8.7). */
  clientAddress?: { host: string; port?: number };
  leaseTtlMs: number;
  /** Absolute path of the shared secret; with `advertise`: node-to-node forwarding (docs/architecture.md §8.7). */
  secretFile?: string;
}

export interface PushConfig {
  rooms: PushRoomsMode;
  intervalMs: number;
  withBody: boolean;
  timeoutMs: number;
}

export interface SmConfig {
  /** Unacknowledged stanzas kept per session (count and bytes). */
  maxQueue: number;
  maxQueueBytes: number;
  /** How long a dropped session hibernates; 0 = resumption not offered. */
  resumeTimeoutMs: number;
  /** Ask for an ack once this many stanzas are unacknowledged. */
  ackEvery: number;
}

export const DEFAULTS = {
  listen: { host: "0.0.0.0", port: 5222 },
  listenTls: { host: "0.0.0.0", port: 5223 },
  upstreamPortStarttls: 5222,
  upstreamPortDirect: 5223,
  upstreamTls: "starttls",
  logLevel: "info",
  maxStanzaSize: 262_144,
  maxDepth: 64,
  authTimeout: 30,
  maxUnauthenticatedPerIp: 32,
  maxUnauthenticated: 1024,
  maxRoomsPerAccount: 100,
  slowClientTimeout: 60,
  maxBufferedBytes: 268_435_456,
  /** Without --proxy-protocol-from: only a load balancer on this host (HAProxy, nginx, sslh) may send headers. */
  proxyProtocolFrom: [{ address: "127.0.0.0", prefix: 8, family: "ipv4" }, { address: "::1", prefix: 128, family: "ipv6" }] as readonly Cidr[],
  keepalive: 60,
  upstreamTimeout: 10,
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
  roomIdleLeave: 7200,
  awayPresence: "xa",
  bookmarks: "follow",
  accountSessionStart: "login",
  accountSessionLinger: 300,
  joinTimeout: 30,
  smMaxQueue: 5000,
  smMaxQueueBytes: 4_194_304,
  smResumeTimeout: 300,
  smAckEvery: 5,
  csiMaxHeld: 256,
  csiMaxHeldBytes: 262_144,
  pushRooms: "mentions",
  pushInterval: 10,
  pushTimeout: 30,
  metrics: { host: "127.0.0.1", port: 5290 },
  clusterLeaseTtl: 10,
  wsPath: "/xmpp-websocket",
} as const;

/** The production location, used in docs and config.example.toml; never read implicitly. */
export const DEFAULT_CONFIG_PATH = "/etc/minimix-proxy/config.toml";

/** A config file is a few KiB; refuse absurd sizes instead of parsing them. */
const MAX_CONFIG_BYTES = 1024 * 1024;

type Env = Record<string, string | undefined>;

/**
 * argv (process.argv.slice(2)) + environment → validated Config. Throws ConfigError. Call parseArgs
 * first to handle --help/--version; given those, this throws ConfigError(key "argv").
 */
export function loadConfig(argv: string[], env: Env = process.env): Config {
  const args = parseArgs(argv);
  if (args.kind !== "run") {
    throw new ConfigError("argv", `config: --${args.kind} is not a configuration; handle it before loading the config`);
  }
  const home = homeDir(env);
  let file: PartialConfig = {};
  let configFile: string | undefined;
  if (args.configFile !== undefined) {
    configFile = resolve(expandHome(args.configFile, home));
    file = readConfigFile(configFile, env);
  }
  const flags = resolvePaths(args.flags, process.cwd(), home);
  const cfg = resolveConfig(file, flags, env);
  if (configFile !== undefined) cfg.configFile = configFile;
  if (args.command !== undefined) cfg.command = args.command;
  return cfg;
}

/** Reads and validates a TOML config file; relative paths in it become relative to its directory. */
export function readConfigFile(path: string, env: Env = process.env): PartialConfig {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : "error";
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : code;
    throw new ConfigError("config", `config: cannot read config file ${oneLine(path)}: ${why}`);
  }
  if (bytes.length > MAX_CONFIG_BYTES) throw new ConfigError("config", `config: ${oneLine(path)}: file too large (over ${MAX_CONFIG_BYTES} bytes)`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // TOML 1.0 §"Spec": a document is UTF-8
  } catch {
    throw new ConfigError("config", `config: ${oneLine(path)}: not valid UTF-8`);
  }
  const partial = parseConfigToml(text, path);
  return resolvePaths(partial, dirname(path), homeDir(env));
}

/**
 * Parses TOML text (already read) into validated settings. `fileName` only labels messages. Paths
 * are returned as written. Unknown keys, wrong types and syntax errors are ConfigErrors.
 */
export function parseConfigToml(text: string, fileName: string): PartialConfig {
  const where = oneLine(fileName);
  let doc: Record<string, unknown>;
  try {
    // integersAsBigInt: keeps 5 (integer) and 5.0 (float) apart so "expected integer, got float" works.
    doc = parseToml(text, { integersAsBigInt: true, unsafeKeyBehaviour: "throw" });
  } catch (err) {
    if (err instanceof TomlError) {
      const msg = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document:\s*/, "");
      throw new ConfigError("config", `config: ${where}:${err.line}:${err.column}: invalid TOML: ${msg}`);
    }
    throw new ConfigError("config", `config: ${where}: invalid TOML`);
  }

  const source: Source = { kind: "file", path: where };
  const keys = OPTIONS.filter((o) => !o.cliOnly);
  const raw = new Map<string, RawValue>();
  for (const [key, value] of Object.entries(doc)) {
    const spec = keys.find((o) => o.name === key);
    if (spec === undefined) {
      const hint = suggest(key, keys.map((o) => o.name));
      const extra = key === "config" ? " (--config only exists on the command line)" : hint ? ` (did you mean "${hint}"?)` : "";
      throw new ConfigError(key, `config: unknown key ${quote(key)} in ${where}${extra}`);
    }
    switch (spec.type) {
      case "strings":
        if (typeof value === "string") raw.set(key, { type: "strings", values: [value] });
        else if (Array.isArray(value)) {
          const values: string[] = [];
          for (const v of value) {
            if (typeof v !== "string") throw fail(source, key, `expected array of strings, got array containing ${tomlType(v)}`);
            values.push(v);
          }
          raw.set(key, { type: "strings", values });
        } else throw fail(source, key, `expected string or array of strings, got ${tomlType(value)}`);
        break;
      case "string":
        if (typeof value !== "string") throw fail(source, key, `expected string, got ${tomlType(value)}`);
        raw.set(key, { type: "strings", values: [value] });
        break;
      case "integer":
        if (typeof value !== "bigint") throw fail(source, key, `expected integer, got ${tomlType(value)}`);
        raw.set(key, { type: "integer", value });
        break;
      case "boolean":
        if (typeof value !== "boolean") throw fail(source, key, `expected boolean, got ${tomlType(value)}`);
        raw.set(key, { type: "boolean", value });
        break;
    }
  }
  return toPartial(raw, source);
}

function tomlType(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "bigint") return "integer";
  if (typeof v === "number") return "float";
  if (typeof v === "boolean") return "boolean";
  if (Array.isArray(v)) return "array";
  if (v instanceof TomlDate || v instanceof Date) return "datetime";
  return "table";
}

function homeDir(env: Env): string {
  const h = env["HOME"];
  return h !== undefined && isAbsolute(h) ? h : homedir();
}

function expandHome(p: string, home: string): string {
  return p === "~" ? home : p.startsWith("~/") ? join(home, p.slice(2)) : p;
}

/** Makes every path setting absolute: "~/" → home, relative → against `base`. */
export function resolvePaths(p: PartialConfig, base: string, home: string): PartialConfig {
  const abs = (x: string): string => resolve(base, expandHome(x, home));
  const out: PartialConfig = { ...p };
  if (p.certs) out.certs = p.certs.map((c) => ({ certFile: abs(c.certFile), keyFile: abs(c.keyFile) }));
  if (p.upstreamCa !== undefined) out.upstreamCa = abs(p.upstreamCa);
  if (p.stateDir !== undefined) out.stateDir = abs(p.stateDir);
  if (p.clusterSecretFile !== undefined) out.clusterSecretFile = abs(p.clusterSecretFile);
  return out;
}

/** XDG Base Directory spec: $XDG_STATE_HOME if set and absolute, else ~/.local/state. */
export function defaultStateDir(env: Env = process.env): string {
  const xdg = env["XDG_STATE_HOME"];
  const base = xdg !== undefined && xdg !== "" && isAbsolute(xdg) ? xdg : join(homeDir(env), ".local", "state");
  return join(base, "minimix-proxy");
}

/**
 * Merges (flags over file over defaults) and applies the cross-key rules. Paths must already be
 * absolute (resolvePaths); a still-relative one is resolved against the working directory.
 */
export function resolveConfig(file: PartialConfig, flags: PartialConfig, env: Env = process.env): Config {
  const m: PartialConfig = { ...file };
  for (const [k, v] of Object.entries(flags)) {
    if (v !== undefined) Object.assign(m, { [k]: v });
  }

  const domains = m.domains ?? [];
  if (domains.length === 0) {
    throw new ConfigError("domain", `config: domain: required; give --domain NAME or domain = "NAME" in the config file`);
  }

  // Defaults only when no listener was configured at all: a user who asked for just a direct-TLS
  // listener must not get a surprise STARTTLS one. An explicit empty list counts as configured.
  let listen: HostPort[];
  let listenTls: HostPort[];
  if (m.listen === undefined && m.listenTls === undefined && m.listenWs === undefined && m.listenWsPlain === undefined) {
    listen = [{ ...DEFAULTS.listen }];
    listenTls = [{ ...DEFAULTS.listenTls }];
  } else {
    listen = m.listen ?? [];
    listenTls = m.listenTls ?? [];
  }
  const listenWs = m.listenWs ?? [];
  const listenWsPlain = m.listenWsPlain ?? [];
  if (listen.length + listenTls.length + listenWs.length + listenWsPlain.length === 0) {
    throw new ConfigError("listen", "config: listen: no listener configured (listen and listen-tls are both empty)");
  }
  const seen = new Map<string, string>();
  for (const [name, list] of [["listen", listen], ["listen-tls", listenTls], ["listen-ws", listenWs], ["listen-ws-plain", listenWsPlain]] as const) {
    for (const hp of list) {
      if (hp.port === 0) continue; // each port-0 listener gets its own port
      const id = `${hp.host.toLowerCase()}|${hp.port}`;
      const label = hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
      const prev = seen.get(id);
      if (prev !== undefined) throw new ConfigError(name, `config: ${name}: ${label} is already used by ${prev}`);
      seen.set(id, name);
    }
  }

  const upstreamTls = m.upstreamTls ?? DEFAULTS.upstreamTls;
  const firstDomain = domains[0] ?? "";
  const upstream: HostPort = m.upstream ?? {
    // A domain may be an IPv6 literal in brackets (RFC 7622 §3.2); a HostPort host has none.
    host: firstDomain.startsWith("[") ? firstDomain.slice(1, -1) : firstDomain,
    port: upstreamTls === "direct" ? DEFAULTS.upstreamPortDirect : DEFAULTS.upstreamPortStarttls,
  };

  if (upstreamTls === "none" && !isLoopback(upstream.host)) {
    throw new ConfigError("upstream-tls", `config: upstream-tls none sends the upstream login in the clear, so it is only allowed to a loopback address (127.0.0.0/8, ::1, localhost), not ${upstream.host}; use starttls or direct`);
  }

  if (m.proxyProtocol === true && m.proxyProtocolFrom !== undefined && m.proxyProtocolFrom.length === 0) {
    throw new ConfigError("proxy-protocol-from", "config: proxy-protocol-from: empty, so every connection would be refused; list the load balancers' addresses, or leave it out for loopback only");
  }

  const cfg: Config = {
    listen,
    listenTls,
    domains,
    certs: (m.certs ?? []).map((c) => ({ certFile: resolve(c.certFile), keyFile: resolve(c.keyFile) })),
    upstream,
    upstreamTls,
    upstreamInsecure: m.upstreamInsecure ?? false,
    proxyProtocol: m.proxyProtocol ?? false,
    proxyProtocolFrom: m.proxyProtocolFrom ?? DEFAULTS.proxyProtocolFrom.map((c) => ({ ...c })),
    logLevel: m.logLevel ?? DEFAULTS.logLevel,
    stateDir: resolve(m.stateDir ?? defaultStateDir(env)),
    clientSasl: m.clientSasl ?? "auto",
    limits: {
      maxStanzaSize: m.maxStanzaSize ?? DEFAULTS.maxStanzaSize,
      maxDepth: m.maxDepth ?? DEFAULTS.maxDepth,
      authTimeoutMs: (m.authTimeout ?? DEFAULTS.authTimeout) * 1000,
      maxUnauthenticatedPerIp: m.maxUnauthenticatedPerIp ?? DEFAULTS.maxUnauthenticatedPerIp,
      maxUnauthenticated: m.maxUnauthenticated ?? DEFAULTS.maxUnauthenticated,
      maxRoomsPerAccount: m.maxRoomsPerAccount ?? DEFAULTS.maxRoomsPerAccount,
      slowClientTimeoutMs: (m.slowClientTimeout ?? DEFAULTS.slowClientTimeout) * 1000,
      maxBufferedBytes: m.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
    },
    keepaliveMs: (m.keepalive ?? DEFAULTS.keepalive) * 1000,
    upstreamTimeoutMs: (m.upstreamTimeout ?? DEFAULTS.upstreamTimeout) * 1000,
    accountResourcePrefix: m.accountResourcePrefix ?? DEFAULTS.accountResourcePrefix,
    roomHistory: m.roomHistory ?? DEFAULTS.roomHistory,
    roomHistoryBytes: m.roomHistoryBytes ?? DEFAULTS.roomHistoryBytes,
    maxHeldPms: m.maxHeldPms ?? DEFAULTS.maxHeldPms,
    maxHeldPmBytes: m.maxHeldPmBytes ?? DEFAULTS.maxHeldPmBytes,
    maxRoomOutbox: m.maxRoomOutbox ?? DEFAULTS.maxRoomOutbox,
    maxRoomOutboxBytes: m.maxRoomOutboxBytes ?? DEFAULTS.maxRoomOutboxBytes,
    maxPendingIqs: m.maxPendingIqs ?? DEFAULTS.maxPendingIqs,
    maxAccountOutbox: m.maxAccountOutbox ?? DEFAULTS.maxAccountOutbox,
    maxAccountOutboxBytes: m.maxAccountOutboxBytes ?? DEFAULTS.maxAccountOutboxBytes,
    roomIdleLeaveMs: (m.roomIdleLeave ?? DEFAULTS.roomIdleLeave) * 1000,
    awayPresence: m.awayPresence ?? DEFAULTS.awayPresence,
    bookmarks: m.bookmarks ?? DEFAULTS.bookmarks,
    accountSession: { start: m.accountSessionStart ?? DEFAULTS.accountSessionStart, lingerMs: (m.accountSessionLinger ?? DEFAULTS.accountSessionLinger) * 1000 },
    joinTimeoutMs: (m.joinTimeout ?? DEFAULTS.joinTimeout) * 1000,
    sm: {
      maxQueue: m.smMaxQueue ?? DEFAULTS.smMaxQueue,
      maxQueueBytes: m.smMaxQueueBytes ?? DEFAULTS.smMaxQueueBytes,
      resumeTimeoutMs: (m.smResumeTimeout ?? DEFAULTS.smResumeTimeout) * 1000,
      ackEvery: m.smAckEvery ?? DEFAULTS.smAckEvery,
    },
    csi: { maxHeld: m.csiMaxHeld ?? DEFAULTS.csiMaxHeld, maxHeldBytes: m.csiMaxHeldBytes ?? DEFAULTS.csiMaxHeldBytes },
    push: {
      rooms: m.pushRooms ?? DEFAULTS.pushRooms,
      intervalMs: (m.pushInterval ?? DEFAULTS.pushInterval) * 1000,
      withBody: m.pushBody ?? false,
      timeoutMs: (m.pushTimeout ?? DEFAULTS.pushTimeout) * 1000,
    },
  };
  if (m.upstreamCa !== undefined) cfg.upstreamCa = resolve(m.upstreamCa);
  if (listenWs.length + listenWsPlain.length > 0) cfg.websocket = { listen: listenWs, listenPlain: listenWsPlain, path: m.wsPath ?? DEFAULTS.wsPath };
  if (m.metrics !== null) cfg.metrics = m.metrics ?? { ...DEFAULTS.metrics };
  if (m.clusterRedis !== undefined) {
    const first = listen[0] ?? listenTls[0] ?? listenWs[0] ?? listenWsPlain[0];
    cfg.cluster = {
      redisUrl: m.clusterRedis,
      nodeId: m.nodeId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 50)}-${first?.port || process.pid}`,
      leaseTtlMs: (m.clusterLeaseTtl ?? DEFAULTS.clusterLeaseTtl) * 1000,
      ...(m.clusterAdvertise ? { advertise: m.clusterAdvertise } : {}),
      ...(m.clusterClientAddress ? { clientAddress: m.clusterClientAddress } : {}),
      ...(m.clusterSecretFile !== undefined ? { secretFile: resolve(m.clusterSecretFile) } : {}),
    };
  } else {
    for (const [key, v] of [["node-id", m.nodeId], ["cluster-advertise", m.clusterAdvertise], ["cluster-client-address", m.clusterClientAddress], ["cluster-lease-ttl", m.clusterLeaseTtl], ["cluster-secret-file", m.clusterSecretFile]] as const) {
      if (v !== undefined) throw new ConfigError(key, `config: ${key}: only meaningful with cluster-redis (a cluster member)`);
    }
  }
  return cfg;
}
