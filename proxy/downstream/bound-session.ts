import type { Element } from "ltx";
import { rawBare } from "../../core/jid.js";
import type { FramingError, StreamErrorCondition } from "../../core/xml/errors.js";
import { parseStanza } from "../../core/xml/element.js";
import { NS_BIND, NS_CARBONS, NS_CSI, NS_MUC } from "../../core/xml/ns.js";
import { CsiFilter } from "../../core/csi/filter.js";
import { offersCsi } from "./features.js";
import { bytesInclude, peekAttr } from "../../core/xml/peek.js";
import type { Logger } from "../log.js";
import type { ProxyContext } from "../context.js";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import type { ClientConnection } from "../stream/client-connection.js";
import type { AuthenticatedUpstream, UpstreamSecret } from "../upstream/connect.js";
import type { AccountHub, SessionLink } from "../account/account-hub.js";
import { metrics } from "../metrics.js";

export type Transport = "starttls" | "direct-tls" | "websocket";

/**
 * The client stream a session writes to (a ClientStream): its connection, and how to end it.
 * A session holds it by reference and may outlive it (docs/architecture.md §8.4).
 */
export interface SessionClient {
  readonly conn: ClientConnection;
  readonly transport: Transport;
  /** A stream error to the client, then close; the session's upstream leg closes with it. */
  fail(condition: StreamErrorCondition, text?: string): void;
  /** After a write: account the connection's unread output (--max-buffered-bytes). */
  countOutput(): void;
  /** Input the proxy cannot accept (a stream error follows). */
  onFramingError(err: FramingError): void;
}

/**
 * A client's session after authentication: its own upstream leg (opened by SASL), its link in the
 * account (once bound) and the relay between the two legs — stanzas pass through byte for byte,
 * except what may concern a room (docs/architecture.md §2). Every write to the client goes through
 * `write`, whether it comes from the own leg or from the account layer.
 */
export class BoundSession {
  /** The full JID the server bound (RFC 6120 §7), once known. */
  jid: string | undefined;
  private client: SessionClient | undefined;
  /** The account-level MUC layer for this session's account, once bound. */
  private account: AccountHub | undefined;
  /** This session's link in its account (identity matters: a later stream may bind the same JID). */
  private link: SessionLink | undefined;
  /** Held from authentication until bind, then handed to the account (and dropped here). */
  private secret: UpstreamSecret | undefined;
  /** Running while the client's socket is congested on the relay path (see backOff). */
  private stallTimer: NodeJS.Timeout | undefined;
  /** The client closed its stream first: the upstream's closing is then the answer, not a loss. */
  private clientClosed = false;
  private closed = false;
  /** XEP-0352 for what the account layer fans out to this session (docs/architecture.md §8.5). */
  private readonly csi = new CsiFilter();
  /** The server offered CSI itself: <active/>/<inactive/> are passed on for its own 1:1 traffic. */
  private readonly upstreamCsi: boolean;

  constructor(private readonly ctx: ProxyContext, private readonly upstream: AuthenticatedUpstream, secret: UpstreamSecret,
    readonly log: Logger, client: SessionClient) {
    this.secret = secret;
    this.client = client;
    this.upstreamCsi = offersCsi(upstream.features);
    upstream.conn.setHandler(this.upstreamHandler);
  }

  // ---------------------------------------------------------------- client → server

  /** A stanza from the client (negotiation is over). */
  fromClient(name: string, bytes: Buffer): void {
    const up = this.upstream;
    if ((name === "active" || name === "inactive") && peekAttr(bytes, "xmlns") === NS_CSI) return this.clientState(name, bytes);
    // XEP-0352 §5.1: what the client sends is handled after what it was held from; a stanza from
    // the client flushes what CSI held for it first (it is looking at the app)
    if (!this.csi.active && (name === "message" || name === "presence" || name === "iq")) this.writeHeld(this.csi.clientSent());
    if (this.account && this.link && this.mayConcernRoom(name, bytes)) {
      let el: Element;
      try {
        el = parseStanza(bytes);
      } catch (err) {
        return this.client?.onFramingError(err as FramingError);
      }
      if (this.account.fromClient(this.link, el)) return;
    }
    if (!up.conn.write(bytes) && this.client) this.backOff(this.client.conn, up.conn);
  }

  /**
   * <active/> / <inactive/> (XEP-0352 §4.2): applied to the room traffic the proxy fans out, and
   * passed to the own leg when the server offers CSI (its filtering then covers 1:1 traffic);
   * a server that does not offer it would answer an unknown element with a stream error.
   */
  private clientState(state: "active" | "inactive", bytes: Buffer): void {
    if (state === "inactive") this.csi.setInactive();
    else this.writeHeld(this.csi.setActive());
    this.log.debug({ state, held: this.csi.held }, "client state");
    if (this.upstreamCsi && !this.upstream.conn.write(bytes) && this.client) this.backOff(this.client.conn, this.upstream.conn);
  }

  /** Stanzas CSI held, released (in order, each with its <delay/>): the same way as any delivery. */
  private writeHeld(held: readonly string[]): void {
    if (held.length === 0) return;
    this.deliver(held, false);
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
    const client = this.client;
    const toClient = client !== undefined && writer === client.conn;
    reader.pause();
    writer.onceDrain(() => {
      if (toClient) {
        clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
      }
      reader.resume();
    });
    if (toClient && this.stallTimer === undefined) {
      this.stallTimer = setTimeout(() => {
        this.log.warn({ queued: writer.writableLength, code: "SLOW_CLIENT_TIMEOUT" }, "client is not reading: disconnecting");
        metrics.limitBreach("client", "SLOW_CONSUMER", client);
        client.fail("policy-violation", "too much unread data");
      }, this.ctx.config.limits.slowClientTimeoutMs);
      this.stallTimer.unref();
    }
  }

  // ---------------------------------------------------------------- server → client

  private readonly upstreamHandler: StreamHandler = {
    onOpen: () => {
      this.log.warn("upstream restarted its stream unexpectedly");
      this.client?.fail("remote-connection-failed", "the server restarted the stream");
    },
    onStanza: (name, bytes) => {
      metrics.stanza("out", name, bytes.length);
      if (name === "stream:error") {
        // pass the server's own condition (conflict, system-shutdown, policy-violation, …) through
        this.log.info("upstream sent a stream error");
        this.client?.conn.write(bytes);
        this.client?.conn.end();
        this.upstream.conn.end();
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
      const client = this.client;
      if (!this.write(out) && client) this.backOff(this.upstream.conn, client.conn);
      client?.countOutput();
    },
    onClose: () => {
      this.log.info("upstream closed the stream");
      if (this.clientClosed) return this.client?.conn.end();
      // The server ended the stream on its own without a stream error (going down): say what a
      // server says then (RFC 6120 §4.9.3.19), so the client reconnects now rather than after its
      // own timeouts.
      this.client?.fail("system-shutdown", "the server closed the stream");
    },
    onFramingError: (err) => {
      this.log.warn({ code: err.code, reason: err.message }, "bad input from upstream");
      metrics.limitBreach("upstream", err.code, this);
      this.upstream.conn.destroy();
      this.client?.fail("remote-connection-failed", "the server sent something the proxy could not read");
    },
    onSocketClosed: () => {
      if (this.closed) return;
      this.log.info("upstream connection lost");
      if (this.clientClosed) return this.client?.conn.end();
      // The server (or the path to it) died under an open stream: connection-timeout (RFC 6120
      // §4.9.3.4, the peer "has permanently lost the ability to communicate over the stream").
      this.client?.fail("connection-timeout", "connection to the server lost");
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
   * out in one write (one TLS record instead of one per stanza); see `write`.
   */
  private deliver(offered: string | readonly string[], filter = true): void {
    const client = this.client;
    if (this.closed || !client) return;
    let stanzas: string | readonly string[] = offered;
    if (filter && !this.csi.active) {
      stanzas = typeof offered === "string" ? this.csi.offer(offered, Date.now()) : this.csi.offerAll(offered, Date.now());
      if (stanzas.length === 0) return;
    }
    if (typeof stanzas === "string") metrics.stanzaXml("out", stanzas);
    else for (const s of stanzas) metrics.stanzaXml("out", s);
    if (!this.write(stanzas) && client.conn.writableLength > this.ctx.config.limits.maxStanzaSize * 64) {
      // a client that does not read must not make the proxy buffer the room for it forever
      this.log.warn({ queued: client.conn.writableLength }, "client is not reading: disconnecting");
      metrics.limitBreach("client", "SLOW_CONSUMER", client);
      client.fail("policy-violation", "too much unread data");
      return;
    }
    client.countOutput();
  }

  /**
   * The one way to the client, for the own leg's stanzas and the account layer's alike. Returns
   * false when the client's output is over its high-water mark. A WebSocket carries exactly one
   * stanza per message (RFC 7395 §3.3.3), so several are written one by one there.
   */
  private write(out: Buffer | string | readonly string[]): boolean {
    const client = this.client;
    if (!client) return true;
    if (typeof out === "string" || Buffer.isBuffer(out)) return client.conn.write(out);
    if (client.transport !== "websocket") return client.conn.write(out.join(""));
    let ok = true;
    for (const s of out) ok = client.conn.write(s) && ok;
    return ok;
  }

  // ---------------------------------------------------------------- lifetime

  /** The client closed its stream (</stream:stream>): end the own leg; its close answers the client. */
  clientEnded(): void {
    this.clientClosed = true;
    this.upstream.conn.end();
  }

  /** End the own leg (the client stream is being failed or shut down). */
  endUpstream(): void {
    this.upstream.conn.end();
  }

  /** The client's connection is gone: the session ends with it (own leg closed, account link detached). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.stallTimer);
    this.client = undefined;
    this.upstream.conn.end();
    this.secret = undefined;
    // what CSI held is room traffic: it stays in the room's history buffer (docs/architecture.md §8.5)
    this.csi.drop();
    if (this.account && this.link) {
      this.account.detach(this.link);
      this.ctx.accounts.collect(this.account.bare);
    }
  }
}
