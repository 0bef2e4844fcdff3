/**
 * A WebSocket client's session forwarded to its account's owner node (docs/architecture.md §8.7): the
 * node-to-node link carries an RFC 6120 byte stream, as for a TCP client, and this node translates
 * between it and the client's RFC 7395 framing for the rest of the connection.
 *
 * - client → owner: `<open/>` becomes a stream header (the restart after SASL), each message's element
 *   goes on as it is, `<close/>` becomes `</stream:stream>`;
 * - owner → client: the link's bytes are framed here and each element is written through the
 *   connection's own translator, which makes the header `<open/>`, the close tag `<close/>` and every
 *   element a self-contained message. At the owner's SASL `<success/>` both sides restart: the client's
 *   next `<open/>` is accepted and the owner's next bytes are read as a new stream (RFC 6120 §6.4.6;
 *   nothing follows a `<success/>` before the client's new header).
 *
 * The owner is told nothing about WebSocket: it serves the stream like any forwarded one.
 */
import type * as tls from "node:tls";
import { Framer, type FramerLimits } from "../../core/xml/framer.js";
import type { FramingError } from "../../core/xml/errors.js";
import { escapeXML } from "../../core/xml/element.js";
import { NS_CLIENT, NS_FRAMING, NS_SASL, NS_STREAM } from "../../core/xml/ns.js";
import { peekAttr } from "../../core/xml/peek.js";
import type { Logger } from "../log.js";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import type { WebSocketConnection } from "../websocket/connection.js";

/** How long a stopping node waits for the owner's element in flight to complete before it ends the stream anyway. */
export const IN_FLIGHT_WAIT_MS = 1000;

/** The stream the owner continues after the forwarding node's header: no header of its own comes first. */
export const SYNTHETIC_HEADER = Buffer.from(`<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'>`);
const HEADER_ATTRS = ["to", "from", "id", "version", "xml:lang"] as const;

/** An RFC 6120 stream header from the attributes of an `<open/>` (or of the owner's header). */
export function headerFrom(attrs: Record<string, string>): string {
  let s = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'`;
  for (const k of HEADER_ATTRS) {
    const v = attrs[k];
    if (v !== undefined) s += ` ${k}='${escapeXML(v)}'`;
  }
  return s + ">";
}

/** What the link's framer must not exceed: anything the owner sends to a client (it framed it already). */
export const LINK_LIMITS: FramerLimits = { maxStanzaSize: 1 << 30, maxDepth: 4096 };

export class WebSocketSplice implements StreamHandler {
  private readonly fromOwner = new Framer(LINK_LIMITS);
  private link: tls.TLSSocket | undefined;
  private done = false;
  private onClosed: (() => void) | undefined;
  /** SIGTERM of this node (`stop`): where the client goes once the owner's element in flight is complete. */
  private stopping: { to: string | undefined; timer: NodeJS.Timeout } | undefined;

  /**
   * `authedLimits`: the client's framer limits once the owner accepted its login (before that the
   * pre-authentication limits the stream had stay).
   */
  constructor(private readonly conn: WebSocketConnection, private readonly authedLimits: FramerLimits, private readonly log: Logger) {
    this.fromOwner.push(SYNTHETIC_HEADER);
  }

  /** Takes over the client's connection and the link (whose first bytes, header and `<auth/>`, were written). */
  splice(link: tls.TLSSocket, onClosed?: () => void): void {
    this.link = link;
    this.onClosed = onClosed;
    this.conn.handOver(this);
    link.on("data", (chunk: Buffer) => this.onOwnerData(chunk));
    link.on("error", (e) => this.log.debug({ reason: e.message }, "forwarding link error"));
    // the owner's side is over: the client gets <close/> (unless it had it) and the closing handshake
    link.on("close", () => {
      if (this.done) return;
      this.done = true;
      this.conn.end();
      this.closed();
    });
    link.resume();
    this.conn.resume();
  }

  private closed(): void {
    if (this.stopping) clearTimeout(this.stopping.timer);
    const f = this.onClosed;
    this.onClosed = undefined;
    f?.();
  }

  /**
   * SIGTERM of this node: the client gets RFC 7395 §3.6.1 `<close see-other-uri/>` naming `to` (a wss
   * URI), else `<system-shutdown/>`, once the owner's element in flight (if any) is complete (at most
   * IN_FLIGHT_WAIT_MS); nothing more goes to the owner meanwhile. Then the link is closed.
   */
  stop(to: string | undefined): void {
    if (this.done || this.stopping) return;
    const timer = setTimeout(() => this.finishStop(), IN_FLIGHT_WAIT_MS);
    timer.unref();
    this.stopping = { to, timer };
    if (this.fromOwner.bufferedBytes === 0) this.finishStop();
  }

  private finishStop(): void {
    if (this.done || !this.stopping) return;
    this.done = true;
    const { to } = this.stopping;
    if (to !== undefined) this.conn.redirect(to);
    else this.conn.fail("system-shutdown", "the proxy is shutting down");
    this.link?.destroy();
    this.closed();
  }

  private onOwnerData(chunk: Buffer): void {
    if (this.done) return;
    const { events, error } = this.fromOwner.pushSafe(chunk);
    for (const ev of events) {
      let more = true;
      if (ev.type === "stanza" && ev.name === "close" && peekAttr(ev.bytes, "xmlns") === NS_FRAMING) {
        // the owner's SIGTERM (ClientStream.redirect): RFC 7395 §3.6.1, passed on as this client's closing message
        const uri = peekAttr(ev.bytes, "see-other-uri");
        this.done = true;
        if (uri !== undefined) this.conn.redirect(uri);
        else this.conn.end();
        this.link?.destroy();
        this.closed();
        return;
      }
      if (ev.type === "open") more = this.conn.write(headerFrom(ev.attrs));
      else if (ev.type === "close") more = this.conn.write("</stream:stream>");
      else {
        more = this.conn.write(ev.bytes);
        if (ev.name === "success" && peekAttr(ev.bytes, "xmlns") === NS_SASL) {
          // RFC 6120 §6.4.6: the stream restarts on both sides
          this.conn.restart();
          this.conn.framer.setLimits(this.authedLimits);
          this.fromOwner.reset();
        }
      }
      if (!more && this.link && !this.link.isPaused()) {
        const link = this.link;
        link.pause();
        this.conn.onceDrain(() => link.resume());
      }
    }
    if (error) {
      this.log.warn({ reason: error.message }, "forwarding link: the owner's stream is not well-formed");
      this.link?.destroy();
      return;
    }
    if (this.stopping && this.fromOwner.bufferedBytes === 0) this.finishStop();
  }

  private toOwner(data: string | Buffer): void {
    const link = this.link;
    if (!link || link.destroyed || this.stopping) return;
    if (!link.write(data)) {
      this.conn.pause();
      link.once("drain", () => this.conn.resume());
    }
  }

  onOpen(_name: string, attrs: Record<string, string>): void {
    this.toOwner(headerFrom(attrs));
  }

  onStanza(_name: string, bytes: Buffer): void {
    this.toOwner(bytes);
  }

  onClose(): void {
    this.toOwner("</stream:stream>");
  }

  onFramingError(err: FramingError): void {
    this.log.info({ code: err.code, condition: err.condition, reason: err.message }, "bad input from a forwarded WebSocket client");
    this.conn.fail(err.condition, err.message);
    this.link?.end();
  }

  /** The client's connection is gone: so is the link (the owner sees its client leave). */
  onSocketClosed(): void {
    this.done = true;
    this.link?.destroy();
    this.closed();
  }
}
