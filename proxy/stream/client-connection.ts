import type * as tls from "node:tls";
import type { FramerLimits } from "../../core/xml/framer.js";
import type { StreamErrorCondition } from "../../core/xml/errors.js";

/**
 * What a ClientStream (and its BoundSession) needs from the connection to its client, whatever carries it: an
 * XmppConnection (one XMPP stream over TCP/TLS) or a WebSocketConnection (RFC 7395). The session
 * writes the RFC 6120 byte form (stream header, `</stream:stream>`, stanzas); a transport with
 * other framing translates.
 */
export interface ClientConnection {
  /** The incoming framer; only its limits are touched (tighter before authentication). */
  readonly framer: { setLimits(limits: Partial<FramerLimits>): void };
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Bytes written but not yet sent to the peer. */
  readonly writableLength: number;
  /** The negotiated TLS version ("TLSv1.3"), when encrypted. */
  readonly tlsProtocol: string | undefined;
  /** The TLS socket the proxy terminates for this client, once encrypted: channel binding (SCRAM -PLUS). */
  readonly tlsSocket: tls.TLSSocket | undefined;
  /** Returns false when the output is over its high-water mark (caller should back off). */
  write(data: string | Buffer): boolean;
  /** Stream restart (RFC 6120 §4.3.3): the peer opens a fresh stream next. */
  restart(): void;
  /** STARTTLS, server side. Only plain TCP connections support it. */
  upgradeServer(options: tls.TlsOptions, handshakeTimeoutMs: number): Promise<void>;
  /** Closes the stream politely, then the connection. */
  end(graceMs?: number): void;
  /**
   * A stream error (after `header` if given), then close. `appCondition`: an application-specific
   * condition element, already serialised (RFC 6120 §4.9.4; XEP-0198's <handled-count-too-high/>).
   */
  fail(condition: StreamErrorCondition, text?: string, header?: string, appCondition?: string, conditionText?: string): void;
  destroy(): void;
  /** Flow control: stop / resume reading from the peer. */
  pause(): void;
  resume(): void;
  /** Calls `fn` once when the queued output has been handed to the OS. */
  onceDrain(fn: () => void): void;
}
