import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { WebSocket, RawData } from "ws";
import { FramingError, type StreamErrorCondition } from "../../core/xml/errors.js";
import { streamError } from "../../core/xml/stream.js";
import type { ClientConnection } from "../stream/client-connection.js";
import type { ConnectionOptions, StreamHandler } from "../stream/xmpp-connection.js";
import { seeOtherUriClose } from "../../core/cluster/redirect.js";
import { IncomingFramer, OutgoingTranslator, WS_CLOSE, openToStreamAttrs } from "./framing.js";

/** WebSocket close codes (RFC 6455 §7.4.1). */
const WS_NORMAL = 1000;
const WS_INTERNAL = 1011;

/**
 * One XMPP stream over one WebSocket (RFC 7395), presenting the same surface to ClientStream
 * as XmppConnection does over TCP: incoming messages are validated by the byte framer (one element
 * per message) and turned into the same handler calls; what the session writes in RFC 6120 form is
 * translated into `<open/>`, `<close/>` and one self-contained element per message. Keepalive is a
 * WebSocket ping; a peer that stops answering pings is dropped. No STARTTLS: wss is TLS already.
 */
export class WebSocketConnection implements ClientConnection {
  readonly framer: IncomingFramer;
  private readonly out = new OutgoingTranslator();
  private closed = false;
  /** Set once `<close/>` was sent: nothing else may follow it. */
  private closeSent = false;
  /** An `<open/>` is expected next (at the start and after a stream restart). */
  private expectOpen = true;
  private keepalive: NodeJS.Timeout | undefined;
  private closing: NodeJS.Timeout | undefined;
  private missedPongs = 0;
  /** Reading paused for flow control: pongs are not read either, so they are not missed. */
  private paused = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly ws: WebSocket, private readonly socket: Duplex, private handler: StreamHandler,
    private readonly opts: ConnectionOptions) {
    this.framer = new IncomingFramer(opts.limits);
    ws.on("message", this.onMessage);
    ws.on("close", () => this.finish());
    ws.on("error", (err) => this.finish(err));
    ws.on("pong", () => (this.missedPongs = 0));
    if (opts.keepaliveMs > 0) {
      const every = Math.max(1000, Math.floor(opts.keepaliveMs / 2));
      this.keepalive = setInterval(() => this.keepaliveTick(), every);
      this.keepalive.unref();
    }
  }

  /**
   * From now on `handler` gets what the client sends (a session forwarded to its account's owner node,
   * docs/architecture.md §8.7: proxy/cluster/ws-splice.ts); the previous one gets nothing more.
   */
  handOver(handler: StreamHandler): void {
    this.handler = handler;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  /** The wss:// TLS socket when the proxy terminates it; undefined for ws:// (behind a TLS-terminating proxy). */
  get tlsSocket(): TLSSocket | undefined {
    return this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  get tlsProtocol(): string | undefined {
    const s = this.socket as Partial<TLSSocket>;
    return typeof s.getProtocol === "function" ? s.getProtocol() ?? undefined : undefined;
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    // after our <close/> the stream is over: nothing more reaches the session
    if (this.closed || this.closeSent) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.bytesIn += buf.length;
    try {
      // RFC 7395 §3.2: XMPP travels in text messages only
      if (isBinary) throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "binary WebSocket message");
      const frame = this.framer.message(buf);
      switch (frame.type) {
        case "none":
          return;
        case "open":
          if (!this.expectOpen) throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "<open/> in the middle of a stream");
          this.expectOpen = false;
          return this.handler.onOpen("stream:stream", openToStreamAttrs(frame.attrs));
        case "close":
          return this.handler.onClose();
        case "stanza":
          if (this.expectOpen) {
            // like a TCP stream whose first element is not a stream header: invalid-namespace
            this.expectOpen = false;
            return this.handler.onOpen(frame.name, {});
          }
          return this.handler.onStanza(frame.name, frame.bytes);
      }
    } catch (err) {
      // a bug must cost one connection, never the process
      this.handler.onFramingError(err instanceof FramingError ? err
        : new FramingError("XML_INTERNAL", "internal-server-error", `internal error: ${(err as Error).message}`));
    }
  };

  private keepaliveTick(): void {
    if (this.closed || this.closeSent) return;
    if (this.paused) this.missedPongs = 0;
    // three silent intervals (1.5 × keepalive): the peer (or the path to it) is gone
    if (++this.missedPongs > 3) {
      this.ws.terminate();
      this.finish(new Error("WebSocket keepalive: no pong"));
      return;
    }
    this.ws.ping();
  }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    clearTimeout(this.closing);
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
    this.handler.onSocketClosed(err);
  }

  private send(messages: (string | Buffer)[]): void {
    for (const m of messages) {
      this.bytesOut += typeof m === "string" ? Buffer.byteLength(m) : m.length;
      this.ws.send(m, { binary: false });
    }
  }

  /** RFC 6120 bytes from the session; false when the output is over its high-water mark. */
  write(data: string | Buffer): boolean {
    if (this.closed || this.closeSent) return false;
    let t: { messages: (string | Buffer)[]; closed: boolean };
    try {
      t = this.out.translate(data);
    } catch (err) {
      // our own output or the server's (already framed upstream): should never fail
      this.ws.close(WS_INTERNAL, "internal error");
      this.finish(err as Error);
      return false;
    }
    this.send(t.messages);
    if (t.closed) this.closeAfterFlush();
    return this.ws.bufferedAmount < (this.opts.highWaterMark ?? 1 << 20);
  }

  /** Stream restart after SASL (RFC 7395 §3.7): the client sends a new `<open/>`. */
  restart(): void {
    this.expectOpen = true;
  }

  upgradeServer(): Promise<void> {
    // RFC 7395 §3.9: TLS comes from wss (or the reverse proxy), never STARTTLS
    return Promise.reject(new Error("no STARTTLS over WebSocket"));
  }

  pause(): void {
    this.paused = true;
    this.ws.pause();
  }

  resume(): void {
    this.paused = false;
    this.ws.resume();
  }

  onceDrain(fn: () => void): void {
    this.socket.once("drain", fn);
  }

  /**
   * RFC 7395 §3.6: `<close/>`, then the WebSocket closing handshake (which waits for queued
   * messages); the connection is dropped if the peer does not complete it within the grace period.
   */
  end(graceMs = 2000): void {
    if (this.closed) return;
    if (!this.closeSent) this.send([WS_CLOSE]);
    this.closeAfterFlush(graceMs);
  }

  private closeAfterFlush(graceMs = 2000): void {
    this.closeSent = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(WS_NORMAL);
    if (this.closing === undefined) {
      this.closing = setTimeout(() => this.finish(), graceMs);
      this.closing.unref();
    }
  }

  /** A stream error (RFC 7395 §3.5: `<stream:error/>`, then `<close/>`), after `header` as `<open/>` if given. */
  fail(condition: StreamErrorCondition, text?: string, header?: string, appCondition?: string): void {
    if (this.closed || this.closeSent) return;
    this.write((header ?? "") + streamError(condition, text, appCondition));
    this.end();
  }

  /**
   * RFC 7395 §3.6.1: `<close/>` with `see-other-uri` instead of a plain one, then the closing handshake
   * (a stopping cluster node, docs/architecture.md §8.7).
   */
  redirect(uri: string): void {
    if (this.closed || this.closeSent) return;
    this.send([seeOtherUriClose(uri)]);
    this.closeAfterFlush();
  }

  destroy(): void {
    this.finish();
  }
}
