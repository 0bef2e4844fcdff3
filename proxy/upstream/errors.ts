import type { StreamErrorCondition } from "../../core/xml/errors.js";

export type UpstreamErrorCode =
  | "UPSTREAM_CONNECT" // TCP connect failed
  | "UPSTREAM_TLS" // TLS handshake or certificate verification failed
  | "UPSTREAM_TIMEOUT" // no answer in time
  | "UPSTREAM_STREAM_ERROR" // the server sent a stream error
  | "UPSTREAM_CLOSED" // the server closed the connection
  | "UPSTREAM_PROTOCOL" // the server said something we cannot work with
  | "UPSTREAM_AUTH"; // SASL failure (condition passed through)

/** A failure of the server-facing leg; `condition` is what the client-facing leg reports. */
export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;
  /** For UPSTREAM_AUTH: the RFC 6120 §6.5 SASL condition; otherwise a stream error condition. */
  readonly condition: string;
  readonly text?: string;
  constructor(code: UpstreamErrorCode, condition: string, message: string, text?: string) {
    super(message);
    this.name = "UpstreamError";
    this.code = code;
    this.condition = condition;
    this.text = text;
  }

  get streamCondition(): StreamErrorCondition {
    return this.code === "UPSTREAM_STREAM_ERROR" && this.condition === "host-unknown" ? "host-unknown" : "remote-connection-failed";
  }
}
