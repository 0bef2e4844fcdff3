import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { parseStanza } from "../../core/xml/element.js";
import { NS_BIND } from "../../core/xml/ns.js";
import type { Logger } from "../log.js";
import { FrameQueue } from "../stream/frame-queue.js";
import type { StreamHandler, XmppConnection } from "../stream/xmpp-connection.js";
import { openUpstream, type UpstreamSecret, type UpstreamTarget } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { metrics } from "../metrics.js";

/** open() gave up because close() was called meanwhile: not a failure of the server. */
export class AccountSessionClosed extends Error {
  constructor() {
    super("account session closed while connecting");
    this.name = "AccountSessionClosed";
  }
}

export interface AccountSessionEvents {
  /** Bound and ready; `jid` is the account session's full JID. */
  up(jid: string): void;
  /** A stanza from upstream that is not the account session's own business. */
  stanza(el: Element): void;
  /**
   * Offered every stanza first, as framed bytes (docs/architecture.md §2.2 fast path): true when it
   * was handled from them, so it is never parsed.
   */
  bytes?(name: string, bytes: Buffer): boolean;
  /** The upstream stream is gone (not after close()). */
  down(reason: string): void;
}

/**
 * The account's own upstream session (docs/architecture.md §4): authenticates with the kept SCRAM secret,
 * binds `<prefix><short id>`, and never sends broadcast presence, a roster request or carbons —
 * contacts never see it and bare-JID messages never route to it. It answers pings and disco#info
 * addressed to itself; everything else is handed to the room machine.
 */
export class AccountSession {
  private conn: XmppConnection | undefined;
  private closedByUs = false;
  /** The connect in flight (open()), so close() can wait for it to be abandoned. */
  private opening: Promise<void> | undefined;
  jid: string | undefined;
  readonly resource: string;

  constructor(
    private readonly target: UpstreamTarget,
    private readonly username: string,
    private readonly secret: () => UpstreamSecret | undefined,
    prefix: string,
    private readonly log: Logger,
    private readonly events: AccountSessionEvents,
    /** A cluster member binds the same resource on every node (docs/architecture.md §8.7); else a new random suffix. */
    resource?: string,
  ) {
    this.resource = resource ?? `${prefix}${randomBytes(4).toString("hex")}`;
  }

  get online(): boolean {
    return this.jid !== undefined && this.conn !== undefined && !this.conn.isClosed;
  }

  /**
   * Connects, authenticates and binds. Rejects with UpstreamError; `down` is not emitted for that.
   * A close() meanwhile abandons the connect at its next step (rejects with AccountSessionClosed):
   * the connection it was opening is closed, never bound and left behind.
   */
  open(): Promise<void> {
    const p = this.connectAndBind();
    this.opening = p;
    const done = (): void => {
      if (this.opening === p) this.opening = undefined;
    };
    p.then(done, done);
    return p;
  }

  private async connectAndBind(): Promise<void> {
    const secret = this.secret();
    if (!secret) throw new UpstreamError("UPSTREAM_AUTH", "not-authorized", "no credentials kept for the account");
    const up = await openUpstream(this.target, this.username, secret);
    const conn = up.conn;
    if (this.closedByUs) {
      await endAndWait(conn);
      throw new AccountSessionClosed();
    }
    this.conn = conn;
    const queue = up.queue;
    try {
      conn.write(`<iq type='set' id='bind'><bind xmlns='${NS_BIND}'><resource>${this.resource}</resource></bind></iq>`);
      const jid = await this.awaitBind(queue);
      if (this.closedByUs) throw new AccountSessionClosed();
      this.jid = jid;
    } catch (err) {
      conn.end(500);
      this.conn = undefined;
      if (this.closedByUs) throw new AccountSessionClosed();
      throw err instanceof UpstreamError ? err : new UpstreamError("UPSTREAM_PROTOCOL", "remote-connection-failed", `bind: ${(err as Error).message}`);
    }
    conn.setHandler(this.handler);
    for (const f of queue.drain()) if (f.kind === "stanza") this.handler.onStanza(f.name, f.bytes);
    this.log.info({ accountJid: this.jid, mechanism: up.mechanism, ms: up.connectMs }, "account session online");
    metrics.upstreamConnected("account", up.connectMs);
    this.events.up(this.jid!);
  }

  private async awaitBind(queue: FrameQueue): Promise<string> {
    for (;;) {
      const f = await queue.next(this.target.timeoutMs);
      if (f.kind !== "stanza") throw new Error("stream closed during bind");
      const el = parseStanza(f.bytes);
      if (el.name === "iq" && el.attrs.id === "bind") {
        const jid = el.getChild("bind", NS_BIND)?.getChildText("jid");
        if (el.attrs.type !== "result" || !jid) throw new Error("bind refused");
        return jid;
      }
    }
  }

  send(el: Element | string): void {
    if (!this.conn) return;
    this.conn.write(typeof el === "string" ? el : el.toString());
  }

  /**
   * Ends the stream (close tag, then FIN). No unavailable presence is sent to the rooms: the server's
   * own end-of-session cleanup removes the account's occupants (docs/architecture.md §4.5). Resolves once the socket
   * is closed (XmppConnection destroys it after its grace period at the latest).
   */
  close(): Promise<void> {
    this.closedByUs = true;
    this.jid = undefined;
    const c = this.conn;
    this.conn = undefined;
    const closed = c ? endAndWait(c) : Promise.resolve();
    // a connect still in flight is abandoned (see open()); wait until its socket is closed too
    const opening = this.opening?.catch(() => undefined);
    return Promise.all([closed, opening]).then(() => undefined);
  }

  private readonly handler: StreamHandler = {
    onOpen: () => this.lost("upstream restarted the stream"),
    onStanza: (name, bytes) => {
      if (name === "stream:error") return this.lost("upstream stream error");
      if (this.events.bytes?.(name, bytes)) return;
      let el: Element;
      try {
        el = parseStanza(bytes);
      } catch {
        return;
      }
      this.events.stanza(el);
    },
    onClose: () => this.lost("upstream closed the stream"),
    onFramingError: (err) => this.lost(`bad input from upstream: ${err.message}`),
    onSocketClosed: () => this.lost("connection lost"),
  };

  private lost(reason: string): void {
    const was = this.conn;
    if (!was) return;
    this.conn = undefined;
    this.jid = undefined;
    was.destroy();
    if (this.closedByUs) return;
    this.log.warn({ reason }, "account session lost");
    this.events.down(reason);
  }
}

/** Ends the stream (close tag, then FIN); resolves once the socket is closed. */
function endAndWait(c: XmppConnection): Promise<void> {
  if (c.isClosed) return Promise.resolve();
  const done = new Promise<void>((resolve) => c.socket.once("close", () => resolve()));
  c.end();
  return done;
}
