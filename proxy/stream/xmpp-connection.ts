import type { Socket } from "node:net";
import * as tls from "node:tls";
import { Framer, type FramerLimits } from "../../core/xml/framer.js";
import { FramingError, type StreamErrorCondition } from "../../core/xml/errors.js";
import { STREAM_CLOSE, streamError } from "../../core/xml/stream.js";

/** What the owner of a connection is told. Exactly one owner at a time (see setHandler). */
export interface StreamHandler {
  onOpen(name: string, attrs: Record<string, string>): void;
  onStanza(name: string, bytes: Buffer): void;
  /** The peer sent </stream:stream>. */
  onClose(): void;
  onFramingError(err: FramingError): void;
  /** The socket is gone (after end, destroy, reset or error). Called once. */
  onSocketClosed(err?: Error): void;
}

export interface ConnectionOptions {
  limits: FramerLimits;
  /** Whitespace keepalive when nothing was written for this long; 0 disables. */
  keepaliveMs: number;
  /** Bytes queued in the socket before write() reports congestion. */
  highWaterMark?: number;
}

/**
 * One XMPP stream over one socket, on either leg: frames incoming bytes, writes outgoing ones,
 * upgrades to TLS in place (STARTTLS), restarts the stream, keeps the connection alive with
 * whitespace (RFC 6120 §4.6.1) and ends it cleanly. It knows nothing of SASL or stanzas.
 */
export class XmppConnection {
  socket: Socket;
  readonly framer: Framer;
  private handler: StreamHandler;
  private closed = false;
  private lastWrite = Date.now();
  private keepalive: NodeJS.Timeout | undefined;
  private closing: NodeJS.Timeout | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** Set once the stream close tag was written: nothing else may follow it. */
  private closeSent = false;

  constructor(socket: Socket, handler: StreamHandler, private readonly opts: ConnectionOptions) {
    this.socket = socket;
    this.handler = handler;
    this.framer = new Framer(opts.limits);
    this.attach(socket);
    if (opts.keepaliveMs > 0) {
      const every = Math.max(1000, Math.floor(opts.keepaliveMs / 2));
      this.keepalive = setInterval(() => this.keepaliveTick(), every);
      this.keepalive.unref();
    }
  }

  setHandler(h: StreamHandler): void {
    this.handler = h;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get encrypted(): boolean {
    return this.socket instanceof tls.TLSSocket && this.socket.encrypted;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    try {
      // frames completed before a bad byte are handled first, then the error (see Framer.pushSafe)
      const { events, error } = this.framer.pushSafe(chunk);
      for (const ev of events) {
        if (this.closed) return;
        if (ev.type === "stanza") this.handler.onStanza(ev.name, ev.bytes);
        else if (ev.type === "open") this.handler.onOpen(ev.name, ev.attrs);
        else this.handler.onClose();
      }
      if (error && !this.closed) this.handler.onFramingError(error);
    } catch (err) {
      // A bug must cost one connection, never the process and every other session with it.
      this.handler.onFramingError(err instanceof FramingError ? err
        : new FramingError("XML_INTERNAL", "internal-server-error", `internal error: ${(err as Error).message}`));
    }
  };
  private readonly onSocketClose = (): void => this.finish();
  private readonly onSocketError = (err: Error): void => this.finish(err);

  private attach(s: Socket): void {
    s.setNoDelay(true); // Nagle + delayed ACK stalls TLS 1.3 handshakes ~40 ms (docs/architecture.md §8.1)
    s.on("data", this.onData);
    s.on("close", this.onSocketClose);
    s.on("error", this.onSocketError);
  }

  private detach(s: Socket): void {
    s.off("data", this.onData);
    s.off("close", this.onSocketClose);
    s.off("error", this.onSocketError);
  }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    clearTimeout(this.closing);
    if (!this.socket.destroyed) this.socket.destroy();
    this.handler.onSocketClosed(err);
  }

  private keepaliveTick(): void {
    if (this.closed || this.closeSent) return;
    if (Date.now() - this.lastWrite >= this.opts.keepaliveMs) this.write(" ");
  }

  /** Returns false when the socket buffer is over its high-water mark (caller should back off). */
  write(data: string | Buffer): boolean {
    if (this.closed || this.closeSent) return false;
    this.lastWrite = Date.now();
    this.bytesOut += typeof data === "string" ? Buffer.byteLength(data) : data.length;
    // Coalesce the writes of one tick (the stanzas of one incoming chunk, a fan-out): one TLS
    // record and one syscall instead of one per stanza. Only TLS sockets: a plain one may be
    // handed to STARTTLS in this very tick, and must not hold bytes back.
    if (this.corked === undefined && this.socket instanceof tls.TLSSocket) {
      const s = this.socket;
      this.corked = s;
      s.cork();
      process.nextTick(() => {
        this.corked = undefined;
        s.uncork();
      });
    }
    this.socket.write(data);
    return this.socket.writableLength < (this.opts.highWaterMark ?? 1 << 20);
  }

  /** The socket corked until the end of this tick (see write). */
  private corked: tls.TLSSocket | undefined;

  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** The TLS socket, once encrypted (ClientConnection). */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket && this.socket.encrypted ? this.socket : undefined;
  }

  /** The negotiated TLS version, once encrypted (ClientConnection). */
  get tlsProtocol(): string | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket.getProtocol() ?? undefined : undefined;
  }

  /** Flow control (ClientConnection): stop / resume reading from the peer. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  onceDrain(fn: () => void): void {
    this.socket.once("drain", fn);
  }

  /** Stream restart (RFC 6120 §4.3.3): the framer expects a fresh header. */
  restart(): void {
    this.framer.reset();
  }

  /** Server side of STARTTLS: wrap the plain socket; resolves once the handshake completes. */
  upgradeServer(options: tls.TlsOptions, handshakeTimeoutMs: number): Promise<void> {
    const raw = this.socket;
    this.detach(raw);
    const secure = new tls.TLSSocket(raw, { ...options, isServer: true });
    this.socket = secure;
    this.attach(secure);
    this.framer.reset();
    return this.handshake(secure, "secure", handshakeTimeoutMs);
  }

  /** Client side of STARTTLS: resolves once the server's certificate was accepted. */
  upgradeClient(options: tls.ConnectionOptions, handshakeTimeoutMs: number, onSocket?: (secure: tls.TLSSocket) => void): Promise<void> {
    const raw = this.socket;
    this.detach(raw);
    const secure = tls.connect({ ...options, socket: raw });
    onSocket?.(secure);
    this.socket = secure;
    this.attach(secure);
    this.framer.reset();
    return this.handshake(secure, "secureConnect", handshakeTimeoutMs);
  }

  private handshake(s: tls.TLSSocket, event: "secure" | "secureConnect", timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        const err = new Error("TLS handshake timed out");
        reject(err);
        this.finish(err);
      }, timeoutMs);
      const ok = (): void => {
        cleanup();
        resolve();
      };
      const fail = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const gone = (): void => {
        cleanup();
        reject(new Error("connection closed during TLS handshake"));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        s.off(event, ok);
        s.off("error", fail);
        s.off("close", gone);
      };
      s.once(event, ok);
      s.once("error", fail);
      s.once("close", gone);
    });
  }

  /** Closes the stream politely: close tag, then end; destroys after a grace period. */
  end(graceMs = 2000): void {
    if (this.closed) return;
    if (!this.closeSent) {
      this.socket.write(STREAM_CLOSE);
      this.closeSent = true;
    }
    this.socket.end();
    clearTimeout(this.closing);
    this.closing = setTimeout(() => this.finish(), graceMs);
    this.closing.unref();
  }

  /** Sends a stream error (RFC 6120 §4.9) and closes. `header` is written first if none was sent yet; `appCondition` see ClientConnection; `conditionText` see streamError. */
  fail(condition: StreamErrorCondition, text?: string, header?: string, appCondition?: string, conditionText?: string): void {
    if (this.closed || this.closeSent) return;
    this.socket.write((header ?? "") + streamError(condition, text, appCondition, conditionText));
    this.closeSent = true;
    this.end();
  }

  destroy(): void {
    this.finish();
  }

  /**
   * Hands the socket over (node-to-node forwarding, docs/architecture.md §8.7): this connection lets go
   * of it — no handler call, no close — and counts as closed. Bytes the framer holds are not returned:
   * call it only at an element boundary with nothing buffered.
   */
  release(): Socket {
    this.closed = true;
    clearInterval(this.keepalive);
    clearTimeout(this.closing);
    this.detach(this.socket);
    this.socket.pause();
    return this.socket;
  }
}
