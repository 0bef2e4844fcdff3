import { Element } from "ltx";
import { rawBare } from "../../core/jid.js";
import type { FramingError, StreamErrorCondition } from "../../core/xml/errors.js";
import { parseStanza } from "../../core/xml/element.js";
import { NS_BIND, NS_BOOKMARKS, NS_BOOKMARKS_LEGACY, NS_CARBONS, NS_CSI, NS_MUC, NS_PUSH } from "../../core/xml/ns.js";
import { parsePushCommand, type PushCommand } from "../../core/push/commands.js";
import { PUSH_ID_PREFIX } from "../push/account-push.js";
import { clientChange, eventChanges } from "../../core/bookmarks/stanzas.js";
import { BookmarkFetch } from "./bookmark-fetch.js";
import { CsiFilter } from "../../core/csi/filter.js";
import { offersCsi } from "./features.js";
import { bytesInclude, peekAttr } from "../../core/xml/peek.js";
import { isCounted } from "../../core/sm/counter.js";
import { enabled, failed, resumed } from "../../core/sm/elements.js";
import type { QueuedStanza } from "../../core/sm/outbound.js";
import type { Logger } from "../log.js";
import type { ProxyContext } from "../context.js";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import type { ClientConnection } from "../stream/client-connection.js";
import type { AuthenticatedUpstream, UpstreamSecret } from "../upstream/connect.js";
import type { AccountHub, SessionLink } from "../account/account-hub.js";
import type { Resumable } from "./resumption.js";
import { ClientSm } from "./stream-management.js";
import { settleUnacked } from "./unacked.js";
import { metrics } from "../metrics.js";

export type Transport = "starttls" | "direct-tls" | "websocket";

/**
 * The client stream a session writes to (a ClientStream): its connection, and how to end it.
 * A session holds it by reference and may outlive it (docs/architecture.md §8.4).
 */
export interface SessionClient {
  readonly id: string;
  readonly conn: ClientConnection;
  readonly transport: Transport;
  /** A stream error to the client, then close; the session ends with it (streamFailed). */
  fail(condition: StreamErrorCondition, text?: string, header?: string, appCondition?: string): void;
  /** After a write: account the connection's unread output (--max-buffered-bytes). */
  countOutput(): void;
  /** Input the proxy cannot accept (a stream error follows). */
  onFramingError(err: FramingError): void;
  /** The session was resumed on another stream: this one speaks for it no more and is closed. */
  replaced(): void;
}

/**
 * A client's session after authentication: its own upstream leg (opened by SASL), its link in the
 * account (once bound), the relay between the two legs — stanzas pass through byte for byte, except
 * what may concern a room (docs/architecture.md §2) — and XEP-0198 (§8.4). It may outlive its
 * connection: with resumption enabled, a dropped connection leaves it hibernating (leg logged in,
 * rooms joined, output queued) until a new stream resumes it or it expires. Every write of a stanza
 * to the client goes through `toClient`, whether it comes from the own leg or the account layer.
 */
export class BoundSession implements Resumable {
  /** The full JID the server bound (RFC 6120 §7), once known. */
  jid: string | undefined;
  readonly startedAt = Date.now();
  /** The connection it was created on (logs, status). */
  readonly connId: string;
  readonly transport: Transport;
  private client: SessionClient | undefined;
  /** The bookmark fetch made on the own leg after bind, until its three answers are in (docs/architecture.md §4.6). */
  private bookmarkFetch: BookmarkFetch | undefined;
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
  /** Ended: own leg closed (or closing), account link detached, nothing more is written or queued. */
  private closed = false;
  /** The own leg is lost or ended by the server: nothing can be bounced on it. */
  private upstreamGone = false;
  /** XEP-0198, once the client enabled it. */
  private sm: ClientSm | undefined;
  /** Since when the session waits for a resume (undefined: not hibernating). */
  hibernatingSince: number | undefined;
  /** XEP-0352 for what the account layer fans out to this session (docs/architecture.md §8.5). */
  private readonly csi: CsiFilter;
  /** The server offered CSI itself: <active/>/<inactive/> are passed on for its own 1:1 traffic. */
  private readonly upstreamCsi: boolean;
  /** XEP-0357 <enable/>/<disable/> IQs sent to the server, by id, awaiting its answer (§8.6). */
  private readonly pushIqs = new Map<string, PushCommand>();

  /**
   * Logged in by relaying SCRAM to the server (no record, docs/architecture.md §3.5): the proxy holds
   * nothing that logs the account session in, so this session's MUC traffic passes through its own
   * leg unchanged and it is not attached to the account layer.
   */
  readonly mucPassThrough: boolean;

  constructor(private readonly ctx: ProxyContext, private readonly upstream: AuthenticatedUpstream, secret: UpstreamSecret | undefined,
    readonly log: Logger, client: SessionClient) {
    this.secret = secret;
    this.mucPassThrough = secret === undefined;
    this.client = client;
    this.connId = client.id;
    this.transport = client.transport;
    this.upstreamCsi = offersCsi(upstream.features);
    this.csi = new CsiFilter(ctx.config.csi);
    upstream.conn.setHandler(this.upstreamHandler);
  }

  /** The account's key (lower-case bare JID), once bound. */
  private get bare(): string {
    return rawBare(this.jid ?? "").toLowerCase();
  }

  /** When a hibernating session expires, ms since the epoch (status). */
  get resumeDeadline(): number | undefined {
    return this.hibernatingSince === undefined || !this.sm ? undefined : this.hibernatingSince + this.sm.timeoutMs;
  }

  // ---------------------------------------------------------------- client → server

  /** A stanza from the client (negotiation is over; SM nonzas are handled apart). */
  fromClient(name: string, bytes: Buffer): void {
    const up = this.upstream;
    if ((name === "active" || name === "inactive") && peekAttr(bytes, "xmlns") === NS_CSI) return this.clientState(name, bytes);
    // XEP-0352 §5.1: what the client sends is handled after what it was held from; a stanza from
    // the client flushes what CSI held for it first (it is looking at the app)
    if (!this.csi.active && (name === "message" || name === "presence" || name === "iq")) this.writeHeld(this.csi.clientSent());
    if (name === "iq" && this.account && bytesInclude(bytes, NS_PUSH)) this.pushCommand(bytes);
    // a bookmark change on its way to the server (docs/architecture.md §4.6): followed, and passed on
    if (name === "iq" && this.account?.followsBookmarks && bytesInclude(bytes, "bookmarks")) this.noticeClientBookmarks(bytes);
    if (this.account && this.link && this.mayConcernRoom(name, bytes)) {
      let el: Element;
      try {
        el = parseStanza(bytes);
      } catch (err) {
        return this.client?.onFramingError(err as FramingError);
      }
      if (this.account.fromClient(this.link, el)) return void this.sm?.inbound.handled(name);
    }
    if (!up.conn.write(bytes) && this.client) this.backOff(this.client.conn, up.conn);
    // XEP-0198 §4: handled = the proxy took responsibility for it (forwarded, or taken by the account layer)
    this.sm?.inbound.handled(name);
  }

  /** A client's IQ that may change the account's bookmarks (XEP-0402 publish/retract, XEP-0048 store). */
  private noticeClientBookmarks(bytes: Buffer): void {
    const found = this.parsedForAccount(bytes);
    if (!found) return;
    const change = clientChange(found.el, found.account.bare);
    if (change) void found.account.bookmarkChanged(change);
  }

  /**
   * XEP-0357 <enable/>/<disable/> (docs/architecture.md §8.6): recorded for this session's device,
   * then passed to the server as sent, so that a server with a push module of its own pushes where it
   * can (offline and archived messages). Its answer is looked at in `pushCommandAnswer`.
   */
  private pushCommand(bytes: Buffer): void {
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch {
      return; // the relay below reports what cannot be read
    }
    const cmd = parsePushCommand(el, this.bare);
    const id = el.attrs.id;
    if (!cmd || !this.jid) return;
    if (cmd.kind === "enable") this.account!.push.enable(this.jid, cmd.registration);
    else this.account!.push.disable(this.jid, cmd.service, cmd.node);
    if (typeof id !== "string") return;
    this.pushIqs.set(id, cmd);
    // a client that never waits for answers must not grow this: the oldest goes
    if (this.pushIqs.size > 8) this.pushIqs.delete(this.pushIqs.keys().next().value as string);
  }

  /**
   * The server's answer to a push command of the client. A result from an <enable/> says the server
   * pushes too (so the proxy leaves it the archived room PMs of an ended session, §8.6). An error
   * (a server without a push module: stock Prosody 0.12 without mod_cloud_notify, ejabberd without
   * mod_push) becomes a result: the proxy holds the registration and pushes itself, which is what the
   * client asked for (XEP-0357 §5: the result confirms that notifications are enabled).
   */
  private pushCommandAnswer(cmd: PushCommand, bytes: Buffer): Buffer {
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch {
      return bytes;
    }
    if (el.attrs.type === "result") {
      if (cmd.kind === "enable" && this.jid) this.account?.push.serverAccepted(this.jid, cmd.registration);
      return bytes;
    }
    const condition = el.getChild("error")?.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")?.name;
    this.log.info({ command: cmd.kind, condition }, "the server refused a push command: the proxy answers it (it pushes itself)");
    const attrs: Record<string, string> = { type: "result" };
    for (const a of ["id", "from", "to"]) if (typeof el.attrs[a] === "string") attrs[a] = el.attrs[a] as string;
    return Buffer.from(new Element("iq", attrs).toString());
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

  /**
   * XEP-0352 §5.2: the client state is not restored on a resumed stream, which starts active. What
   * CSI held is written (after the re-sent queue), and a server told <inactive/> hears <active/>.
   */
  private resetClientState(): void {
    if (this.csi.active) return;
    this.writeHeld(this.csi.setActive());
    if (this.upstreamCsi) this.upstream.conn.write(`<active xmlns='${NS_CSI}'/>`);
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
    if (this.closed) return;
    const client = this.client;
    const toClient = client !== undefined && writer === client.conn;
    reader.pause();
    writer.onceDrain(() => {
      if (toClient && this.client === client) {
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

  // ---------------------------------------------------------------- XEP-0198 nonzas (docs/architecture.md §8.4)

  /** <enable/>: only once, and only after bind (XEP-0198 §3); resumable when asked and --sm-resume-timeout > 0. */
  smEnable(req: { resume: boolean; max?: number }): void {
    const client = this.client;
    if (!client) return;
    if (this.jid === undefined || this.sm) {
      this.log.info({ bound: this.jid !== undefined }, "<enable/> refused: before bind or a second time");
      client.conn.write(failed("unexpected-request"));
      return;
    }
    const cfg = this.ctx.config.sm;
    const resumable = req.resume && cfg.resumeTimeoutMs > 0;
    // the client's preferred maximum is honoured up to ours (XEP-0198 §5)
    const timeoutMs = req.max !== undefined ? Math.min(req.max * 1000, cfg.resumeTimeoutMs) : cfg.resumeTimeoutMs;
    const id = resumable ? this.ctx.resumption.issue(this.bare, this) : undefined;
    this.sm = new ClientSm((xml) => void this.client?.conn.write(xml), { ...cfg, id, timeoutMs });
    client.conn.write(enabled(id, resumable, resumable ? Math.round(timeoutMs / 1000) : undefined));
    metrics.sm("enabled");
    this.log.info({ jid: this.jid, resume: resumable, max: resumable ? Math.round(timeoutMs / 1000) : undefined }, "stream management enabled");
  }

  /** <r/>: answered at once with <a h/>. */
  smRequest(): void {
    if (!this.sm) return void this.client?.conn.write(failed("unexpected-request"));
    this.sm.onRequest();
  }

  /** <a h/>: releases what the client handled; an h above what was sent ends the stream (XEP-0198 §6). */
  smAck(h: number): void {
    const sm = this.sm;
    if (!sm) return void this.client?.conn.write(failed("unexpected-request"));
    const tooHigh = sm.onAck(h);
    if (tooHigh === undefined) return;
    this.log.warn({ jid: this.jid, h, code: "SM_H_TOO_HIGH" }, "client acknowledged more stanzas than were sent");
    this.client?.fail("undefined-condition", "you acknowledged more stanzas than were sent", undefined, tooHigh);
  }

  // ---------------------------------------------------------------- server → client

  private readonly upstreamHandler: StreamHandler = {
    onOpen: () => {
      this.log.warn("upstream restarted its stream unexpectedly");
      this.upstreamGone = true;
      this.lostUpstream("remote-connection-failed", "the server restarted the stream");
    },
    onStanza: (name, bytes) => {
      metrics.stanza("out", name, bytes.length);
      if (name === "stream:error") {
        // pass the server's own condition (conflict, system-shutdown, policy-violation, …) through
        this.log.info("upstream sent a stream error");
        this.upstreamGone = true;
        if (!this.client) this.log.info({ jid: this.jid, reason: "stream error" }, "hibernating session ended: its upstream leg is gone");
        this.client?.conn.write(bytes);
        this.client?.conn.end();
        this.finish("the server ended the stream", false);
        return;
      }
      if (this.closed) return;
      // the bind result reaches the client before the account layer takes the new JID (attach, the
      // bookmark fetch): those cost the client's first moment nothing
      let bound: string | undefined;
      if (name === "iq" && this.jid === undefined) bound = this.captureBind(bytes);
      else if (name === "iq" && this.bookmarkFetch?.expects(peekAttr(bytes, "id"))) return this.bookmarkAnswer(bytes);
      else if (name === "message" && this.account?.followsBookmarks && (bytesInclude(bytes, NS_BOOKMARKS) || bytesInclude(bytes, NS_BOOKMARKS_LEGACY))) this.noticeBookmarkEvent(bytes);
      let out: Buffer = bytes;
      if (name === "iq" && this.account) {
        const id = peekAttr(bytes, "id");
        // the answer to a publish the proxy made on this leg while it hibernated (§8.6): nobody else's
        const answerType = id?.startsWith(PUSH_ID_PREFIX) ? peekAttr(bytes, "type") : undefined;
        if (answerType === "result" || answerType === "error") {
          try {
            this.account.push.onAnswer(parseStanza(bytes));
          } catch {
            // unreadable: dropped like any answer to the proxy
          }
          return;
        }
        const cmd = id === undefined ? undefined : this.pushIqs.get(id);
        const type = cmd ? peekAttr(bytes, "type") : undefined;
        if (cmd && (type === "result" || type === "error")) {
          this.pushIqs.delete(id!);
          out = this.pushCommandAnswer(cmd, bytes);
        }
      }
      // a hibernating device with a push registration: does this wake it? (§8.6)
      if (name === "message" && !this.client && this.jid && this.account?.push.registered(this.jid)) {
        try {
          this.account.push.fromOwnLeg(this.jid, parseStanza(bytes));
        } catch {
          // not readable: no push for it
        }
      }
      if (name === "message" && this.account && this.jid && this.account.rooms.hasState() && bytesInclude(bytes, NS_CARBONS)) {
        let v: ReturnType<AccountHub["carbonOnLeg"]> = { kind: "pass" };
        try {
          v = this.account.carbonOnLeg(this.jid, parseStanza(bytes));
        } catch {
          // the framer accepted it; what ltx cannot read is not a carbon to act on: pass it as it came
        }
        if (v.kind === "drop") return;
        // still from the own leg (a Buffer: ClientSm's queue tells the origin by the type)
        if (v.kind === "deliver") out = Buffer.from(v.stanza.toString());
      }
      const ok = this.toClient(out, isCounted(name));
      if (bound !== undefined) this.attachBound(bound);
      const client = this.client;
      if (!client) return;
      if (!ok) this.backOff(this.upstream.conn, client.conn);
      client.countOutput();
    },
    onClose: () => {
      this.log.info("upstream closed the stream");
      this.upstreamGone = true;
      if (this.clientClosed) return this.client?.conn.end();
      // The server ended the stream on its own without a stream error (going down): say what a
      // server says then (RFC 6120 §4.9.3.19), so the client reconnects now rather than after its
      // own timeouts.
      this.lostUpstream("system-shutdown", "the server closed the stream");
    },
    onFramingError: (err) => {
      this.log.warn({ code: err.code, reason: err.message }, "bad input from upstream");
      metrics.limitBreach("upstream", err.code, this);
      this.upstreamGone = true;
      this.upstream.conn.destroy();
      this.lostUpstream("remote-connection-failed", "the server sent something the proxy could not read");
    },
    onSocketClosed: () => {
      if (this.closed) return;
      this.log.info("upstream connection lost");
      this.upstreamGone = true;
      if (this.clientClosed) return this.client?.conn.end();
      // The server (or the path to it) died under an open stream: connection-timeout (RFC 6120
      // §4.9.3.4, the peer "has permanently lost the ability to communicate over the stream").
      this.lostUpstream("connection-timeout", "connection to the server lost");
    },
  };

  /** The own leg is gone: the client is told (and the session ends with its stream), or a hibernating session ends. */
  private lostUpstream(condition: StreamErrorCondition, text: string): void {
    if (this.client) return this.client.fail(condition, text);
    if (this.closed) return;
    this.log.info({ jid: this.jid, reason: text }, "hibernating session ended: its upstream leg is gone");
    this.finish(text, false);
  }

  /** The bind result (RFC 6120 §7.6.1): the session's full JID, taken; the account layer is told by attachBound. */
  private captureBind(bytes: Buffer): string | undefined {
    const el = parseStanza(bytes);
    if (el.attrs.type !== "result") return undefined;
    const jid = el.getChild("bind", NS_BIND)?.getChildText("jid");
    if (!jid) return undefined;
    this.jid = jid;
    this.log.info({ jid, mucPassThrough: this.mucPassThrough || undefined }, "resource bound");
    return this.mucPassThrough ? undefined : jid;
  }

  /** The bound session joins its account: the kept secret, the link for room traffic, the bookmark fetch. */
  private attachBound(jid: string): void {
    if (this.closed) return;
    const account = this.ctx.accounts.get(rawBare(jid).toLowerCase());
    if (this.secret) account.setSecret(this.secret);
    this.secret = undefined;
    this.link = { jid, deliver: (s) => this.deliver(s), deliverAll: (ss) => this.deliver(ss) };
    account.attach(this.link);
    this.account = account;
    if (account.followsBookmarks) this.fetchBookmarks(account);
  }

  /**
   * At each client login the account's bookmarks are fetched on this session's own leg, explicitly
   * (Prosody and ejabberd default to send_last_published_item = never): the account then joins its
   * autojoin rooms — after a proxy restart, this is when it comes back (docs/architecture.md §4.6).
   */
  private fetchBookmarks(account: AccountHub): void {
    const f = new BookmarkFetch(account.bare, account.bookmarkFetchStarted(), account.bookmarkCompat());
    this.bookmarkFetch = f;
    this.log.debug({ asked: f.askedNames }, "bookmark fetch sent");
    for (const r of f.requests()) this.upstream.conn.write(r);
  }

  /** An answer to the login's bookmark fetch: taken off the leg; the last one hands the lists to the account. */
  private bookmarkAnswer(bytes: Buffer): void {
    const f = this.bookmarkFetch;
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch {
      return;
    }
    const done = f?.answer(el);
    if (!f || !done || this.bookmarkFetch !== f) return;
    this.bookmarkFetch = undefined;
    void this.account?.bookmarksFetched(f.token, done.pep, done.legacy, done.compat, done.compatAnswered);
  }

  /** A PEP notification on the own leg (XEP-0060 §7.1.2): a change made on any device, followed; the client gets it too. */
  private noticeBookmarkEvent(bytes: Buffer): void {
    const found = this.parsedForAccount(bytes);
    if (!found) return;
    for (const c of eventChanges(found.el, found.account.bare)) void found.account.bookmarkChanged(c);
  }

  /** A stanza looked at for the account layer's bookmarks: parsed, with the account; undefined without one or when it does not parse (the framer accepted it; the server judges it). */
  private parsedForAccount(bytes: Buffer): { account: AccountHub; el: Element } | undefined {
    const account = this.account;
    if (!account) return undefined;
    try {
      return { account, el: parseStanza(bytes) };
    } catch {
      return undefined;
    }
  }

  /**
   * Stanzas from the account layer (room fan-out, replies) for this client. Several in a row go
   * out in one write (one TLS record instead of one per stanza); see `writeTo`. The CSI filter
   * (§8.5) sits in front of `toClient`: SM counts (and queues) only what passes it.
   */
  private deliver(offered: string | readonly string[], filter = true): void {
    if (this.closed) return;
    let stanzas: string | readonly string[] = offered;
    if (filter && !this.csi.active) {
      stanzas = typeof offered === "string" ? this.csi.offer(offered, Date.now()) : this.csi.offerAll(offered, Date.now());
      if (stanzas.length === 0) return;
    }
    if (typeof stanzas === "string") metrics.stanzaXml("out", stanzas);
    else for (const s of stanzas) metrics.stanzaXml("out", s);
    const ok = this.toClient(stanzas, true);
    const client = this.client;
    if (!client) return; // hibernating: queued
    if (!ok && client.conn.writableLength > this.ctx.config.limits.maxStanzaSize * 64) {
      // a client that does not read must not make the proxy buffer the room for it forever
      this.log.warn({ queued: client.conn.writableLength }, "client is not reading: disconnecting");
      metrics.limitBreach("client", "SLOW_CONSUMER", client);
      client.fail("policy-violation", "too much unread data");
      return;
    }
    client.countOutput();
  }

  /**
   * The one way to the client, for the own leg's stanzas (Buffers) and the account layer's (strings)
   * alike: with SM, counted stanzas are queued until acknowledged (and only queued while hibernating).
   * Returns false when the client's output is over its high-water mark.
   */
  private toClient(out: Buffer | string | readonly string[], counted: boolean): boolean {
    if (this.closed) return true;
    const sm = this.sm;
    let over = false;
    if (sm && counted) {
      if (typeof out === "string" || Buffer.isBuffer(out)) over = !sm.push(out);
      else for (const s of out) if (!sm.push(s)) over = true;
    }
    const client = this.client;
    const ok = client ? writeTo(client, out) : true;
    if (sm && counted) {
      if (over) this.queueFull();
      else if (client) sm.afterSend();
    }
    return ok;
  }

  /** --sm-max-queue[-bytes] exceeded: a connected client is cut (resource-constraint), a hibernating session expires. */
  private queueFull(): void {
    this.log.warn({ jid: this.jid, unacked: this.sm?.unacked, bytes: this.sm?.unackedBytes, hibernating: this.client === undefined,
      code: "SM_QUEUE_FULL" }, "too many unacknowledged stanzas for the client");
    metrics.limitBreach("client", "SM_QUEUE_FULL", this);
    if (this.client) this.client.fail("resource-constraint", "too many unacknowledged stanzas");
    else this.expire("unacknowledged queue full while hibernating");
  }

  // ---------------------------------------------------------------- lifetime

  /** The client closed its stream (</stream:stream>): the session ends; the own leg's close answers the client. */
  clientEnded(): void {
    this.clientClosed = true;
    this.finish("the client closed its stream", true);
  }

  /** The proxy ended the client's stream with a stream error: the session ends with it. */
  streamFailed(): void {
    this.finish("stream error", false);
  }

  /**
   * The socket of `client` is gone. A resumable session hibernates (docs/architecture.md §8.4);
   * otherwise it ends. A client the session has moved away from (resumed elsewhere) touches nothing.
   */
  connectionLost(client: SessionClient): void {
    if (client !== this.client || this.closed) return;
    const sm = this.sm;
    if (!sm?.id || this.upstreamGone) return this.finish("connection closed", false);
    this.detachClient();
    sm.hibernate();
    this.hibernatingSince = Date.now();
    this.ctx.resumption.hibernate(sm.id, this, sm.timeoutMs);
    // XEP-0357: a device that registered push is asleep; publishes may go on this leg (§8.6)
    if (this.jid) this.account?.push.hibernating(this.jid, (xml) => void this.upstream.conn.write(xml));
    this.log.info({ jid: this.jid, unacked: sm.unacked, timeoutS: sm.timeoutMs / 1000 }, "connection lost: session hibernating until its client resumes");
  }

  /**
   * <resume previd h/> on `client` found this session (same account, docs/architecture.md §8.4).
   * `fresh` is the session that client's SASL opened: its own leg is closed, its credentials kept.
   * A live old connection is closed first without touching this session. Returns false (nothing
   * changed) when `h` acknowledges more than was sent.
   */
  resumeOn(client: SessionClient, h: number, fresh: BoundSession): boolean {
    const sm = this.sm;
    if (!sm?.id || this.closed) return false;
    const tooHigh = sm.resumeTooHigh(h);
    if (tooHigh !== undefined) {
      this.log.warn({ jid: this.jid, h, code: "SM_H_TOO_HIGH" }, "resume acknowledged more stanzas than were sent");
      client.fail("undefined-condition", "you acknowledged more stanzas than were sent", undefined, tooHigh);
      return false;
    }
    const old = this.client;
    if (old) {
      this.detachClient();
      old.replaced();
    }
    const secret = fresh.discard();
    if (secret) this.account?.setSecret(secret);
    const was = this.hibernatingSince;
    this.hibernatingSince = undefined;
    this.client = client;
    this.ctx.resumption.wake(sm.id);
    if (this.jid) this.account?.push.online(this.jid);
    const resend = sm.resume(h, this.bare.slice(this.bare.indexOf("@") + 1));
    client.conn.write(resumed(sm.id, sm.inbound.h));
    // the unacked stanzas, in order, exactly once; one write each (a WebSocket message each)
    for (const s of resend) client.conn.write(s);
    sm.resumed();
    this.resetClientState();
    client.countOutput();
    metrics.sm("resumed");
    this.log.info({ jid: this.jid, conn: client.id, previousConn: old?.id, resent: resend.length,
      hibernatedMs: was === undefined ? undefined : Date.now() - was }, "session resumed");
    return true;
  }

  /** A fresh session whose client resumed another one instead: its own leg closes; returns its credentials. */
  discard(): UpstreamSecret | undefined {
    const secret = this.secret;
    this.closed = true;
    this.client = undefined;
    this.secret = undefined;
    this.upstream.conn.end();
    return secret;
  }

  /** Hibernated too long, or the proxy stops (Resumable). */
  expire(reason: string): void {
    if (this.closed) return;
    metrics.sm("expired");
    this.log.info({ jid: this.jid, reason }, "session expired");
    this.finish(reason, false);
  }

  /** The session stops writing to its client (it dropped or moved): no flow control for it any more. */
  private detachClient(): void {
    if (!this.client) return;
    this.client = undefined;
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    // the own leg may be paused for this client (backOff); a hibernating session keeps reading it
    this.upstream.conn.resume();
  }

  /**
   * The session ends: what the client never acknowledged is settled (bounced on the own leg before
   * it closes, or left to room history / MAM; docs/architecture.md §8.4), the resumption id goes
   * (a tombstone keeping h unless the client closed cleanly), the own leg closes, the account link is
   * detached. The detach waits for the next tick: this may run inside the account layer's own
   * delivery (a queue bound hit during a fan-out), which must not be re-entered.
   */
  private finish(reason: string, clean: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.detachClient();
    this.hibernatingSince = undefined;
    let undelivered: Element[] = [];
    const sm = this.sm;
    if (sm) {
      const unacked = sm.end();
      if (sm.id !== undefined) {
        if (clean) this.ctx.resumption.remove(sm.id);
        else this.ctx.resumption.expire(sm.id, sm.inbound.h);
      }
      if (unacked.length > 0) undelivered = this.settle(unacked, reason);
    }
    this.upstream.conn.end();
    this.secret = undefined;
    // what CSI held is room traffic: it stays in the room's history buffer (docs/architecture.md §8.5)
    this.csi.drop();
    const account = this.account;
    const link = this.link;
    if (account && link) {
      process.nextTick(() => {
        if (undelivered.length > 0) {
          const missed = account.undeliveredPms(link, undelivered);
          this.log.info({ jid: this.jid, pms: undelivered.length, missed }, "unacknowledged room PMs handed back to the account (held for the next session in the room unless another has them)");
        }
        account.detach(link);
        this.ctx.accounts.collect(account.bare);
      });
    }
  }

  /** Bounces what must be bounced on the own leg; returns the room PMs to hand back to the account. */
  private settle(unacked: readonly QueuedStanza[], reason: string): Element[] {
    const o = settleUnacked(unacked, this.bare, !this.upstreamGone);
    for (const b of o.bounces) this.upstream.conn.write(b);
    metrics.smBounced(o.bounces.length);
    this.log.info({ jid: this.jid, reason, unacked: unacked.length, bounced: o.bounces.length, kept: o.kept, dropped: o.dropped, lost: o.lost,
      pms: o.undelivered.length }, "session ended with unacknowledged stanzas");
    return o.undelivered;
  }
}

/** Writes to the client; several stanzas in one write, except on WebSocket (one message each, RFC 7395 §3.3.3). */
function writeTo(client: SessionClient, out: Buffer | string | readonly string[]): boolean {
  if (typeof out === "string" || Buffer.isBuffer(out)) return client.conn.write(out);
  if (client.transport !== "websocket") return client.conn.write(out.join(""));
  let ok = true;
  for (const s of out) ok = client.conn.write(s) && ok;
  return ok;
}
