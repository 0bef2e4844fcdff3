import type { StreamErrorCondition } from "../../core/xml/errors.js";

export type UpstreamErrorCode =
  | "UPSTREAM_CONNECT" // TCP connect failed
  | "UPSTREAM_TLS" // TLS handshake or certificate verification failed
  | "UPSTREAM_TIMEOUT" // no answer in time
  | "UPSTREAM_STREAM_ERROR" // the server sent a stream error
  | "UPSTREAM_CLOSED" // the server closed the connection
  | "UPSTREAM_PROTOCOL" // the server said something we cannot work with
  | "UPSTREAM_AUTH"; // SASL failure (condition passed through)

export interface UpstreamErrorDetail {
  /** What was awaited when it failed ("stream features", "STARTTLS", "SASL"). */
  step?: string;
  /** The socket or TLS error underneath (ECONNREFUSED, a certificate error, a reset), as Node gave it. */
  cause?: Error;
  /** UPSTREAM_AUTH with a kept SCRAM secret: the server's salt or count changed, the secret is stale. */
  stale?: boolean;
}

/**
 * A failure of the server-facing leg; `condition` is what the client-facing leg reports. `step`
 * and `cause` let `minimix-proxy check` word its report without parsing `message`.
 */
export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;
  /** For UPSTREAM_AUTH: the RFC 6120 §6.5 SASL condition; otherwise a stream error condition. */
  readonly condition: string;
  readonly text?: string;
  readonly step?: string;
  /** See UpstreamErrorDetail.stale. */
  readonly stale: boolean;
  declare readonly cause?: Error;
  constructor(code: UpstreamErrorCode, condition: string, message: string, text?: string, detail: UpstreamErrorDetail = {}) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = "UpstreamError";
    this.code = code;
    this.condition = condition;
    this.text = text;
    if (detail.step !== undefined) this.step = detail.step;
    this.stale = detail.stale === true;
  }

  get streamCondition(): StreamErrorCondition {
    return this.code === "UPSTREAM_STREAM_ERROR" && this.condition === "host-unknown" ? "host-unknown" : "remote-connection-failed";
  }
}
