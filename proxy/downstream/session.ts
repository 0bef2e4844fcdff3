import type { Socket } from "node:net";
import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { rawBare } from "../../core/jid.js";
import { FramingError, type StreamErrorCondition } from "../../core/xml/errors.js";
import { escapeXML, parseStanza } from "../../core/xml/element.js";
import { NS_BIND, NS_CARBONS, NS_CLIENT, NS_MUC, NS_SASL, NS_STREAM, NS_TLS } from "../../core/xml/ns.js";
import { streamHeader } from "../../core/xml/stream.js";
import { parsePlainResponse } from "../../core/sasl/plain.js";
import { SaslError } from "../../core/sasl/errors.js";
import type { Logger } from "../log.js";
import type { OutputHolder, ProxyContext } from "../context.js";
import { XmppConnection, type ConnectionOptions, type StreamHandler } from "../stream/xmpp-connection.js";
import type { ClientConnection } from "../stream/client-connection.js";
import { openUpstream, type AuthenticatedUpstream, type UpstreamSecret } from "../upstream/connect.js";
import type { AccountHub, SessionLink } from "../account/account-hub.js";
import { bytesInclude, peekAttr } from "../../core/xml/peek.js";
import { UpstreamError } from "../upstream/errors.js";
import { filterPostAuthFeatures, preTlsFeatures, saslFeatures } from "./features.js";
import { metrics } from "../metrics.js";

export type Transport = "starttls" | "direct-tls" | "websocket";

/** Builds a non-TCP client connection (WebSocket) for a session: it becomes the connection's handler. */
export type ConnectionFactory = (handler: StreamHandler, opts: ConnectionOptions) => ClientConnection;

type Phase =
  | "pre-tls" // plain TCP: only STARTTLS is allowed
  | "tls" // encrypted, not authenticated: only SASL
  | "authenticating" // waiting for the upstream's verdict
  | "authed" // SASL done: waiting for the client's stream restart
  | "open" // stanzas flow through
  | "closed";

/** RFC 6120 §6.5 SASL conditions; anything else from upstream becomes not-authorized. */
const SASL_CONDITIONS = new Set([
  "aborted", "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding",
  "invalid-authzid", "invalid-mechanism", "malformed-request", "mechanism-too-weak", "not-authorized",
  "temporary-auth-failure",
]);
const MAX_AUTH_ATTEMPTS = 3;
/**
 * Largest element accepted before authentication. A SASL PLAIN <auth/> is at most ~6.5 KB
 * (core/sasl/plain.ts bounds), so an unauthenticated peer never makes the proxy buffer a full
 * --max-stanza-size; an oversized SASL payload is cut with <policy-violation/> while it arrives.
 */
export const PRE_AUTH_MAX_STANZA = 16_384;
/**
 * Output below this is not counted against --max-buffered-bytes: one socket buffer's worth (Node's
 * default high-water mark), which every busy client has for a moment. From it on, the socket
 * reports when it has drained, which is when the session stops being counted.
 */
export const UNCOUNTED_OUTPUT = 16_384;

export interface SessionEvents {
  closed(session: DownstreamSession): void;
  /** SASL succeeded: the connection no longer counts as unauthenticated (server limits). */
  authenticated?(session: DownstreamSession): void;
}

/**
 * Top-level elements refused once the stream is authenticated: a second SASL exchange or STARTTLS
 * (a replayed <auth/> must never re-authenticate the stream as someone else). Prosody answers the
 * same with <unsupported-stanza-type/>; the proxy refuses it itself, before anything goes upstream.
 */
const NEGOTIATION_ELEMENTS = new Set(["auth", "response", "abort", "challenge", "success", "failure", "starttls", "proceed"]);


/**
 * One client connection and the upstream stream opened for it. Pre-authentication the proxy is
 * the server (TLS, SASL PLAIN); after the server accepted the credentials it is a relay that
 * passes stanzas through byte for byte, in both directions.
 */
export class DownstreamSession implements StreamHandler, OutputHolder {
  readonly id: string;
  readonly log: Logger;
  readonly transport: Transport;
  readonly conn: ClientConnection;
  private phase: Phase;
  private headerSent = false;
  private domain: string | undefined;
  private upstream: AuthenticatedUpstream | undefined;
  private upstreamFeatures = "";
  private authAttempts = 0;
  private awaitingPlainResponse = false;
  private authTimer: NodeJS.Timeout | undefined;
  /** Running while the client's socket is congested on the relay path (see backOff). */
  private stallTimer: NodeJS.Timeout | undefined;
  readonly startedAt = Date.now();
  username: string | undefined;
  /** The full JID the server bound (RFC 6120 §7), once known. */
  jid: string | undefined;
  /** The client closed its stream first: the upstream's closing is then the answer, not a loss. */
  private clientClosed = false;
  /** The account-level MUC layer for this session's account, once bound. */
  private account: AccountHub | undefined;
  /** This session's link in its account (identity matters: a later stream may bind the same JID). */
  private link: SessionLink | undefined;
  /** Held from authentication until bind, then handed to the account (and dropped here). */
  private secret: UpstreamSecret | undefined;
  /** A drain listener is waiting to take this session off the proxy-wide output budget. */
  private budgetDrainArmed = false;
  /** A stream error was sent (fail): the session is on its way out. */
  private ending = false;

  constructor(private readonly ctx: ProxyContext, socket: Socket | ConnectionFactory, transport: Transport, private readonly events: SessionEvents,
    /** The client's address: the socket's, or what a PROXY protocol header reported. */
    readonly ip: string | undefined = typeof socket === "function" ? undefined : socket.remoteAddress) {
    this.id = ctx.nextConnId();
    this.transport = transport;
    // a WebSocket is encrypted already (wss), or plain on loopback behind a TLS-terminating proxy
    this.phase = transport === "starttls" ? "pre-tls" : "tls";
    this.log = ctx.log.child({ conn: this.id, transport, ip });
    const limits = { maxStanzaSize: ctx.config.limits.maxStanzaSize, maxDepth: ctx.config.limits.maxDepth };
    const opts = { limits, keepaliveMs: ctx.config.keepaliveMs };
    this.conn = typeof socket === "function" ? socket(this, opts) : new XmppConnection(socket, this, opts);
    this.conn.framer.setLimits({ maxStanzaSize: Math.min(limits.maxStanzaSize, PRE_AUTH_MAX_STANZA) });
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

  // ---------------------------------------------------------------- stream handler (client side)

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
    this.conn.write(header());
    this.headerSent = true;
    switch (this.phase) {
      case "pre-tls":
        this.conn.write(preTlsFeatures());
        break;
      case "tls":
        this.conn.write(saslFeatures());
        break;
      case "authed":
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
        return this.toUpstream(name, bytes);
      case "pre-tls":
        if (name === "starttls") return void this.startTls();
        return this.fail("policy-violation", "encryption is required: use STARTTLS");
      case "tls":
        return this.onSasl(name, bytes);
      case "authenticating":
        return this.fail("not-authorized", "stanza sent during authentication");
      default:
        return this.fail("not-authorized", "stanza sent before the stream restart");
    }
  }

  onClose(): void {
    this.clientClosed = true;
    this.log.debug("client closed the stream");
    this.upstream?.conn.end();
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
    clearTimeout(this.stallTimer);
    this.ctx.buffers.forget(this);
    this.upstream?.conn.end();
    this.secret = undefined;
    if (this.account && this.link) {
      this.account.detach(this.link);
      this.ctx.accounts.collect(this.account.bare);
    }
    this.log.info({ jid: this.jid, phase: was, ms: Date.now() - this.startedAt, bytesIn: this.conn.bytesIn, bytesOut: this.conn.bytesOut,
      error: err?.message }, "connection closed");
    this.events.closed(this);
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

  private onSasl(name: string, bytes: Buffer): void {
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch (err) {
      return this.onFramingError(err as FramingError);
    }
    if (el.attrs.xmlns !== NS_SASL) return this.fail("not-authorized", "authenticate first");
    if (name === "abort") {
      this.awaitingPlainResponse = false;
      return this.saslFailure("aborted");
    }
    if (name === "response" && this.awaitingPlainResponse) {
      this.awaitingPlainResponse = false;
      return this.authenticate(el.getText());
    }
    if (name !== "auth") return this.saslFailure("malformed-request");
    if (el.attrs.mechanism !== "PLAIN") return this.saslFailure("invalid-mechanism");
    const initial = el.getText().trim();
    if (initial === "") {
      // RFC 6120 §6.4.2 / RFC 4616: no initial response, so ask for it with an empty challenge
      this.awaitingPlainResponse = true;
      this.conn.write(`<challenge xmlns='${NS_SASL}'/>`);
      return;
    }
    this.authenticate(initial);
  }

  private authenticate(b64: string): void {
    let creds: { authzid: string; authcid: string; password: string };
    try {
      creds = parsePlainResponse(b64.trim());
    } catch (err) {
      if (err instanceof SaslError) return this.saslFailure(err.condition);
      throw err;
    }
    const domain = this.domain ?? this.ctx.config.domains[0]!;
    const authcid = creds.authcid;
    if (creds.authzid && creds.authzid.toLowerCase() !== `${authcid}@${domain}`.toLowerCase()) {
      return this.saslFailure("invalid-authzid");
    }
    this.phase = "authenticating";
    this.username = authcid;
    const log = this.log.child({ user: `${authcid}@${domain}` });
    openUpstream(this.ctx.upstreamTarget(domain), authcid, { password: creds.password }).then(
      (up) => {
        if (this.phase !== "authenticating") {
          up.conn.end();
          return;
        }
        this.upstream = up;
        this.upstreamFeatures = filterPostAuthFeatures(up.features);
        up.conn.setHandler(this.upstreamHandler);
        clearTimeout(this.authTimer);
        this.events.authenticated?.(this);
        this.conn.framer.setLimits({ maxStanzaSize: this.ctx.config.limits.maxStanzaSize });
        // keep SCRAM's SaltedPassword, not the password (unless upstream only offered PLAIN): docs/architecture.md §3.3
        this.secret = up.scram ?? { password: creds.password };
        this.phase = "authed";
        this.conn.restart();
        this.headerSent = false;
        this.conn.write(`<success xmlns='${NS_SASL}'/>`);
        log.info({ mechanism: up.mechanism, upstreamMs: up.connectMs }, "authenticated");
        metrics.authSucceeded(up.connectMs);
      },
      (err: unknown) => {
        if (this.phase !== "authenticating") return;
        if (err instanceof UpstreamError && err.code === "UPSTREAM_AUTH") {
          this.phase = "tls";
          log.info({ condition: err.condition }, "authentication failed upstream");
          return this.saslFailure(SASL_CONDITIONS.has(err.condition) ? err.condition : "not-authorized", err.text);
        }
        const ue = err instanceof UpstreamError ? err : undefined;
        log.warn({ code: ue?.code ?? "INTERNAL", reason: (err as Error).message }, "upstream unavailable");
        metrics.upstreamFailed("session", ue?.code);
        this.fail(ue?.streamCondition ?? "remote-connection-failed",
          ue?.condition === "host-unknown" ? "the server does not serve this domain" : "the proxy could not reach the server");
      },
    );
  }

  private saslFailure(condition: string, text?: string): void {
    const t = text ? `<text xml:lang='en'>${escapeXML(text)}</text>` : "";
    this.conn.write(`<failure xmlns='${NS_SASL}'><${condition}/>${t}</failure>`);
    metrics.authFailed(condition);
    if (condition !== "aborted" && ++this.authAttempts >= MAX_AUTH_ATTEMPTS) {
      // RFC 6120 §6.4.5: the server may limit retries and then close the stream
      metrics.limitBreach("client", "AUTH_ATTEMPTS");
      this.fail("policy-violation", "too many failed authentication attempts");
    }
  }

  // ---------------------------------------------------------------- relay

  private toUpstream(name: string, bytes: Buffer): void {
    const up = this.upstream;
    if (!up) return;
    if (this.account && this.link && this.mayConcernRoom(name, bytes)) {
      let el: Element;
      try {
        el = parseStanza(bytes);
      } catch (err) {
        return this.onFramingError(err as FramingError);
      }
      if (this.account.fromClient(this.link, el)) return;
    }
    if (!up.conn.write(bytes)) this.backOff(this.conn, up.conn);
  }

  /**
   * The fast path: only stanzas addressed to a room the account knows, and MUC joins, are parsed
   * and given to the room machine; everything else is forwarded as the client sent it.
   */
  private mayConcernRoom(name: string, bytes: Buffer): boolean {
    if (name !== "presence" && name !== "message" && name !== "iq") return false;
    const to = peekAttr(bytes, "to");
    // a broadcast presence also updates the account's presence in the rooms this session joined
    if (!to) return name === "presence" && this.account!.rooms.hasState();
    if (this.account!.knowsRoom(rawBare(to).toLowerCase())) return true;
    // Every presence with a `to` is looked at (rare next to messages): a join whose MUC namespace is
    // spelled with character references must not slip past the account layer and its room limit.
    // A `to` with a character reference cannot be judged from the bytes either.
    return name === "presence" || to.includes("&") || bytesInclude(bytes, NS_MUC);
  }

  /**
   * Flow control: stop reading from `reader` until `writer`'s socket drained. When the writer is
   * the client and it does not drain within --slow-client-timeout, it is cut (policy-violation):
   * its own upstream leg must not stay paused, and the server buffering for it, forever.
   */
  private backOff(reader: ClientConnection, writer: ClientConnection): void {
    reader.pause();
    writer.onceDrain(() => {
      if (writer === this.conn) {
        clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
      }
      reader.resume();
    });
    if (writer === this.conn && this.stallTimer === undefined) {
      this.stallTimer = setTimeout(() => {
        this.log.warn({ queued: this.conn.writableLength, code: "SLOW_CLIENT_TIMEOUT" }, "client is not reading: disconnecting");
        metrics.limitBreach("client", "SLOW_CONSUMER", this);
        this.fail("policy-violation", "too much unread data");
      }, this.ctx.config.limits.slowClientTimeoutMs);
      this.stallTimer.unref();
    }
  }

  private readonly upstreamHandler: StreamHandler = {
    onOpen: () => {
      this.log.warn("upstream restarted its stream unexpectedly");
      this.fail("remote-connection-failed", "the server restarted the stream");
    },
    onStanza: (name, bytes) => {
      metrics.stanza("out", name, bytes.length);
      if (name === "stream:error") {
        // pass the server's own condition (conflict, system-shutdown, policy-violation, …) through
        this.log.info("upstream sent a stream error");
        this.conn.write(bytes);
        this.conn.end();
        this.upstream?.conn.end();
        return;
      }
      if (name === "iq" && this.jid === undefined) this.captureBind(bytes);
      let out: Buffer | string = bytes;
      if (name === "message" && this.account && this.jid && this.account.rooms.hasState() && bytesInclude(bytes, NS_CARBONS)) {
        let v: ReturnType<AccountHub["carbonOnLeg"]> = { kind: "pass" };
        try {
          v = this.account.carbonOnLeg(this.jid, parseStanza(bytes));
        } catch {
          // the framer accepted it; what ltx cannot read is not a carbon to act on: pass it as it came
        }
        if (v.kind === "drop") return;
        if (v.kind === "deliver") out = v.stanza.toString();
      }
      if (!this.conn.write(out) && this.upstream) this.backOff(this.upstream.conn, this.conn);
      this.countOutput();
    },
    onClose: () => {
      this.log.info("upstream closed the stream");
      if (this.clientClosed) return this.conn.end();
      // The server ended the stream on its own without a stream error (going down): say what a
      // server says then (RFC 6120 §4.9.3.19), so the client reconnects now rather than after its
      // own timeouts.
      this.fail("system-shutdown", "the server closed the stream");
    },
    onFramingError: (err) => {
      this.log.warn({ code: err.code, reason: err.message }, "bad input from upstream");
      metrics.limitBreach("upstream", err.code, this);
      this.upstream?.conn.destroy();
      this.fail("remote-connection-failed", "the server sent something the proxy could not read");
    },
    onSocketClosed: () => {
      if (this.phase === "closed") return;
      this.log.info("upstream connection lost");
      if (this.clientClosed) return this.conn.end();
      // The server (or the path to it) died under an open stream: connection-timeout (RFC 6120
      // §4.9.3.4, the peer "has permanently lost the ability to communicate over the stream").
      this.fail("connection-timeout", "connection to the server lost");
    },
  };

  private captureBind(bytes: Buffer): void {
    const el = parseStanza(bytes);
    if (el.attrs.type !== "result") return;
    const jid = el.getChild("bind", NS_BIND)?.getChildText("jid");
    if (jid) {
      this.jid = jid;
      this.log.info({ jid }, "resource bound");
      const account = this.ctx.accounts.get(rawBare(jid).toLowerCase());
      if (this.secret) account.setSecret(this.secret);
      this.secret = undefined;
      this.link = { jid, deliver: (s) => this.deliver(s), deliverAll: (ss) => this.deliver(ss) };
      account.attach(this.link);
      this.account = account;
    }
  }

  /**
   * Stanzas from the account layer (room fan-out, replies) for this client. Several in a row go
   * out in one write (one TLS record instead of one per stanza); a WebSocket carries exactly one
   * stanza per message (RFC 7395 §3.3.3), so there they are written one by one.
   */
  private deliver(stanzas: string | string[]): void {
    if (this.phase !== "open") return;
    let ok: boolean;
    if (typeof stanzas === "string") {
      metrics.stanzaXml("out", stanzas);
      ok = this.conn.write(stanzas);
    } else {
      for (const s of stanzas) metrics.stanzaXml("out", s);
      if (this.transport === "websocket") {
        ok = true;
        for (const s of stanzas) ok = this.conn.write(s) && ok;
      } else ok = this.conn.write(stanzas.join(""));
    }
    if (!ok && this.conn.writableLength > this.ctx.config.limits.maxStanzaSize * 64) {
      // a client that does not read must not make the proxy buffer the room for it forever
      this.log.warn({ queued: this.conn.writableLength }, "client is not reading: disconnecting");
      metrics.limitBreach("client", "SLOW_CONSUMER", this);
      this.fail("policy-violation", "too much unread data");
      return;
    }
    this.countOutput();
  }

  /**
   * --max-buffered-bytes: after a write to the client, tell the proxy-wide budget what this session
   * holds; when all clients together hold more than the cap, the ones holding the most are cut.
   */
  private countOutput(): void {
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

  /** A stream error to the client (with our header first if none was sent), then close both legs. */
  fail(condition: StreamErrorCondition, text?: string, header?: string): void {
    if (this.phase === "closed") return;
    this.ending = true;
    this.ctx.buffers.forget(this);
    const h = header ?? (this.headerSent ? undefined : streamHeader({ from: this.domain ?? this.ctx.config.domains[0], id: randomBytes(8).toString("hex") }));
    this.conn.fail(condition, text, h);
    this.upstream?.conn.end();
  }

  /** Graceful shutdown of this session (SIGTERM). */
  shutdown(): void {
    this.fail("system-shutdown", "the proxy is shutting down");
  }
}
