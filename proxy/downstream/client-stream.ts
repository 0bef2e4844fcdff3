import type { Socket } from "node:net";
import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import type { FramingError, StreamErrorCondition } from "../../core/xml/errors.js";
import { parseStanza } from "../../core/xml/element.js";
import { NS_CLIENT, NS_SASL, NS_SM_2, NS_SM_3, NS_STREAM, NS_TLS } from "../../core/xml/ns.js";
import { failed, parseSmNonza, smFeature } from "../../core/sm/elements.js";
import { streamHeader } from "../../core/xml/stream.js";
import type { Logger } from "../log.js";
import type { OutputHolder, ProxyContext } from "../context.js";
import { XmppConnection, type ConnectionOptions, type StreamHandler } from "../stream/xmpp-connection.js";
import type { ClientConnection } from "../stream/client-connection.js";
import { filterPostAuthFeatures, preTlsFeatures, saslFeatures } from "./features.js";
import { SaslServer, type LoginOutcome, type SaslHost } from "./sasl.js";
import { EarlyUpstream } from "./early-upstream.js";
import type { AuthenticatedUpstream } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { channelBindings } from "../channel-binding.js";
import { advertisedChannelBindingTypes } from "../../core/sasl/channel-binding.js";
import type { ClientSaslMechanism } from "../../core/sasl/mechanisms.js";
import { BoundSession, type SessionClient, type Transport } from "./bound-session.js";
import { metrics } from "../metrics.js";
import { authAccount } from "../cluster/forward.js";
import type { ForwardedClient } from "../cluster/forwarder.js";
import { WebSocketSplice } from "../cluster/ws-splice.js";
import { seeOtherUriClose } from "../../core/cluster/redirect.js";
import { WebSocketConnection } from "../websocket/connection.js";
import type { TLSSocket } from "node:tls";

export type { Transport } from "./bound-session.js";

/** Builds a non-TCP client connection (WebSocket) for a stream: it becomes the connection's handler. */
export type ConnectionFactory = (handler: StreamHandler, opts: ConnectionOptions) => ClientConnection;

type Phase =
  | "pre-tls" // plain TCP: only STARTTLS is allowed
  | "tls" // encrypted, not authenticated: only SASL
  | "authenticating" // waiting for the upstream's verdict
  | "authed" // SASL done: waiting for the client's stream restart
  | "open" // stanzas flow through
  | "closed";

/**
 * Largest element accepted before authentication. A SASL PLAIN <auth/> is at most ~6.5 KB
 * (core/sasl/plain.ts bounds), so an unauthenticated peer never makes the proxy buffer a full
 * --max-stanza-size; an oversized SASL payload is cut with <policy-violation/> while it arrives.
 */
export const PRE_AUTH_MAX_STANZA = 16_384;
/**
 * Output below this is not counted against --max-buffered-bytes: one socket buffer's worth (Node's
 * default high-water mark), which every busy client has for a moment. From it on, the socket
 * reports when it has drained, which is when the stream stops being counted.
 */
export const UNCOUNTED_OUTPUT = 16_384;

export interface StreamEvents {
  closed(stream: ClientStream): void;
  /** SASL succeeded: the connection no longer counts as unauthenticated (server limits). */
  authenticated?(stream: ClientStream): void;
}

/**
 * Top-level elements refused once the stream is authenticated: a second SASL exchange or STARTTLS
 * (a replayed <auth/> must never re-authenticate the stream as someone else). Prosody answers the
 * same with <unsupported-stanza-type/>; the proxy refuses it itself, before anything goes upstream.
 */
const NEGOTIATION_ELEMENTS = new Set(["auth", "response", "abort", "challenge", "success", "failure", "starttls", "proceed"]);

/** Names of XEP-0198 top-level elements: looked at (namespace) before anything goes upstream. */
const SM_ELEMENTS = new Set(["r", "a", "enable", "resume", "enabled", "resumed", "failed"]);

/**
 * One client connection: the stream negotiation (headers, STARTTLS, SASL PLAIN, the stream
 * restart, the post-authentication features), then the stanzas of the authenticated stream, which
 * go to its session (BoundSession, docs/architecture.md §8.4). Owns the connection as its handler.
 */
export class ClientStream implements StreamHandler, OutputHolder, SessionClient {
  readonly id: string;
  readonly log: Logger;
  readonly transport: Transport;
  readonly conn: ClientConnection;
  private phase: Phase;
  private headerSent = false;
  private domain: string | undefined;
  private upstreamFeatures = "";
  private readonly sasl: SaslServer;
  /** The SASL mechanisms this stream advertised (docs/architecture.md §3.5). */
  private offered: ClientSaslMechanism[] = [];
  private authTimer: NodeJS.Timeout | undefined;
  readonly startedAt = Date.now();
  username: string | undefined;
  /** The session this stream authenticated into. */
  private session: BoundSession | undefined;
  /** A drain listener is waiting to take this stream off the proxy-wide output budget. */
  private budgetDrainArmed = false;
  /** A stream error was sent (fail): the stream is on its way out. */
  private ending = false;
  /** The client restarted its stream before the upstream leg was ready: its features are owed. */
  private featuresWanted = false;
  /** The upstream connection opened when SASL is offered (docs/architecture.md §3.5). */
  private readonly early = new EarlyUpstream();
  /** The forwarded stream's first header was taken (the forwarding node answered it already). */
  private forwardOpened = false;

  constructor(private readonly ctx: ProxyContext, socket: Socket | ConnectionFactory, transport: Transport, private readonly events: StreamEvents,
    /** The client's address: the socket's, or what a PROXY protocol header reported. */
    readonly ip: string | undefined = typeof socket === "function" ? undefined : socket.remoteAddress,
    /** A session another node forwarded here (docs/architecture.md §8.7): its TLS is that node's. */
    private readonly forwarded?: ForwardedClient) {
    this.id = ctx.nextConnId();
    this.transport = transport;
    // a WebSocket is encrypted already (wss), or plain on loopback behind a TLS-terminating proxy
    this.phase = transport === "starttls" ? "pre-tls" : "tls";
    this.log = ctx.log.child({ conn: this.id, transport, ip });
    const limits = { maxStanzaSize: ctx.config.limits.maxStanzaSize, maxDepth: ctx.config.limits.maxDepth };
    const opts = { limits, keepaliveMs: ctx.config.keepaliveMs };
    this.conn = typeof socket === "function" ? socket(this, opts) : new XmppConnection(socket, this, opts);
    this.conn.framer.setLimits({ maxStanzaSize: Math.min(limits.maxStanzaSize, PRE_AUTH_MAX_STANZA) });
    this.sasl = new SaslServer(this.saslHost());
    this.authTimer = setTimeout(() => (metrics.limitBreach("client", "AUTH_TIMEOUT"), this.fail("connection-timeout", "authentication took too long")), ctx.config.limits.authTimeoutMs);
    this.authTimer.unref();
    this.log.debug("connection accepted");
  }

  get isOpen(): boolean {
    return this.phase === "open";
  }

  /** The negotiation phase, for status and metrics. */
  get state(): string {
    return this.phase;
  }

  /** Its session's MUC traffic passes through (SCRAM relayed, docs/architecture.md §3.5); status. */
  get mucPassThrough(): boolean {
    return this.session?.mucPassThrough ?? false;
  }

  /** The full JID bound on this stream, once known. */
  get jid(): string | undefined {
    return this.session?.jid;
  }

  // ---------------------------------------------------------------- stream handler

  onOpen(name: string, attrs: Record<string, string>): void {
    const header = (): string => streamHeader({ from: this.domain ?? this.ctx.config.domains[0], id: randomBytes(8).toString("hex") });
    // RFC 6120 §4.9.1.2: when the error comes before our header, the header is sent first
    if (name !== "stream:stream" || attrs["xmlns:stream"] !== NS_STREAM) {
      return this.fail("invalid-namespace", "expected a stream:stream in the streams namespace", header());
    }
    if (attrs.xmlns !== NS_CLIENT) return this.fail("invalid-namespace", "only jabber:client streams are served", header());
    const to = (attrs.to ?? "").toLowerCase().replace(/\.$/, "");
    if (!to || !this.ctx.serves(to)) {
      this.log.info({ to }, "stream to a domain this proxy does not serve");
      return this.fail("host-unknown", "this proxy does not serve that domain", header());
    }
    if (this.domain && to !== this.domain) return this.fail("host-unknown", "the domain changed during the stream", header());
    this.domain = to;
    const major = Number((attrs.version ?? "0").split(".")[0]);
    if (!(major >= 1)) return this.fail("unsupported-version", "XMPP 1.0 streams only", header());
    if (this.forwarded && !this.forwardOpened && this.phase === "tls") {
      // the forwarding node sent its header and features; the client's <auth/> follows (§8.7)
      this.forwardOpened = true;
      this.headerSent = true;
      this.early.start(this.ctx.upstreamTarget(to));
      this.offered = this.ctx.saslOffer.forStream(to, [...this.forwarded.channelBindings.keys()]);
      return;
    }
    this.conn.write(header());
    this.headerSent = true;
    // the session's upstream connection starts with the client's first stream header (a STARTTLS
    // client is still to do its TLS): docs/architecture.md §3.5, early-upstream.ts
    if (this.phase === "pre-tls" || this.phase === "tls") this.early.start(this.ctx.upstreamTarget(to));
    switch (this.phase) {
      case "pre-tls":
        this.conn.write(preTlsFeatures());
        break;
      case "tls": {
        const tls = this.conn.tlsSocket;
        const types = tls ? advertisedChannelBindingTypes([...channelBindings(tls, "server").keys()]) : [];
        this.offered = this.ctx.saslOffer.forStream(to, types);
        this.conn.write(saslFeatures(this.offered, types));
        break;
      }
      case "authed":
        // a SCRAM login answered before its upstream leg was ready (§3.5): the features follow it
        if (!this.session) {
          this.featuresWanted = true;
          break;
        }
        this.conn.write(this.upstreamFeatures);
        this.phase = "open";
        break;
      default:
        this.fail("not-authorized", "unexpected stream restart");
    }
  }

  onStanza(name: string, bytes: Buffer): void {
    metrics.stanza("in", name, bytes.length);
    switch (this.phase) {
      case "open":
        if (NEGOTIATION_ELEMENTS.has(name)) {
          this.log.info({ element: name }, "negotiation element after authentication");
          return this.fail("unsupported-stanza-type", "already authenticated");
        }
        if (SM_ELEMENTS.has(name) && this.onSmElement(name, bytes)) return;
        return this.session?.fromClient(name, bytes);
      case "pre-tls":
        if (name === "starttls") return void this.startTls();
        return this.fail("policy-violation", "encryption is required: use STARTTLS");
      case "tls":
        if (name === "auth" && this.ctx.forward && !this.forwarded) return void this.authOrForward(bytes);
        return this.sasl.onElement(name, bytes);
      case "authenticating":
        return this.fail("not-authorized", "stanza sent during authentication");
      default:
        return this.fail("not-authorized", "stanza sent before the stream restart");
    }
  }

  onClose(): void {
    this.log.debug("client closed the stream");
    this.session?.clientEnded();
    this.conn.end();
  }

  onFramingError(err: FramingError): void {
    this.log.info({ code: err.code, condition: err.condition, reason: err.message }, "bad input from client");
    metrics.limitBreach("client", err.code, this);
    this.fail(err.condition, err.message);
  }

  onSocketClosed(err?: Error): void {
    const was = this.phase;
    this.phase = "closed";
    clearTimeout(this.authTimer);
    this.ctx.buffers.forget(this);
    this.sasl.close();
    this.early.close();
    const jid = this.jid;
    // after a stream error or the client's own close the session has ended already; otherwise a
    // resumable one hibernates (docs/architecture.md §8.4)
    this.session?.connectionLost(this);
    this.log.info({ jid, phase: was, ms: Date.now() - this.startedAt, bytesIn: this.conn.bytesIn, bytesOut: this.conn.bytesOut,
      error: err?.message }, "connection closed");
    this.events.closed(this);
  }

  // ---------------------------------------------------------------- cluster forwarding (§8.7)

  /**
   * A cluster member: the account the client names in its <auth/> may be owned by another node; then
   * the stream goes there (Forwarder.tryForward), else SASL runs here as usual.
   */
  private async authOrForward(bytes: Buffer): Promise<void> {
    const fwd = this.ctx.forward!;
    const tls = this.conn.tlsSocket;
    const domain = this.domain ?? this.ctx.config.domains[0]!;
    let account: string | undefined;
    try {
      const el = parseStanza(bytes);
      account = authAccount(String(el.attrs.mechanism ?? ""), el.getText(), domain);
    } catch {
      account = undefined;
    }
    // a TCP client's TLS socket is piped to the owner as it is; a WebSocket's framing is translated (ws-splice.ts)
    const ws = this.conn instanceof WebSocketConnection ? this.conn : undefined;
    const tcp = this.conn instanceof XmppConnection && tls !== undefined ? this.conn : undefined;
    const conn = ws ?? tcp;
    if (account === undefined || conn === undefined) return this.sasl.onElement("auth", bytes);
    this.phase = "authenticating";
    conn.pause();
    const replay = Buffer.concat([Buffer.from(`<?xml version='1.0'?><stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' to='${domain}' version='1.0'>`), bytes]);
    const forwarded = await fwd.tryForward({ account, domain, ip: this.ip ?? "", channelBindings: tls ? channelBindings(tls, "server") : new Map(),
      ...(this.transport !== "websocket" ? { transport: this.transport } : { websocket: true }) }, replay, () => {
      if (this.phase !== "authenticating" || conn.isClosed) return undefined;
      clearTimeout(this.authTimer);
      this.phase = "closed";
      this.ctx.buffers.forget(this);
      this.sasl.close();
      this.early.close();
      this.log.info({ account }, "connection forwarded to the account's owner node");
      this.events.closed(this);
      if (ws) return new WebSocketSplice(ws, { maxStanzaSize: this.ctx.config.limits.maxStanzaSize, maxDepth: this.ctx.config.limits.maxDepth }, this.log);
      return tcp!.release() as TLSSocket;
    });
    if (forwarded || this.phase !== "authenticating") return;
    this.phase = "tls";
    conn.resume();
    this.sasl.onElement("auth", bytes);
  }

  // ---------------------------------------------------------------- negotiation

  private async startTls(): Promise<void> {
    this.conn.write(`<proceed xmlns='${NS_TLS}'/>`);
    this.headerSent = false;
    try {
      await this.conn.upgradeServer({
        secureContext: this.ctx.certs.contextFor(this.domain),
        SNICallback: this.ctx.certs.sniCallback,
        minVersion: "TLSv1.2",
      }, this.ctx.config.limits.authTimeoutMs);
      this.phase = "tls";
      this.log.debug({ protocol: this.conn.tlsProtocol }, "TLS established");
    } catch (err) {
      this.log.info({ reason: (err as Error).message }, "TLS handshake failed");
      metrics.tlsHandshakeFailed(this.transport);
      this.conn.destroy();
    }
  }

  /** What the SASL exchange may do to this stream. */
  private saslHost(): SaslHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const stream = this;
    return {
      ctx: this.ctx,
      log: this.log,
      get domain() {
        return stream.domain ?? stream.ctx.config.domains[0]!;
      },
      get waiting() {
        return stream.phase === "authenticating";
      },
      get offered() {
        return stream.offered;
      },
      upstream: () => this.early.take(this.ctx.upstreamTarget(this.domain ?? this.ctx.config.domains[0]!)),
      channelBindings: () => {
        if (this.forwarded) return this.forwarded.channelBindings;
        const tls = this.conn.tlsSocket;
        return tls ? channelBindings(tls, "server") : new Map<string, Buffer>();
      },
      write: (xml) => void this.conn.write(xml),
      fail: (condition, text) => this.fail(condition, text),
      onFramingError: (err) => this.onFramingError(err),
      busy: (username) => {
        // a forwarded stream is accepted for the account whose lease this node holds, and no other
        if (this.forwarded && `${username.toLowerCase()}@${this.domain ?? ""}` !== this.forwarded.account) {
          this.log.warn({ account: this.forwarded.account, code: "FORWARD_MISMATCH" }, "forwarded stream authenticates another account");
          return this.fail("not-authorized", "forwarded for another account");
        }
        this.phase = "authenticating";
        this.username = username;
      },
      ready: () => {
        if (this.phase === "authenticating") this.phase = "tls";
      },
      authenticated: (up, outcome) => {
        if (up instanceof Promise) {
          up.then((u) => this.upstreamReady(u, outcome), (err: unknown) => this.upstreamFailedAfterSuccess(err));
        } else {
          this.upstreamReady(up, outcome);
        }
        clearTimeout(this.authTimer);
        this.early.close();
        this.events.authenticated?.(this);
        this.conn.framer.setLimits({ maxStanzaSize: this.ctx.config.limits.maxStanzaSize });
        this.phase = "authed";
        this.conn.restart();
        this.headerSent = false;
        // RFC 6120 §6.4.6: SCRAM's server-final-message travels as additional data with success
        this.conn.write(outcome.additionalData ? `<success xmlns='${NS_SASL}'>${outcome.additionalData}</success>` : `<success xmlns='${NS_SASL}'/>`);
      },
    };
  }

  /** The session's upstream leg is logged in: the session exists from here on. */
  private upstreamReady(up: AuthenticatedUpstream, outcome: LoginOutcome): void {
    if (this.phase === "closed" || this.ending) {
      up.conn.end();
      return;
    }
    this.upstreamFeatures = filterPostAuthFeatures(up.features, [smFeature()]);
    this.session = new BoundSession(this.ctx, up, outcome.secret, this.log, this);
    if (this.featuresWanted) {
      this.featuresWanted = false;
      this.conn.write(this.upstreamFeatures);
      this.phase = "open";
    }
  }

  /**
   * The upstream leg of a login already answered with <success/> failed (§3.5): the stream ends with
   * not-authorized and the reason (the server refused the record's secret), or remote-connection-failed.
   */
  private upstreamFailedAfterSuccess(err: unknown): void {
    if (this.phase === "closed" || this.ending) return;
    const ue = err instanceof UpstreamError ? err : undefined;
    if (ue?.code === "UPSTREAM_AUTH") {
      this.log.info({ condition: ue.condition }, "upstream refused the login after the proxy verified it");
      return this.fail("not-authorized", ue.text ?? "the server refused the login");
    }
    this.log.warn({ code: ue?.code ?? "INTERNAL", reason: (err as Error).message }, "upstream unavailable");
    metrics.upstreamFailed("session", ue?.code);
    this.fail(ue?.streamCondition ?? "remote-connection-failed", ue?.condition === "host-unknown" ? "the server does not serve this domain" : "the proxy could not reach the server");
  }

  // ---------------------------------------------------------------- XEP-0198 (docs/architecture.md §8.4)

  /**
   * A top-level element named like an SM nonza. Returns false when it is not one (another namespace:
   * it goes on as a stanza would). SM nonzas never reach the upstream: the server's SM is not
   * enabled on this leg, the proxy terminates it.
   */
  private onSmElement(name: string, bytes: Buffer): boolean {
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch (err) {
      this.onFramingError(err as FramingError);
      return true;
    }
    const ns = el.getNS();
    if (ns === NS_SM_2) {
      // never offered: passed upstream it would enable the server's own SM on this leg
      this.log.info({ element: name }, "XEP-0198 urn:xmpp:sm:2 element: only urn:xmpp:sm:3 is offered");
      this.fail("unsupported-stanza-type", "only urn:xmpp:sm:3 stream management is offered");
      return true;
    }
    if (ns !== NS_SM_3) return false;
    const session = this.session;
    if (!session) return true;
    const nz = parseSmNonza(el);
    switch (nz.kind) {
      case "enable":
        session.smEnable(nz);
        return true;
      case "r":
        session.smRequest();
        return true;
      case "a":
        session.smAck(nz.h);
        return true;
      case "resume":
        this.resume(session, nz.previd, nz.h);
        return true;
      case "invalid":
        this.log.info({ element: nz.element, reason: nz.reason }, "invalid XEP-0198 element");
        if (nz.element === "enable" || nz.element === "resume") this.conn.write(failed("bad-request"));
        else this.fail(nz.element === "a" ? "invalid-xml" : "unsupported-stanza-type", nz.reason);
        return true;
    }
  }

  /**
   * <resume previd h/> (XEP-0198 §5), after SASL and before bind: the id must name a live or
   * hibernating session of the account this stream authenticated as. Otherwise <failed/>
   * (item-not-found, with the h a tombstone kept) and the client may bind on this stream: its own
   * leg from SASL (`fresh`) is still there.
   */
  private resume(fresh: BoundSession, previd: string, h: number): void {
    if (fresh.jid !== undefined) {
      this.log.info("<resume/> after bind refused");
      this.conn.write(failed("unexpected-request"));
      return;
    }
    const account = `${this.username ?? ""}@${this.domain ?? ""}`.toLowerCase();
    const found = this.ctx.resumption.lookup(previd, account);
    if (found.kind === "failed") {
      this.log.info({ h: found.h }, "resume failed: unknown or expired id");
      metrics.sm("resume_failed");
      this.conn.write(failed("item-not-found", found.h));
      return;
    }
    if (found.session.resumeOn(this, h, fresh)) this.session = found.session;
  }

  /** The session moved to another stream (it was resumed there): this stream is closed, the session untouched. */
  replaced(): void {
    this.session = undefined;
    this.log.info("session resumed on another stream: closing this one");
    this.fail("conflict", "the session was resumed on another stream");
  }

  // ---------------------------------------------------------------- output budget

  /**
   * --max-buffered-bytes: after a write to the client, tell the proxy-wide budget what this stream
   * holds; when all clients together hold more than the cap, the ones holding the most are cut.
   */
  countOutput(): void {
    if (this.phase !== "open" || this.ending) return;
    const queued = this.conn.writableLength;
    if (queued < UNCOUNTED_OUTPUT && !this.budgetDrainArmed) return;
    if (!this.budgetDrainArmed && queued > 0) {
      this.budgetDrainArmed = true;
      this.conn.onceDrain(() => {
        this.budgetDrainArmed = false;
        this.ctx.buffers.forget(this);
      });
    }
    const verdict = this.ctx.buffers.note(this, queued);
    for (const v of verdict?.victims ?? []) v.holder.cutForBuffers(v.bytes, verdict!.total);
  }

  get pendingOutput(): number {
    return this.phase === "closed" ? 0 : this.conn.writableLength;
  }

  /**
   * Cut by the proxy-wide budget: resource-constraint (RFC 6120 §4.9.3.18, the server lacks the
   * resources to serve the stream), not policy-violation — this client broke no per-client rule,
   * the proxy as a whole is short. Its memory is freed when the socket closes (at most the close
   * grace period later, since a client that does not read cannot take the stream error either).
   */
  cutForBuffers(queued: number, total: number): void {
    if (this.phase === "closed" || this.ending) return;
    this.log.warn({ jid: this.jid, queued, total, cap: this.ctx.config.limits.maxBufferedBytes, code: "BUFFERED_TOTAL" },
      "client is not reading: disconnecting (proxy-wide unread output over --max-buffered-bytes)");
    metrics.limitBreach("client", "BUFFERED_TOTAL", this);
    this.fail("resource-constraint", "the proxy holds too much unread data");
  }

  // ---------------------------------------------------------------- teardown

  /**
   * A stream error to the client (with our header first if none was sent), then close; the session
   * ends with it (no hibernation after a stream error). `appCondition`: see ClientConnection.fail.
   */
  fail(condition: StreamErrorCondition, text?: string, header?: string, appCondition?: string, conditionText?: string): void {
    if (this.phase === "closed") return;
    this.ending = true;
    this.ctx.buffers.forget(this);
    this.early.close();
    const h = header ?? (this.headerSent ? undefined : streamHeader({ from: this.domain ?? this.ctx.config.domains[0], id: randomBytes(8).toString("hex") }));
    this.conn.fail(condition, text, h, appCondition, conditionText);
    this.session?.streamFailed();
  }

  /** Graceful shutdown of this stream (SIGTERM). */
  shutdown(): void {
    this.fail("system-shutdown", "the proxy is shutting down");
  }

  /**
   * What a stopping cluster node needs to send this stream elsewhere (docs/architecture.md §8.7): its
   * account and transport, for an authenticated stream. Undefined before authentication (no account to
   * choose a node by; RFC 6120 §4.9.3.19 also advises against redirecting before the stream is
   * protected). A stream forwarded from another node is sent by the transport its client used there
   * (carried in the forwarding header; unknown from a node of an earlier version: not redirectable).
   * A WebSocket client gets RFC 7395 §3.6.1 `see-other-uri` instead of `<see-other-host/>`.
   */
  get redirectable(): { account: string; transport: "starttls" | "direct-tls" | "websocket" } | undefined {
    if (this.phase !== "open" && this.phase !== "authed") return undefined;
    if (this.username === undefined || this.domain === undefined) return undefined;
    const transport = this.forwarded ? (this.forwarded.websocket ? "websocket" : this.forwarded.transport) : this.transport;
    if (transport === undefined) return undefined;
    if (transport === "websocket" ? !(this.conn instanceof WebSocketConnection || this.forwarded) : !(this.conn instanceof XmppConnection)) return undefined;
    return { account: `${this.username}@${this.domain}`.toLowerCase(), transport };
  }

  /**
   * SIGTERM of a cluster node: the client reconnects to `address`, "host:port" in RFC 6120 §4.9.3.19
   * `<see-other-host/>` (TCP), a wss URI in RFC 7395 §3.6.1 `<close see-other-uri/>` (WebSocket). A
   * WebSocket client forwarded here gets that `<close/>` on the link as a top-level element: its
   * forwarding node (ws-splice.ts) passes it on as its client's closing message.
   */
  redirect(address: string): void {
    const ws = this.conn instanceof WebSocketConnection ? this.conn : undefined;
    if (!ws && !this.forwarded?.websocket) {
      this.log.info({ to: address }, "client sent to another node (see-other-host)");
      return this.fail("see-other-host", "the proxy node is restarting", undefined, undefined, address);
    }
    if (this.phase === "closed") return;
    this.log.info({ to: address }, "client sent to another node (see-other-uri)");
    this.ending = true;
    this.ctx.buffers.forget(this);
    this.early.close();
    if (ws) ws.redirect(address);
    else {
      this.conn.write(seeOtherUriClose(address));
      this.conn.end();
    }
    this.session?.streamFailed();
  }
}
