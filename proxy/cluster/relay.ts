/**
 * A TCP client's session forwarded to its account's owner node (docs/architecture.md §8.7): the
 * client's bytes go to the owner as they come; the owner's are framed here and written one whole
 * top-level element at a time, so that at SIGTERM this node can end the client's stream with a stream
 * error between two elements (RFC 6120 §4.9: a stream error is a top-level element; one written into
 * an element in flight would be neither). At the owner's SASL `<success/>` the framer restarts with the
 * stream (RFC 6120 §6.4.6), as in ws-splice.ts. A read of whitespace only (the owner's keepalive, RFC
 * 6120 §4.6.1) is passed on as it is: what the client has is always whole elements, so whitespace may
 * go between them, and the keepalive still keeps the client's NAT mapping and liveness check going.
 */
import type * as tls from "node:tls";
import { Framer } from "../../core/xml/framer.js";
import { NS_SASL } from "../../core/xml/ns.js";
import { peekAttr } from "../../core/xml/peek.js";
import { streamError } from "../../core/xml/stream.js";
import type { Logger } from "../log.js";
import { headerFrom, IN_FLIGHT_WAIT_MS, LINK_LIMITS, SYNTHETIC_HEADER } from "./ws-splice.js";


/** Only XML whitespace (RFC 6120 §4.6.1 keepalives). */
function isWhitespace(b: Buffer): boolean {
  if (b.length === 0) return false;
  for (const c of b) if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  return true;
}

export class TcpRelay {
  private readonly fromOwner = new Framer(LINK_LIMITS);
  /** SIGTERM: the stream error to write once the owner's element in flight is complete. */
  private ending: string | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  /** The stream error was written: the client's socket is ending, the link gone. */
  private finished = false;
  private closed = false;

  constructor(private readonly client: tls.TLSSocket, private readonly link: tls.TLSSocket, private readonly log: Logger, private readonly onClosed: () => void) {
    this.fromOwner.push(SYNTHETIC_HEADER);
  }

  start(): void {
    const { client, link } = this;
    client.on("error", (e) => this.log.debug({ reason: e.message }, "forwarded client connection error"));
    link.on("error", (e) => this.log.debug({ reason: e.message }, "forwarding link error"));
    client.on("close", () => this.close());
    link.on("close", () => {
      if (!this.finished) this.close();
    });
    link.on("data", (chunk: Buffer) => this.onOwnerData(chunk));
    client.pipe(link);
    client.resume();
    link.resume();
  }

  private onOwnerData(chunk: Buffer): void {
    if (this.closed || this.finished) return;
    const { events, error } = this.fromOwner.pushSafe(chunk);
    // the chunk's whole elements in one write (one TLS record rather than one per element)
    const out: Buffer[] = [];
    if (events.length === 0 && isWhitespace(chunk)) out.push(chunk);
    for (const ev of events) {
      if (ev.type === "open") out.push(Buffer.from(headerFrom(ev.attrs)));
      else if (ev.type === "close") out.push(Buffer.from("</stream:stream>"));
      else {
        out.push(ev.bytes);
        // RFC 6120 §6.4.6: the owner's next bytes are a new stream
        if (ev.name === "success" && peekAttr(ev.bytes, "xmlns") === NS_SASL) this.fromOwner.reset();
      }
    }
    const more = out.length === 0 || this.client.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    if (error) {
      this.log.warn({ reason: error.message }, "forwarding link: the owner's stream is not well-formed");
      return this.close();
    }
    if (this.ending !== undefined && this.fromOwner.bufferedBytes === 0) return this.finish();
    if (!more && !this.link.isPaused()) {
      this.link.pause();
      this.client.once("drain", () => this.link.resume());
    }
  }

  /**
   * SIGTERM of this node: the client is told `<see-other-host>` naming `to` ("host:port"), else
   * `<system-shutdown/>`, once the owner's element in flight (if any) is complete (at most
   * IN_FLIGHT_WAIT_MS); nothing more goes to the owner meanwhile. Then the link is closed: the owner
   * sees its client leave.
   */
  stop(to: string | undefined): void {
    if (this.closed || this.ending !== undefined) return;
    this.ending = to !== undefined
      ? streamError("see-other-host", "the proxy node is restarting", undefined, to)
      : streamError("system-shutdown", "the proxy is shutting down");
    // nothing more goes to the owner; the client is still read (and dropped), so that its close is seen
    this.client.unpipe(this.link);
    this.client.on("data", () => undefined);
    this.client.resume();
    if (this.fromOwner.bufferedBytes === 0) return this.finish();
    this.endTimer = setTimeout(() => this.finish(), IN_FLIGHT_WAIT_MS);
    this.endTimer.unref();
  }

  private finish(): void {
    if (this.closed || this.finished) return;
    this.finished = true;
    clearTimeout(this.endTimer);
    this.client.end(this.ending ?? "");
    this.link.destroy();
    // the client's socket closes once the error is written (or the peer's close arrives)
    setTimeout(() => this.close(), 2000).unref();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.endTimer);
    this.link.destroy();
    this.client.destroy();
    this.onClosed();
  }
}
