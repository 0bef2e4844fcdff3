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
import { NS_CLIENT, NS_SASL, NS_STREAM } from "../../core/xml/ns.js";
import { peekAttr } from "../../core/xml/peek.js";
import type { Logger } from "../log.js";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import type { WebSocketConnection } from "../websocket/connection.js";

/** The stream the owner continues after the forwarding node's header: no header of its own comes first. */
const SYNTHETIC_HEADER = Buffer.from(`<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'>`);
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
const LINK_LIMITS: FramerLimits = { maxStanzaSize: 1 << 30, maxDepth: 4096 };

export class WebSocketSplice implements StreamHandler {
  private readonly fromOwner = new Framer(LINK_LIMITS);
  private link: tls.TLSSocket | undefined;
  private done = false;

  /**
   * `authedLimits`: the client's framer limits once the owner accepted its login (before that the
   * pre-authentication limits the stream had stay).
   */
  constructor(private readonly conn: WebSocketConnection, private readonly authedLimits: FramerLimits, private readonly log: Logger) {
    this.fromOwner.push(SYNTHETIC_HEADER);
  }

  /** Takes over the client's connection and the link (whose first bytes, header and `<auth/>`, were written). */
  splice(link: tls.TLSSocket): void {
    this.link = link;
    this.conn.handOver(this);
    link.on("data", (chunk: Buffer) => this.onOwnerData(chunk));
    link.on("error", (e) => this.log.debug({ reason: e.message }, "forwarding link error"));
    // the owner's side is over: the client gets <close/> (unless it had it) and the closing handshake
    link.on("close", () => {
      if (this.done) return;
      this.done = true;
      this.conn.end();
    });
    link.resume();
    this.conn.resume();
  }

  private onOwnerData(chunk: Buffer): void {
    const { events, error } = this.fromOwner.pushSafe(chunk);
    for (const ev of events) {
      let more = true;
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
    }
  }

  private toOwner(data: string | Buffer): void {
    const link = this.link;
    if (!link || link.destroyed) return;
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
  }
}
