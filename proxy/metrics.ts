/**
 * Prometheus / OpenMetrics metrics of the proxy (prom-client). The registry and every metric object
 * live here; the rest of the proxy calls the small hook functions of `metrics` (one line each).
 *
 * Cheap by design: the per-stanza hooks only add to plain numbers in a typed array (prom-client's
 * labelled inc() hashes and validates the labels on every call); the counters read those numbers
 * when scraped. No label ever carries a JID, an address or any other unbounded value. Gauges that
 * describe the current state (connections, accounts, rooms, sessions per room) are computed when
 * scraped, from the live objects of the bound `MetricsSource`, so nothing has to be kept in sync.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RoomSnapshot } from "../core/muc/room-state.js";

/** What the scrape-time gauges read: the running server (ProxyServer satisfies this). */
export interface MetricsSource {
  readonly sessions: Iterable<{ readonly transport: string; readonly state: string }>;
  readonly accounts?: { all(): Iterable<MetricsAccount> } | undefined;
  /** Unread client output counted against --max-buffered-bytes. */
  readonly bufferedBytes?: number;
  /** XEP-0198 sessions whose connection dropped, waiting to be resumed. */
  readonly hibernatingCount?: number;
  /** --cluster-redis (docs/architecture.md §8.7). */
  readonly clusterStatus?: {
    readonly heldCount: number;
    readonly redisReachable: boolean;
    readonly knownNodes: readonly unknown[];
    readonly stats: { acquired: number; lost: number; released: number; refused: number; redisErrors: number };
    readonly forwarded?: { out: number; in: number; refused: number; failed: number } | undefined;
  } | undefined;
}

export interface MetricsAccount {
  readonly rooms: { rooms(): RoomSnapshot[] };
  /** The account session as the hub sees it (online also without rooms: docs/architecture.md §4.1). */
  readonly accountSessionState: string;
}

export type StanzaKind = "message" | "presence" | "iq" | "other";
export type Direction = "in" | "out";
export type Leg = "client" | "upstream";

const PREFIX = "minimix_";
const KINDS: readonly StanzaKind[] = ["message", "presence", "iq", "other"];
/** Client stream phases (ClientStream), listed so that every series exists from the first scrape. */
const SESSION_STATES = ["pre-tls", "tls", "authenticating", "authed", "open", "closed"] as const;
const TRANSPORTS = ["starttls", "direct-tls", "websocket"] as const;
const ACCOUNT_SESSION_STATES = ["down", "opening", "up"] as const;
/** XEP-0198 events on the client leg (docs/architecture.md §8.4). */
export type SmEvent = "enabled" | "resumed" | "resume_failed" | "expired";
const SM_EVENTS: readonly SmEvent[] = ["enabled", "resumed", "resume_failed", "expired"];
/** XEP-0357 publishes by outcome (docs/architecture.md §8.6). */
export type PushOutcome = "sent" | "ok" | "error" | "gone" | "timeout" | "dropped";
const PUSH_OUTCOMES: readonly PushOutcome[] = ["sent", "ok", "error", "gone", "timeout", "dropped"];
/** RFC 6120 §6.5 SASL conditions plus the proxy's own reasons; anything else is counted as "other". */
const AUTH_CONDITIONS = new Set([
  "aborted", "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding",
  "invalid-authzid", "invalid-mechanism", "malformed-request", "mechanism-too-weak", "not-authorized",
  "temporary-auth-failure",
]);

function kindOf(name: string): StanzaKind {
  return name === "message" || name === "presence" || name === "iq" ? name : "other";
}

/** The kind of a serialized stanza, from its first bytes (fan-out deliveries are strings). */
function kindOfXml(xml: string): StanzaKind {
  if (xml.startsWith("<message")) return "message";
  if (xml.startsWith("<presence")) return "presence";
  if (xml.startsWith("<iq")) return "iq";
  return "other";
}

const DIRECTIONS: readonly Direction[] = ["in", "out"];
const KIND_INDEX: Record<StanzaKind, number> = { message: 0, presence: 1, iq: 2, other: 3 };

export class ProxyMetrics {
  /** Prometheus text format 0.0.4 (the default answer of /metrics). */
  readonly registry = new Registry();
  /** The same metrics in OpenMetrics 1.0 format (served when the scraper asks for it). */
  readonly openMetricsRegistry = new Registry<"application/openmetrics-text; version=1.0.0; charset=utf-8">();
  private source: MetricsSource | undefined;

  private readonly connectionsTotal: Counter<"transport">;
  private readonly tlsFailures: Counter<"transport">;
  private readonly authSuccess: Counter;
  private readonly authFailure: Counter<"condition">;
  private readonly limitBreaches: Counter<"leg" | "kind">;
  private readonly upstreamConnect: Histogram<"purpose">;
  private readonly upstreamFailures: Counter<"purpose" | "code">;
  private readonly refusals: Counter<"kind">;
  private readonly smEvents: Counter<"event">;
  private readonly smBounces: Counter;
  private readonly pushes: Counter<"outcome">;
  private fanOutCount = 0;
  private readonly breachedClient = new WeakSet<object>();
  private readonly breachedUpstream = new WeakSet<object>();
  private roomStanzaCount = 0;
  /** Stanza counts and bytes, index = direction (in 0, out 1) × 4 + kind index. */
  private readonly stanzaCounts = new Float64Array(8);
  private readonly stanzaByteCounts = new Float64Array(8);

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.openMetricsRegistry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const registers = [this.registry, this.openMetricsRegistry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;

    new Gauge({
      name: `${PREFIX}connections`, help: "Client connections open now, by transport and session state",
      labelNames: ["transport", "state"] as const, registers,
      collect() {
        this.reset();
        for (const t of TRANSPORTS) for (const s of SESSION_STATES) if (s !== "closed") this.set({ transport: t, state: s }, 0);
        for (const s of self.source?.sessions ?? []) this.inc({ transport: s.transport, state: s.state });
      },
    });
    this.connectionsTotal = new Counter({
      name: `${PREFIX}connections_accepted_total`, help: "Client connections accepted, by transport",
      labelNames: ["transport"] as const, registers,
    });
    this.tlsFailures = new Counter({
      name: `${PREFIX}tls_handshake_failures_total`, help: "Failed TLS handshakes with clients (direct TLS or STARTTLS)",
      labelNames: ["transport"] as const, registers,
    });
    for (const t of TRANSPORTS) {
      this.connectionsTotal.inc({ transport: t }, 0);
      this.tlsFailures.inc({ transport: t }, 0);
    }
    this.authSuccess = new Counter({
      name: `${PREFIX}auth_successes_total`, help: "Client logins the upstream server accepted", registers,
    });
    this.authFailure = new Counter({
      name: `${PREFIX}auth_failures_total`, help: "Failed client SASL attempts, by RFC 6120 condition",
      labelNames: ["condition"] as const, registers,
    });
    this.authFailure.inc({ condition: "not-authorized" }, 0);
    const perStanza = (counts: Float64Array) => function (this: Counter<"direction" | "kind">): void {
      this.reset();
      DIRECTIONS.forEach((direction, d) => KINDS.forEach((kind, k) => this.inc({ direction, kind }, counts[d * 4 + k] ?? 0)));
    };
    new Counter({
      name: `${PREFIX}stanzas_total`,
      help: "Stanzas on the client leg: direction in = from clients, out = to clients; kind message|presence|iq|other (SASL, STARTTLS, …)",
      labelNames: ["direction", "kind"] as const, registers, collect: perStanza(this.stanzaCounts),
    });
    new Counter({
      name: `${PREFIX}stanza_bytes_total`, help: "Bytes of the stanzas counted by minimix_stanzas_total",
      labelNames: ["direction", "kind"] as const, registers, collect: perStanza(this.stanzaByteCounts),
    });
    this.limitBreaches = new Counter({
      name: `${PREFIX}limit_breaches_total`,
      help: "Streams ended for breaking a limit or the XML rules: kind is the framer code (XML_STANZA_TOO_LARGE, XML_TOO_DEEP, …) or AUTH_TIMEOUT, AUTH_ATTEMPTS, SLOW_CONSUMER, BUFFERED_TOTAL (--max-buffered-bytes), UNAUTH_PER_IP, UNAUTH_TOTAL, PROXY_HEADER, PROXY_UNTRUSTED_SOURCE (--proxy-protocol-from)",
      labelNames: ["leg", "kind"] as const, registers,
    });
    this.upstreamConnect = new Histogram({
      name: `${PREFIX}upstream_connect_seconds`,
      help: "Time to an authenticated upstream stream (TCP, TLS, features, SASL), purpose session = a client login, account = the account session",
      labelNames: ["purpose"] as const, registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.refusals = new Counter({
      name: `${PREFIX}refused_stanzas_total`,
      help: "Stanzas refused or lost because an account-level bound was hit: kind HELD_PMS_FULL (--max-held-pms, sender told), HELD_PMS_LOST (account removed from the room before a session came back), ROOM_OUTBOX_FULL (--max-room-outbox[-bytes]), ACCOUNT_OUTBOX_FULL (--max-account-outbox[-bytes]), PENDING_IQS_FULL (--max-pending-iqs) and HELD_WHILE_JOINING_FULL (more than 32 messages from one session before its join completed): a stanza answered with resource-constraint",
      labelNames: ["kind"] as const, registers,
    });
    this.upstreamFailures = new Counter({
      name: `${PREFIX}upstream_connect_failures_total`, help: "Upstream connections that failed, by purpose and error code (UPSTREAM_CONNECT, UPSTREAM_TLS, …)",
      labelNames: ["purpose", "code"] as const, registers,
    });
    this.smEvents = new Counter({
      name: `${PREFIX}sm_events_total`,
      help: "XEP-0198 on the client leg: event enabled (SM enabled on a stream), resumed (a session resumed on a new stream), resume_failed (<resume/> answered with <failed/>), expired (a session ended with stanzas still unacknowledged or hibernating too long)",
      labelNames: ["event"] as const, registers,
    });
    for (const event of SM_EVENTS) this.smEvents.inc({ event }, 0);
    this.smBounces = new Counter({
      name: `${PREFIX}sm_bounced_stanzas_total`,
      help: "Unacknowledged stanzas answered with recipient-unavailable to their sender when their session ended (docs/architecture.md §8.4)",
      registers,
    });
    this.pushes = new Counter({
      name: `${PREFIX}push_publishes_total`,
      help: "XEP-0357 publishes to app servers for sleeping devices: sent, answered ok, error (kept), gone (registration removed), timeout, dropped (no way to send, or too many unanswered)",
      labelNames: ["outcome"] as const, registers,
    });
    for (const outcome of PUSH_OUTCOMES) this.pushes.inc({ outcome }, 0);
    new Gauge({
      name: `${PREFIX}sm_hibernating_sessions`, help: "XEP-0198 sessions whose connection dropped, waiting for their client to resume", registers,
      collect() {
        this.set(self.source?.hibernatingCount ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}client_buffered_bytes`,
      help: "Unread output held for clients that are behind (each client's first 16 KiB not counted), against --max-buffered-bytes",
      registers,
      collect() {
        this.set(self.source?.bufferedBytes ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}accounts`, help: "Accounts with a live session or joined rooms", registers,
      collect() {
        let n = 0;
        for (const _ of self.source?.accounts?.all() ?? []) n++;
        this.set(n);
      },
    });
    new Gauge({
      name: `${PREFIX}account_sessions`, help: "Account-level upstream sessions, by state (up = online and bound)",
      labelNames: ["state"] as const, registers,
      collect() {
        this.reset();
        for (const s of ACCOUNT_SESSION_STATES) this.set({ state: s }, 0);
        for (const a of self.source?.accounts?.all() ?? []) this.inc({ state: a.accountSessionState });
      },
    });
    new Gauge({
      name: `${PREFIX}rooms`, help: "MUC rooms held by account sessions (one per account and room), by state",
      labelNames: ["state"] as const, registers,
      collect() {
        this.reset();
        this.set({ state: "joining" }, 0);
        this.set({ state: "joined" }, 0);
        for (const r of self.rooms()) this.inc({ state: r.state });
      },
    });
    new Gauge({
      name: `${PREFIX}room_buffered_messages`, help: "Room messages buffered for late-joining sessions, all rooms together", registers,
      collect() {
        let n = 0;
        for (const r of self.rooms()) n += r.buffered;
        this.set(n);
      },
    });
    new Histogram({
      name: `${PREFIX}room_sessions`, help: "Downstream sessions per held room (joined and waiting), sampled at scrape time",
      registers, buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16],
      collect() {
        this.reset();
        for (const r of self.rooms()) this.observe(r.sessions.length + r.waiting.length);
      },
    });
    new Counter({
      name: `${PREFIX}fanout_deliveries_total`, help: "Stanzas the account layer delivered to a downstream session (room traffic, replays, replies)", registers,
      collect() {
        this.reset();
        this.inc(self.fanOutCount);
      },
    });
    new Counter({
      name: `${PREFIX}room_stanzas_received_total`, help: "Room stanzas the account sessions received from the upstream", registers,
      collect() {
        this.reset();
        this.inc(self.roomStanzaCount);
      },
    });
    new Gauge({
      name: `${PREFIX}upstream_deliveries_saved`,
      help: "Upstream deliveries saved by the account-level join since start: fan-out deliveries minus room stanzas received (negative while messages wait in buffers with no session)",
      registers,
      collect() {
        this.set(self.fanOutCount - self.roomStanzaCount);
      },
    });
    new Gauge({
      name: `${PREFIX}cluster_leases_held`, help: "Cluster: account leases this node holds (its account sessions); 0 outside a cluster", registers,
      collect() {
        this.set(self.source?.clusterStatus?.heldCount ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}cluster_nodes`, help: "Cluster: live nodes by their heartbeats in Redis, as last read; 0 outside a cluster", registers,
      collect() {
        this.set(self.source?.clusterStatus?.knownNodes.length ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}cluster_redis_up`, help: "Cluster: 1 while Redis answers, 0 while it does not (or outside a cluster)", registers,
      collect() {
        this.set(self.source?.clusterStatus?.redisReachable === true ? 1 : 0);
      },
    });
    new Counter({
      name: `${PREFIX}cluster_lease_events_total`,
      help: "Cluster: account lease events — acquired, lost (taken over or expired), released, refused (another node owns the account), redis_error (a command Redis did not answer)",
      labelNames: ["event"] as const, registers,
      collect() {
        this.reset();
        const s = self.source?.clusterStatus?.stats;
        this.inc({ event: "acquired" }, s?.acquired ?? 0);
        this.inc({ event: "lost" }, s?.lost ?? 0);
        this.inc({ event: "released" }, s?.released ?? 0);
        this.inc({ event: "refused" }, s?.refused ?? 0);
        this.inc({ event: "redis_error" }, s?.redisErrors ?? 0);
      },
    });
    new Counter({
      name: `${PREFIX}cluster_forwarded_sessions_total`,
      help: "Cluster: client sessions forwarded to their account's owner (out), taken from other nodes (in), node-to-node links refused (refused), forwards that failed and were served here (failed)",
      labelNames: ["direction"] as const, registers,
      collect() {
        this.reset();
        const f = self.source?.clusterStatus?.forwarded;
        for (const d of ["out", "in", "refused", "failed"] as const) this.inc({ direction: d }, f?.[d] ?? 0);
      },
    });
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      collectDefaultMetrics({ register: this.openMetricsRegistry });
    }
  }

  /** The server whose live state the scrape-time gauges report; undefined detaches it. */
  bind(source: MetricsSource | undefined): void {
    this.source = source;
  }

  private rooms(): RoomSnapshot[] {
    const out: RoomSnapshot[] = [];
    for (const a of this.source?.accounts?.all() ?? []) out.push(...a.rooms.rooms());
    return out;
  }

  // ------------------------------------------------------------------ hooks (one call each)

  /** A stanza refused (its sender told) or lost for an account-level bound (log code = kind). */
  refused(kind: string, n = 1): void {
    this.refusals.inc({ kind }, n);
  }

  /** An XEP-0198 event on the client leg. */
  sm(event: SmEvent): void {
    this.smEvents.inc({ event });
  }

  /** Unacknowledged stanzas bounced to their senders when their session ended. */
  smBounced(n: number): void {
    if (n > 0) this.smBounces.inc(n);
  }

  /** An XEP-0357 publish sent, answered, timed out or dropped. */
  push(outcome: PushOutcome): void {
    this.pushes.inc({ outcome });
  }

  connectionAccepted(transport: string): void {
    this.connectionsTotal.inc({ transport });
  }

  tlsHandshakeFailed(transport: string): void {
    this.tlsFailures.inc({ transport });
  }

  /** A client login succeeded; `connectMs` is the upstream connect + auth time it took. */
  authSucceeded(connectMs: number): void {
    this.authSuccess.inc();
    this.upstreamConnect.observe({ purpose: "session" }, connectMs / 1000);
  }

  authFailed(condition: string): void {
    this.authFailure.inc({ condition: AUTH_CONDITIONS.has(condition) ? condition : "other" });
  }

  /** A stanza (or nonza) on the client leg; `name` is the element name as the framer reported it. */
  stanza(direction: Direction, name: string, bytes: number): void {
    const i = (direction === "in" ? 0 : 4) + KIND_INDEX[kindOf(name)];
    this.stanzaCounts[i]! += 1;
    this.stanzaByteCounts[i]! += bytes;
  }

  /** A serialized stanza written to a client by the account layer. */
  stanzaXml(direction: Direction, xml: string): void {
    const i = (direction === "in" ? 0 : 4) + KIND_INDEX[kindOfXml(xml)];
    this.stanzaCounts[i]! += 1;
    this.stanzaByteCounts[i]! += Buffer.byteLength(xml);
  }

  /**
   * A stream ended for a limit. `owner` (the session or connection) makes it count once: a framer
   * that failed reports the error again for every chunk that still arrives before the socket closes.
   */
  limitBreach(leg: Leg, kind: string, owner?: object): void {
    if (owner !== undefined) {
      const seen = leg === "client" ? this.breachedClient : this.breachedUpstream;
      if (seen.has(owner)) return;
      seen.add(owner);
    }
    this.limitBreaches.inc({ leg, kind });
  }

  upstreamConnected(purpose: "session" | "account", connectMs: number): void {
    this.upstreamConnect.observe({ purpose }, connectMs / 1000);
  }

  upstreamFailed(purpose: "session" | "account", code: string | undefined): void {
    this.upstreamFailures.inc({ purpose, code: code ?? "INTERNAL" });
  }

  fanOut(): void {
    this.fanOutCount++;
  }

  roomStanza(): void {
    this.roomStanzaCount++;
  }

  // ------------------------------------------------------------------ exposition

  /** Picks the format from an HTTP Accept header (OpenMetrics when the scraper asks for it). */
  async render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const reg = accept?.includes("application/openmetrics-text") ? this.openMetricsRegistry : this.registry;
    return { contentType: reg.contentType, body: await reg.metrics() };
  }
}

/** The process-wide metrics every hook reports to. */
export const metrics = new ProxyMetrics();
