/**
 * Command line of minimix-proxy — an exact, documented contract:
 *
 *   minimix-proxy [COMMAND] [--config FILE] [flags]
 *
 * Every flag except --config/--help/--version is also a key of the TOML config file, under the same
 * name without "--"; a flag on the command line overrides the file's key (a repeatable flag replaces
 * the file's whole list, it does not append). This module parses argv into typed, per-key-validated
 * settings; merging, defaults and cross-key checks are in config.ts. It is shared by config.ts (which
 * re-exports ConfigError and the types), so it must not import config.ts.
 *
 * Syntax: `--flag VALUE` or `--flag=VALUE`; booleans as `--flag` or `--flag=true|false` (so a command
 * line can switch off what the file switched on). A value may not start with "--" unless given with
 * "=", which catches a forgotten value (`--listen --domain x`). `-h` is an alias of `--help`.
 */
import { isIPv4, isIPv6 } from "node:net";
import { parseArgs as tokenize, type ParseArgsConfig } from "node:util";
import { parseJid } from "../core/jid.js";
import { CLIENT_SASL_MECHANISMS, type ClientSaslMechanism } from "../core/sasl/mechanisms.js";

/** Thrown for every configuration problem. `message` is ONE line naming the key and the problem. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "CONFIG_INVALID" as const;
  /** The offending key without "--" (e.g. "listen"), the unknown name, "config" (the file) or "argv". */
  readonly key: string;
  constructor(key: string, message: string) {
    super(oneLine(message));
    this.key = key;
  }
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
/** "none": plain TCP, only to a loopback address (the proxy beside the server: docs/architecture.md §3.6). */
export type UpstreamTls = "starttls" | "direct" | "none";
export const UPSTREAM_TLS_MODES: readonly UpstreamTls[] = ["starttls", "direct", "none"];
import { PUSH_ROOMS_MODES, type PushRoomsMode } from "../core/push/trigger.js";
export type { PushRoomsMode };

export type AwayPresence = "xa" | "away" | "keep";
export const AWAY_PRESENCES: readonly AwayPresence[] = ["xa", "away", "keep"];
export type BookmarksMode = "follow" | "ignore";
export const BOOKMARKS_MODES: readonly BookmarksMode[] = ["follow", "ignore"];
/** When the account session logs in (docs/architecture.md §4.1). */
export type AccountSessionStart = "login" | "join";
export const ACCOUNT_SESSION_STARTS: readonly AccountSessionStart[] = ["login", "join"];

export interface HostPort {
  /** Without IPv6 brackets: "::1", "0.0.0.0", "xmpp.example.com". */
  host: string;
  port: number;
}

/** An address block: "10.0.0.0/8", "2001:db8::/32"; a plain address is a /32 or /128. */
export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

export interface CertPair {
  certFile: string;
  keyFile: string;
}

/**
 * Settings from one source (command line or file), each validated on its own. Durations are still in
 * seconds here; paths are as written (config.ts resolves them against the right base directory).
 */
export interface PartialConfig {
  listen?: HostPort[];
  listenTls?: HostPort[];
  /** XMPP over WebSocket (RFC 7395) with TLS (wss), and plain (loopback only, behind a TLS-terminating proxy). */
  listenWs?: HostPort[];
  listenWsPlain?: HostPort[];
  wsPath?: string;
  domains?: string[];
  certs?: CertPair[];
  upstream?: HostPort;
  upstreamTls?: UpstreamTls;
  upstreamCa?: string;
  upstreamInsecure?: boolean;
  proxyProtocol?: boolean;
  /** Sources allowed to send a PROXY protocol header (the load balancers). */
  proxyProtocolFrom?: Cidr[];
  logLevel?: LogLevel;
  stateDir?: string;
  /** SASL mechanisms to offer clients, strongest first (not used by the client leg yet: issue 12). */
  clientSasl?: ClientSaslMechanism[] | "auto";
  /** Admin HTTP server (/metrics, /status); null = off. */
  metrics?: HostPort | null;
  maxStanzaSize?: number;
  maxDepth?: number;
  authTimeout?: number;
  maxRoomsPerAccount?: number;
  slowClientTimeout?: number;
  maxBufferedBytes?: number;
  maxUnauthenticatedPerIp?: number;
  maxUnauthenticated?: number;
  keepalive?: number;
  upstreamTimeout?: number;
  accountResourcePrefix?: string;
  roomHistory?: number;
  roomHistoryBytes?: number;
  maxHeldPms?: number;
  maxHeldPmBytes?: number;
  maxRoomOutbox?: number;
  maxRoomOutboxBytes?: number;
  maxPendingIqs?: number;
  maxAccountOutbox?: number;
  maxAccountOutboxBytes?: number;
  roomIdleLeave?: number;
  awayPresence?: AwayPresence;
  bookmarks?: BookmarksMode;
  accountSessionStart?: AccountSessionStart;
  accountSessionLinger?: number;
  joinTimeout?: number;
  /** XEP-0198 on the client leg (docs/architecture.md §8.4). */
  smMaxQueue?: number;
  smMaxQueueBytes?: number;
  smResumeTimeout?: number;
  smAckEvery?: number;
  csiMaxHeld?: number;
  csiMaxHeldBytes?: number;
  /** XEP-0357 push for sleeping devices (docs/architecture.md §8.6). */
  pushRooms?: PushRoomsMode;
  pushInterval?: number;
  pushBody?: boolean;
  pushTimeout?: number;
  /** Cluster over Redis (docs/architecture.md §8.7). */
  clusterRedis?: string;
  nodeId?: string;
  clusterAdvertise?: HostPort;
  /** Where clients reach this node directly; no port: the node's own --listen port (docs/architecture.md §8.7). */
  clusterClientAddress?: { host: string; port?: number };
  clusterLeaseTtl?: number;
  clusterSecretFile?: string;
}

export type ParsedArgs =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; configFile?: string; flags: PartialConfig; command?: string };

/** How a value is spelled in TOML (and hence which argv syntax it takes). */
export type OptionType = "strings" | "string" | "integer" | "boolean";

export interface OptionSpec {
  /** Flag name without "--"; also the TOML key unless cliOnly. */
  name: string;
  type: OptionType;
  /** Placeholder in --help; absent for booleans. */
  metavar?: string;
  /** Inclusive bounds for integers. */
  min?: number;
  max?: number;
  help: string;
  /** The default as shown in --help and config.example.toml. */
  default: string;
  cliOnly?: boolean;
}

/**
 * The single source of truth for flags, TOML keys, integer bounds and --help. "strings" options are
 * repeatable on the command line and a string or an array of strings in TOML.
 */
export const OPTIONS: readonly OptionSpec[] = [
  { name: "config", type: "string", metavar: "FILE", cliOnly: true, default: "none (flags only)", help: "TOML config file; keys are the flag names without \"--\"" },
  { name: "listen", type: "strings", metavar: "HOST:PORT", default: "0.0.0.0:5222 if no --listen/--listen-tls at all", help: "client listener with STARTTLS (repeatable; IPv6: [::]:5222)" },
  { name: "listen-tls", type: "strings", metavar: "HOST:PORT", default: "0.0.0.0:5223 if no --listen/--listen-tls at all", help: "client listener with direct TLS, XEP-0368 (repeatable)" },
  { name: "listen-ws", type: "strings", metavar: "HOST:PORT", default: "none", help: "XMPP over WebSocket listener with TLS, wss:// (RFC 7395; repeatable)" },
  { name: "listen-ws-plain", type: "strings", metavar: "HOST:PORT", default: "none", help: "XMPP over WebSocket without TLS, loopback only: behind a TLS-terminating reverse proxy (repeatable)" },
  { name: "ws-path", type: "string", metavar: "PATH", default: "/xmpp-websocket", help: "HTTP path of the WebSocket listeners" },
  { name: "domain", type: "strings", metavar: "NAME", default: "none, required", help: "XMPP domain served (repeatable)" },
  { name: "cert", type: "strings", metavar: "FILE", default: "none: a self-signed certificate in --state-dir", help: "PEM certificate chain (repeatable, paired with --key by order)" },
  { name: "key", type: "strings", metavar: "FILE", default: "none", help: "PEM private key of the --cert at the same position" },
  { name: "upstream", type: "string", metavar: "HOST:PORT", default: "FIRST-DOMAIN:5222 (FIRST-DOMAIN:5223 with --upstream-tls direct)", help: "the real XMPP server" },
  { name: "upstream-tls", type: "string", metavar: "starttls|direct|none", default: "starttls", help: "how to secure the upstream connection (none: plain TCP, only to a loopback address)" },
  { name: "upstream-ca", type: "string", metavar: "FILE", default: "the system CA store", help: "PEM CA bundle trusted for the upstream certificate" },
  { name: "upstream-insecure", type: "boolean", default: "false", help: "do not verify the upstream certificate (testing only)" },
  { name: "proxy-protocol", type: "boolean", default: "false", help: "expect a PROXY protocol v1/v2 header (HAProxy, nginx, sslh) on every listener" },
  { name: "proxy-protocol-from", type: "strings", metavar: "CIDR", default: "127.0.0.0/8 and ::1 (loopback only)", help: "with --proxy-protocol: the load balancers allowed to connect, as an address or CIDR, IPv4 or IPv6 (repeatable); any other source is closed before TLS" },
  { name: "log-level", type: "string", metavar: "LEVEL", default: "info", help: LOG_LEVELS.join("|") },
  { name: "state-dir", type: "string", metavar: "DIR", default: "$XDG_STATE_HOME/minimix-proxy or ~/.local/state/minimix-proxy", help: "persistent state: the dev certificate, the clients' SCRAM credential records (DIR/credentials)" },
  { name: "client-sasl", type: "strings", metavar: "MECH", default: "auto", help: "SASL mechanisms to offer clients (repeatable or comma-separated), or auto: the SCRAM hashes the server offers, each also as -PLUS, and PLAIN" },
  { name: "metrics", type: "string", metavar: "HOST:PORT", default: "127.0.0.1:5290", help: "HTTP server for /metrics (Prometheus) and /status (loopback only); \"off\" disables" },
  { name: "max-stanza-size", type: "integer", metavar: "BYTES", min: 1024, max: 67_108_864, default: "262144", help: "largest stanza accepted from a client (the upstream may send 16x: MAM pages, avatars)" },
  { name: "max-depth", type: "integer", metavar: "N", min: 4, max: 1024, default: "64", help: "deepest XML element nesting accepted" },
  { name: "auth-timeout", type: "integer", metavar: "SECONDS", min: 1, max: 3600, default: "30", help: "time a client has from connect to authenticated session" },
  { name: "max-unauthenticated-per-ip", type: "integer", metavar: "N", min: 1, max: 1_000_000, default: "32", help: "connections not yet authenticated allowed from one IP address" },
  { name: "max-unauthenticated", type: "integer", metavar: "N", min: 1, max: 10_000_000, default: "1024", help: "connections not yet authenticated allowed in total" },
  { name: "slow-client-timeout", type: "integer", metavar: "SECONDS", min: 1, max: 3600, default: "60", help: "cut a client that has not read its pending data for this long" },
  { name: "max-buffered-bytes", type: "integer", metavar: "BYTES", min: 1_048_576, max: 1_099_511_627_776, default: "268435456 (256 MiB)", help: "unread output held for all clients together; beyond it the clients holding the most are cut (resource-constraint)" },
  { name: "max-rooms-per-account", type: "integer", metavar: "N", min: 1, max: 100_000, default: "100", help: "rooms one account may be joined to through the proxy" },
  { name: "keepalive", type: "integer", metavar: "SECONDS", min: 0, max: 3600, default: "60", help: "whitespace keepalive interval per leg (0 = off)" },
  { name: "upstream-timeout", type: "integer", metavar: "SECONDS", min: 1, max: 600, default: "10", help: "upstream connect + TLS + stream features deadline" },
  { name: "account-resource-prefix", type: "string", metavar: "STR", default: "minimix-", help: "prefix of the resource the proxy binds upstream per account" },
  { name: "room-history", type: "integer", metavar: "N", min: 0, max: 100_000, default: "200", help: "messages kept per room for late-joining sessions" },
  { name: "room-history-bytes", type: "integer", metavar: "BYTES", min: 0, max: 1_073_741_824, default: "1048576 (1 MiB)", help: "bytes of XML kept per room's history buffer; the oldest messages go first" },
  { name: "max-held-pms", type: "integer", metavar: "N", min: 0, max: 100_000, default: "100", help: "private messages held per account while none of its sessions is in the room; beyond it the sender gets resource-constraint" },
  { name: "max-held-pm-bytes", type: "integer", metavar: "BYTES", min: 0, max: 1_073_741_824, default: "262144 (256 KiB)", help: "bytes of those held private messages per account" },
  { name: "max-room-outbox", type: "integer", metavar: "N", min: 1, max: 100_000, default: "1000", help: "stanzas sessions may queue for a room while the account is being put back into it; beyond it they get resource-constraint" },
  { name: "max-room-outbox-bytes", type: "integer", metavar: "BYTES", min: 1024, max: 1_073_741_824, default: "1048576 (1 MiB)", help: "bytes of that queue per room" },
  { name: "max-account-outbox", type: "integer", metavar: "N", min: 1, max: 100_000, default: "1000", help: "stanzas (mostly room joins) held per account while its account session connects or reconnects; beyond it the session gets resource-constraint" },
  { name: "max-account-outbox-bytes", type: "integer", metavar: "BYTES", min: 1024, max: 1_073_741_824, default: "1048576 (1 MiB)", help: "bytes of that queue per account" },
  { name: "max-pending-iqs", type: "integer", metavar: "N", min: 1, max: 100_000, default: "1000", help: "IQs per account carried through the account session awaiting a reply; beyond it resource-constraint" },
  { name: "room-idle-leave", type: "integer", metavar: "SECONDS", min: 0, max: 31_536_000, default: "7200", help: "leave a room after it has been idle this long (0 = never)" },
  { name: "away-presence", type: "string", metavar: "xa|away|keep", default: "xa", help: "the account's room presence while no session is in the room (keep = the last one)" },
  { name: "bookmarks", type: "string", metavar: "follow|ignore", default: "follow", help: "the account joins its autojoin bookmarks (XEP-0402/0048) and follows their changes" },
  { name: "account-session-start", type: "string", metavar: "login|join", default: "login", help: "the account session logs in when a client of the account logs in (a first join then costs no login), or only at the account's first room join" },
  { name: "account-session-linger", type: "integer", metavar: "SECONDS", min: 0, max: 86_400, default: "300", help: "with --account-session-start login: the account session stays logged in this long after its last client session and room are gone (0 = closes at once)" },
  { name: "join-timeout", type: "integer", metavar: "SECONDS", min: 0, max: 3600, default: "30", help: "a client's room join the account could not complete (or rejoin, after an upstream loss) is answered with an error after this long (0 = wait)" },
  { name: "sm-max-queue", type: "integer", metavar: "N", min: 1, max: 1_000_000, default: "5000", help: "XEP-0198: stanzas sent to a client and not acknowledged yet, kept per session; beyond it a connected session ends with resource-constraint, a hibernating one expires" },
  { name: "sm-max-queue-bytes", type: "integer", metavar: "BYTES", min: 1024, max: 1_073_741_824, default: "4194304 (4 MiB)", help: "XEP-0198: bytes of those unacknowledged stanzas per session" },
  { name: "sm-resume-timeout", type: "integer", metavar: "SECONDS", min: 0, max: 86_400, default: "300", help: "XEP-0198: how long a dropped session waits for its client to resume (a smaller 'max' from the client is honoured); 0 = no resumption offered" },
  { name: "csi-max-held", type: "integer", metavar: "N", min: 0, max: 100_000, default: "256", help: "XEP-0352: room stanzas held per inactive session (latest presence per occupant, latest chat state per sender); one more flushes them all; 0 = room traffic is never held" },
  { name: "csi-max-held-bytes", type: "integer", metavar: "BYTES", min: 0, max: 1_073_741_824, default: "262144 (256 KiB)", help: "XEP-0352: bytes of those held room stanzas per inactive session" },
  { name: "sm-ack-every", type: "integer", metavar: "N", min: 1, max: 100_000, default: "5", help: "XEP-0198: ask the client for an ack (<r/>) once this many stanzas are unacknowledged (or after 5 s)" },
  { name: "push-rooms", type: "string", metavar: "mentions|all|off", default: "mentions", help: "XEP-0357: which groupchat messages wake a sleeping device that registered push (room PMs and 1:1 messages always do)" },
  { name: "push-interval", type: "integer", metavar: "SECONDS", min: 0, max: 3600, default: "10", help: "XEP-0357: at most one publish per device per interval; what comes meanwhile is counted into the next (0 = no coalescing)" },
  { name: "push-body", type: "boolean", default: "false", help: "XEP-0357: put the message body in the push summary (it then reaches the app server and its push service)" },
  { name: "push-timeout", type: "integer", metavar: "SECONDS", min: 1, max: 600, default: "30", help: "XEP-0357: a publish the app server has not answered by then is given up (counted as a passing error)" },
  { name: "cluster-redis", type: "string", metavar: "URL", default: "none (a single node)", help: "join a cluster coordinated by this Redis (redis://[user:pass@]host:port[/db], rediss:// for TLS): one account session per account across the nodes" },
  { name: "node-id", type: "string", metavar: "ID", default: "the host name and --listen port", help: "this node's name in the cluster (unique per node; letters, digits, . _ -)" },
  { name: "cluster-advertise", type: "string", metavar: "HOST:PORT", default: "none", help: "where the other nodes reach this one (node-to-node traffic)" },
  { name: "cluster-client-address", type: "string", metavar: "HOST[:PORT]", default: "none (clients get <system-shutdown/> at SIGTERM)", help: "where clients reach this node directly (PORT: its STARTTLS port, default the first --listen; direct-TLS clients get its first --listen-tls port; WebSocket clients wss://HOST:PORT/PATH of its first --listen-ws and --ws-path): published to the cluster, so that a stopping node sends its clients here with <see-other-host/> (WebSocket: RFC 7395 see-other-uri)" },
  { name: "cluster-secret-file", type: "string", metavar: "FILE", default: "none (no node-to-node forwarding)", help: "shared secret of the cluster's nodes (at least 32 bytes): authenticates node-to-node connections; with --cluster-advertise, sessions on a node that does not own their account are forwarded to the owner" },
  { name: "cluster-lease-ttl", type: "integer", metavar: "SECONDS", min: 2, max: 300, default: "10", help: "an account lease's lifetime in Redis: how long a dead node's accounts wait before another node takes them" },
  { name: "help", type: "boolean", cliOnly: true, default: "", help: "print this help and exit" },
  { name: "version", type: "boolean", cliOnly: true, default: "", help: "print the version and exit" },
];

const BY_NAME = new Map(OPTIONS.map((o) => [o.name, o]));

export function optionSpec(name: string): OptionSpec | undefined {
  return BY_NAME.get(name);
}

// ---------------------------------------------------------------------------------------------------
// Error-message helpers (shared with config.ts)

/** Collapses anything that could break the one-line contract (newlines, other controls, U+2028/9). */
export function oneLine(s: string): string {
  return s.replace(/[\p{Cc}\u2028\u2029]+/gu, " ");
}

/** A value for an error message: JSON-quoted (escapes controls), truncated. */
export function quote(v: string): string {
  const short = v.length > 80 ? `${v.slice(0, 80)}…` : v;
  return JSON.stringify(short).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Where a value came from, for messages: `--listen` vs `listen … in FILE`. */
export type Source = { kind: "cli" } | { kind: "file"; path: string };

export function fail(source: Source, name: string, problem: string): ConfigError {
  const label = source.kind === "cli" ? `--${name}` : name;
  const suffix = source.kind === "file" ? ` in ${source.path}` : "";
  return new ConfigError(name, `config: ${label}: ${problem}${suffix}`);
}

/** "did you mean" for typos: same name with "_"→"-", or edit distance ≤ 2. */
export function suggest(name: string, candidates: readonly string[]): string | undefined {
  const dashed = name.toLowerCase().replace(/_/g, "-");
  if (candidates.includes(dashed)) return dashed;
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(dashed, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 3;
}

function times(n: number): string {
  return n === 1 ? "1 time" : `${n} times`;
}

// ---------------------------------------------------------------------------------------------------
// Value parsers (shared with config.ts)

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/**
 * HOST:PORT, with IPv6 literals in brackets ("[::1]:5222", RFC 3986 §3.2.2 style). A bare IPv6
 * address ("::1:5222") is rejected: it is ambiguous. `allowPortZero` for listeners (OS picks a port).
 */
export function parseHostPort(v: string, allowPortZero: boolean): HostPort | string {
  const expected = `expected HOST:PORT, got ${quote(v)}`;
  let host: string;
  let portStr: string;
  if (v.startsWith("[")) {
    const close = v.indexOf("]");
    if (close === -1 || v[close + 1] !== ":") return expected;
    host = v.slice(1, close);
    portStr = v.slice(close + 2);
    if (!isIPv6(host)) return `expected an IPv6 address in [...], got ${quote(v)}`;
  } else {
    const colon = v.lastIndexOf(":");
    if (colon <= 0) return expected;
    host = v.slice(0, colon);
    portStr = v.slice(colon + 1);
    if (host.includes(":")) return `IPv6 addresses need brackets, e.g. [::1]:5222, got ${quote(v)}`;
    if (!isIPv4(host) && !HOSTNAME.test(host)) return `invalid host in ${quote(v)}`;
  }
  if (!/^[0-9]{1,5}$/.test(portStr)) return expected;
  const port = Number(portStr);
  const min = allowPortZero ? 0 : 1;
  if (port < min || port > 65535) return `port must be ${min}-65535, got ${quote(v)}`;
  return { host, port };
}

/** HOST or HOST:PORT (an IPv6 literal in brackets either way: "[2001:db8::1]", "[2001:db8::1]:5222"). */
export function parseHostOptionalPort(v: string): { host: string; port?: number } | string {
  const bracketed = /^\[([^\]]*)\]$/.exec(v);
  if (bracketed) return isIPv6(bracketed[1] ?? "") ? { host: bracketed[1]! } : `expected an IPv6 address in [...], got ${quote(v)}`;
  if (!v.includes(":")) return isIPv4(v) || HOSTNAME.test(v) ? { host: v } : `invalid host ${quote(v)}`;
  const hp = parseHostPort(v, false);
  return typeof hp === "string" ? hp.replace("expected HOST:PORT", "expected HOST or HOST:PORT") : hp;
}

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x) and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^::ffff:/, "");
  return h === "localhost" || h === "::1" || (isIPv4(h) && h.startsWith("127."));
}

/** "ADDRESS" or "ADDRESS/PREFIX", IPv4 or IPv6 (no brackets, no zone id). */
export function parseCidr(v: string): Cidr | string {
  const slash = v.indexOf("/");
  const address = slash < 0 ? v : v.slice(0, slash);
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) && !address.includes("%") ? "ipv6" : undefined;
  if (family === undefined) return `expected an IP address or CIDR (10.0.0.0/8, 2001:db8::/32), got ${quote(v)}`;
  const max = family === "ipv4" ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const p = v.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return `prefix length must be 0-${max}, got ${quote(v)}`;
  return { address, prefix: Number(p), family };
}

/** Back to the written form: "10.0.0.0/8", "::1" for a single address. */
export function formatCidr(c: Cidr): string {
  return c.prefix === (c.family === "ipv4" ? 32 : 128) ? c.address : `${c.address}/${c.prefix}`;
}

/** A served XMPP domain, normalised like a JID domainpart (lowercase, no trailing dot). */
export function parseDomain(v: string): string | { error: string } {
  const j = parseJid(v);
  if (j === null || j.local !== undefined || j.resource !== undefined) return { error: `expected a domain name, got ${quote(v)}` };
  return j.domain;
}

// ---------------------------------------------------------------------------------------------------
// Raw values → PartialConfig (shared by argv and TOML)

/** A source's values after syntax/type checks, keyed by option name. */
export type RawValue = { type: "strings"; values: string[] } | { type: "integer"; value: bigint } | { type: "boolean"; value: boolean };

/**
 * Converts and validates each value on its own; cross-key rules (required domain, listener defaults,
 * duplicates) are config.ts's. cert/key pairing is checked here since both come from one source.
 */
export function toPartial(raw: Map<string, RawValue>, source: Source): PartialConfig {
  const p: PartialConfig = {};
  const list = (name: string): string[] | undefined => {
    const r = raw.get(name);
    return r?.type === "strings" ? r.values : undefined;
  };
  const one = (name: string): string | undefined => list(name)?.[0];
  const int = (name: string): number | undefined => {
    const r = raw.get(name);
    if (r?.type !== "integer") return undefined;
    const spec = BY_NAME.get(name);
    const min = spec?.min ?? 0;
    const max = spec?.max ?? Number.MAX_SAFE_INTEGER;
    if (r.value < BigInt(min) || r.value > BigInt(max)) {
      throw fail(source, name, `expected integer between ${min} and ${max}, got ${r.value}`);
    }
    return Number(r.value);
  };
  const hostPorts = (name: string, allowZero: boolean): HostPort[] | undefined =>
    list(name)?.map((v) => {
      const hp = parseHostPort(v, allowZero);
      if (typeof hp === "string") throw fail(source, name, hp);
      return hp;
    });
  const path = (name: string, v: string): string => {
    if (v === "") throw fail(source, name, "expected a path, got \"\"");
    if (v.includes("\0")) throw fail(source, name, `invalid path ${quote(v)}`);
    return v;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = one(name);
    if (v === undefined) return undefined;
    const hit = allowed.find((a) => a === v);
    if (hit === undefined) throw fail(source, name, `expected ${allowed.join("|")}, got ${quote(v)}`);
    return hit;
  };

  const listen = hostPorts("listen", true);
  if (listen) p.listen = listen;
  const listenTls = hostPorts("listen-tls", true);
  if (listenTls) p.listenTls = listenTls;
  const listenWs = hostPorts("listen-ws", true);
  if (listenWs) p.listenWs = listenWs;
  const listenWsPlain = hostPorts("listen-ws-plain", true);
  if (listenWsPlain) {
    // no TLS: only a reverse proxy on the same host may reach it (it also vouches for X-Forwarded-For)
    const open = listenWsPlain.find((hp) => !isLoopback(hp.host));
    if (open) throw fail(source, "listen-ws-plain", `must be a loopback address (127.0.0.1, [::1], localhost), got ${quote(open.host)}; use listen-ws for TLS`);
    p.listenWsPlain = listenWsPlain;
  }
  const wsPath = one("ws-path");
  if (wsPath !== undefined) {
    if (!/^\/[\x21-\x7e]{0,255}$/.test(wsPath) || wsPath.includes("?") || wsPath.includes("#")) {
      throw fail(source, "ws-path", `expected an absolute URL path like "/xmpp-websocket", got ${quote(wsPath)}`);
    }
    p.wsPath = wsPath;
  }

  const domains = list("domain");
  if (domains) {
    const out: string[] = [];
    for (const d of domains) {
      const n = parseDomain(d);
      if (typeof n !== "string") throw fail(source, "domain", n.error);
      if (!out.includes(n)) out.push(n); // "Example.com" and "example.com" are one domain
    }
    p.domains = out;
  }

  const certs = list("cert");
  const keys = list("key");
  if (certs !== undefined || keys !== undefined) {
    const c = certs ?? [];
    const k = keys ?? [];
    if (c.length !== k.length) {
      const problem =
        source.kind === "cli"
          ? `config: --cert given ${times(c.length)} but --key ${times(k.length)}`
          : `config: cert has ${c.length} ${c.length === 1 ? "entry" : "entries"} but key has ${k.length} in ${source.path}`;
      throw new ConfigError(c.length < k.length ? "cert" : "key", problem);
    }
    p.certs = c.map((certFile, i) => ({ certFile: path("cert", certFile), keyFile: path("key", k[i] ?? "") }));
  }

  const upstreamStr = one("upstream");
  if (upstreamStr !== undefined) {
    const hp = parseHostPort(upstreamStr, false);
    if (typeof hp === "string") throw fail(source, "upstream", hp);
    p.upstream = hp;
  }
  const upstreamTls = oneOf("upstream-tls", UPSTREAM_TLS_MODES);
  if (upstreamTls) p.upstreamTls = upstreamTls;
  const ca = one("upstream-ca");
  if (ca !== undefined) p.upstreamCa = path("upstream-ca", ca);
  const insecure = raw.get("upstream-insecure");
  if (insecure?.type === "boolean") p.upstreamInsecure = insecure.value;
  const pp = raw.get("proxy-protocol");
  if (pp?.type === "boolean") p.proxyProtocol = pp.value;
  const ppFrom = list("proxy-protocol-from");
  if (ppFrom) {
    p.proxyProtocolFrom = ppFrom.map((v) => {
      const c = parseCidr(v.trim());
      if (typeof c === "string") throw fail(source, "proxy-protocol-from", c);
      return c;
    });
  }
  const logLevel = oneOf("log-level", LOG_LEVELS);
  if (logLevel) p.logLevel = logLevel;
  const stateDir = one("state-dir");
  if (stateDir !== undefined) p.stateDir = path("state-dir", stateDir);
  const sasl = list("client-sasl");
  if (sasl !== undefined) p.clientSasl = parseClientSasl(sasl, source);
  const metricsAddr = one("metrics");
  if (metricsAddr !== undefined) {
    if (metricsAddr === "" || metricsAddr === "off") p.metrics = null;
    else {
      const hp = parseHostPort(metricsAddr, true);
      if (typeof hp === "string") throw fail(source, "metrics", `${hp} (or "off")`);
      p.metrics = hp;
    }
  }

  const setInt = (name: string, assign: (n: number) => void): void => {
    const n = int(name);
    if (n !== undefined) assign(n);
  };
  setInt("max-stanza-size", (n) => (p.maxStanzaSize = n));
  setInt("max-depth", (n) => (p.maxDepth = n));
  setInt("auth-timeout", (n) => (p.authTimeout = n));
  setInt("max-unauthenticated-per-ip", (n) => (p.maxUnauthenticatedPerIp = n));
  setInt("max-unauthenticated", (n) => (p.maxUnauthenticated = n));
  setInt("max-rooms-per-account", (n) => (p.maxRoomsPerAccount = n));
  setInt("slow-client-timeout", (n) => (p.slowClientTimeout = n));
  setInt("max-buffered-bytes", (n) => (p.maxBufferedBytes = n));
  setInt("keepalive", (n) => (p.keepalive = n));
  setInt("upstream-timeout", (n) => (p.upstreamTimeout = n));
  setInt("room-history", (n) => (p.roomHistory = n));
  setInt("room-history-bytes", (n) => (p.roomHistoryBytes = n));
  setInt("max-held-pms", (n) => (p.maxHeldPms = n));
  setInt("max-held-pm-bytes", (n) => (p.maxHeldPmBytes = n));
  setInt("max-room-outbox", (n) => (p.maxRoomOutbox = n));
  setInt("max-room-outbox-bytes", (n) => (p.maxRoomOutboxBytes = n));
  setInt("max-pending-iqs", (n) => (p.maxPendingIqs = n));
  setInt("max-account-outbox", (n) => (p.maxAccountOutbox = n));
  setInt("max-account-outbox-bytes", (n) => (p.maxAccountOutboxBytes = n));
  setInt("room-idle-leave", (n) => (p.roomIdleLeave = n));
  const away = oneOf("away-presence", AWAY_PRESENCES);
  if (away) p.awayPresence = away;
  const bookmarks = oneOf("bookmarks", BOOKMARKS_MODES);
  if (bookmarks) p.bookmarks = bookmarks;
  const start = oneOf("account-session-start", ACCOUNT_SESSION_STARTS);
  if (start) p.accountSessionStart = start;
  setInt("account-session-linger", (n) => (p.accountSessionLinger = n));
  setInt("join-timeout", (n) => (p.joinTimeout = n));
  setInt("sm-max-queue", (n) => (p.smMaxQueue = n));
  setInt("sm-max-queue-bytes", (n) => (p.smMaxQueueBytes = n));
  setInt("sm-resume-timeout", (n) => (p.smResumeTimeout = n));
  setInt("sm-ack-every", (n) => (p.smAckEvery = n));
  setInt("csi-max-held", (n) => (p.csiMaxHeld = n));
  setInt("csi-max-held-bytes", (n) => (p.csiMaxHeldBytes = n));
  const pushRooms = oneOf("push-rooms", PUSH_ROOMS_MODES);
  if (pushRooms) p.pushRooms = pushRooms;
  setInt("push-interval", (n) => (p.pushInterval = n));
  const pushBody = raw.get("push-body");
  if (pushBody?.type === "boolean") p.pushBody = pushBody.value;
  setInt("push-timeout", (n) => (p.pushTimeout = n));
  const redisUrl = one("cluster-redis");
  if (redisUrl !== undefined) {
    if (!/^rediss?:\/\/[^\s]+$/.test(redisUrl)) throw fail(source, "cluster-redis", `expected redis://host:port or rediss://host:port, got ${quote(redisUrl.replace(/\/\/[^@/]*@/, "//***@"))}`);
    p.clusterRedis = redisUrl;
  }
  const nodeId = one("node-id");
  if (nodeId !== undefined) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId)) throw fail(source, "node-id", `expected 1-64 letters, digits, ".", "_" or "-", got ${quote(nodeId)}`);
    p.nodeId = nodeId;
  }
  const advertise = one("cluster-advertise");
  if (advertise !== undefined) {
    const hp = parseHostPort(advertise, false);
    if (typeof hp === "string") throw fail(source, "cluster-advertise", hp);
    p.clusterAdvertise = hp;
  }
  const clientAddress = one("cluster-client-address");
  if (clientAddress !== undefined) {
    const hp = parseHostOptionalPort(clientAddress);
    if (typeof hp === "string") throw fail(source, "cluster-client-address", hp);
    p.clusterClientAddress = hp;
  }
  setInt("cluster-lease-ttl", (n) => (p.clusterLeaseTtl = n));
  const secretFile = one("cluster-secret-file");
  if (secretFile !== undefined) p.clusterSecretFile = path("cluster-secret-file", secretFile);

  const prefix = one("account-resource-prefix");
  if (prefix !== undefined) {
    // It becomes the start of an XMPP resourcepart (RFC 7622 §3.4): printable, no whitespace, short
    // enough to leave room for the per-session suffix within 1023 octets.
    if (!/^[\x21-\x7e]{1,64}$/.test(prefix)) {
      throw fail(source, "account-resource-prefix", `expected 1-64 printable ASCII characters without spaces, got ${quote(prefix)}`);
    }
    p.accountResourcePrefix = prefix;
  }
  return p;
}

/**
 * --client-sasl values: mechanism names, each value possibly a comma-separated list, any case (SASL
 * names are case-sensitive on the wire, so they are stored in their registered upper-case form).
 * Returned strongest first without duplicates; at least one.
 */
function parseClientSasl(values: string[], source: Source): ClientSaslMechanism[] | "auto" {
  const names = values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  if (names.some((n) => n.toLowerCase() === "auto")) {
    if (names.length > 1) throw fail(source, "client-sasl", "\"auto\" stands alone: it cannot be combined with mechanism names");
    return "auto";
  }
  const wanted = new Set<ClientSaslMechanism>();
  for (const raw of names) {
    const m = CLIENT_SASL_MECHANISMS.find((c) => c === raw.toUpperCase());
    if (m === undefined) throw fail(source, "client-sasl", `unknown mechanism ${quote(raw)} (expected auto, or some of ${CLIENT_SASL_MECHANISMS.join(", ")})`);
    wanted.add(m);
  }
  if (wanted.size === 0) throw fail(source, "client-sasl", "no mechanism given: clients could not log in");
  return CLIENT_SASL_MECHANISMS.filter((m) => wanted.has(m));
}

// ---------------------------------------------------------------------------------------------------
// argv

const COMMAND = /^[a-z][a-z0-9-]*$/;

/**
 * util.parseArgs splits argv into tokens: a string option takes the next word (or its "=" part), a
 * boolean never takes the next word. It runs non-strict because strict mode would throw multi-line
 * errors without the key, and would also refuse any next word starting with "-" (so `--keepalive -1`
 * could not say "expected integer"); the checks below are the strict part, with one-line messages.
 */
const TOKEN_OPTIONS: ParseArgsConfig["options"] = Object.fromEntries(
  OPTIONS.map((o) => [
    o.name,
    o.type === "boolean"
      ? { type: "boolean" as const, ...(o.name === "help" ? { short: "h" } : {}) }
      : { type: "string" as const, multiple: o.type === "strings" },
  ]),
);

/**
 * Parses argv (without the node binary and script, i.e. process.argv.slice(2)).
 * --help / -h and --version win over everything else (even over errors elsewhere on the line), so
 * a user can always get help. Throws ConfigError for unknown flags, missing values, a non-repeatable
 * flag given twice, stray arguments, and per-value problems.
 */
export function parseArgs(argv: string[]): ParsedArgs {
  // Looked for word by word before tokenising: an error elsewhere must not hide them, nor a flag
  // that forgot its value and would otherwise take "--help" as that value.
  const end = argv.indexOf("--");
  const scanned = end === -1 ? argv : argv.slice(0, end);
  if (scanned.includes("--help") || scanned.includes("-h")) return { kind: "help" };
  if (scanned.includes("--version")) return { kind: "version" };

  const cli: Source = { kind: "cli" };
  const raw = new Map<string, RawValue>();
  let configFile: string | undefined;
  let command: string | undefined;

  const { tokens } = tokenize({ args: argv, options: TOKEN_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const [t, tok] of tokens.entries()) {
    if (tok.kind === "option-terminator") {
      const extra = tokens[t + 1];
      if (extra !== undefined) throw new ConfigError("argv", `config: unexpected argument ${quote(argv[extra.index] ?? "")}`);
      break;
    }
    const word = argv[tok.index] ?? "";
    if (tok.kind === "positional" && tok.index === 0 && !word.startsWith("-")) {
      if (!COMMAND.test(word)) throw new ConfigError("argv", `config: unexpected argument ${quote(word)} (options start with "--")`);
      command = word;
      continue;
    }
    // Anything else that is not a long option: a stray word, "-", or a short option ("-d", "-hx").
    if (tok.kind === "positional" || !tok.rawName.startsWith("--")) {
      throw new ConfigError("argv", `config: unexpected argument ${quote(word)}${command === undefined && word.startsWith("-") ? " (options start with \"--\")" : ""}`);
    }
    // The name ends at the first "=" (util.parseArgs reads "--=x" as a flag named "=x").
    const name = tok.name.split("=", 1)[0] ?? "";
    const spec = BY_NAME.get(name);
    if (spec === undefined) {
      const hint = suggest(name, OPTIONS.map((o) => o.name));
      throw new ConfigError(name, `config: unknown flag --${name}${hint ? ` (did you mean --${hint}?)` : ""}`);
    }

    if (spec.type === "boolean") {
      // `--flag=true|false` (inline only: a boolean never takes the next word)
      let value = true;
      if (tok.value !== undefined) {
        if (tok.value !== "true" && tok.value !== "false") throw fail(cli, name, `expected true or false, got ${quote(tok.value)}`);
        value = tok.value === "true";
      }
      if (raw.has(name)) throw fail(cli, name, "given more than once");
      raw.set(name, { type: "boolean", value });
      continue;
    }

    // A next word starting with "--" is a forgotten value (`--listen --domain x`); "=" allows it.
    const value = tok.value;
    if (value === undefined || (!tok.inlineValue && value.startsWith("--"))) {
      throw fail(cli, name, `missing value (expected ${spec.metavar ?? "a value"})`);
    }

    if (name === "config") {
      if (configFile !== undefined) throw fail(cli, name, "given more than once");
      if (value === "") throw fail(cli, name, "expected a path, got \"\"");
      configFile = value;
      continue;
    }

    const prev = raw.get(name);
    if (spec.type === "strings") {
      if (prev?.type === "strings") prev.values.push(value);
      else raw.set(name, { type: "strings", values: [value] });
      continue;
    }
    if (prev !== undefined) throw fail(cli, name, `given more than once (it takes one value)`);
    if (spec.type === "integer") {
      if (!/^[0-9]{1,15}$/.test(value)) throw fail(cli, name, `expected integer, got ${quote(value)}`);
      raw.set(name, { type: "integer", value: BigInt(value) });
    } else {
      raw.set(name, { type: "strings", values: [value] });
    }
  }

  const flags = toPartial(raw, cli);
  const out: ParsedArgs = { kind: "run", flags };
  if (configFile !== undefined) out.configFile = configFile;
  if (command !== undefined) out.command = command;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// --help

/** The --help text: every flag with its default. Ends with a newline. */
export function helpText(): string {
  const lines = [
    "Usage: minimix-proxy [COMMAND] [--config FILE] [flags]",
    "",
    "XMPP client-to-server proxy that joins each MUC room once per account and fans room traffic",
    "out to every session of that account.",
    "",
    "Every flag except --config, --help and --version can also be set in the TOML config file under",
    "the same name without \"--\" (e.g. listen = [\"[::]:5222\"], upstream-insecure = true). Flags",
    "override the file; a repeatable flag replaces the file's whole list. Relative paths in the file",
    "are relative to the file's directory.",
    "",
    "Commands:",
    "  (none)                          run the proxy",
    "  check                           check the configuration, certificates and the upstream, then exit",
    "                                  (one line per check: OK, WARN or FAIL; exit 0, 1 on a FAIL, 2 if invalid)",
    "  status [--json]                 show the running proxy's accounts, sessions and rooms (asks the",
    "                                  --metrics address of the config or command line)",
    "  import-credentials              copy the server's SCRAM records (Prosody --prosody-data DIR, ejabberd",
    "                                  --ejabberd-sql FILE) into the credential store; --help for its flags",
    "",
    "Flags:",
  ];
  for (const o of OPTIONS) {
    const left = `  --${o.name}${o.metavar ? ` ${o.metavar}` : ""}`;
    lines.push(left.length < 34 ? `${left.padEnd(34)}${o.help}` : `${left}\n${" ".repeat(34)}${o.help}`);
    if (o.default !== "") lines.push(`${" ".repeat(34)}default: ${o.default}`);
  }
  lines.push("", "Exit status: 0 on success, 1 on a failure (check: a FAIL; status: proxy unreachable), 2 on a configuration error.");
  return `${lines.join("\n")}\n`;
}
