/**
 * Stream-level failures found while reading a peer's XML. Each carries the RFC 6120 §4.9.3
 * stream error condition it turns into, and a stable code for logs and metrics.
 */
export type StreamErrorCondition =
  | "bad-format"
  | "bad-namespace-prefix"
  | "conflict"
  | "connection-timeout"
  | "host-gone"
  | "host-unknown"
  | "improper-addressing"
  | "internal-server-error"
  | "invalid-from"
  | "invalid-namespace"
  | "invalid-xml"
  | "not-authorized"
  | "not-well-formed"
  | "policy-violation"
  | "remote-connection-failed"
  | "reset"
  | "resource-constraint"
  | "restricted-xml"
  | "see-other-host"
  | "system-shutdown"
  | "undefined-condition"
  | "unsupported-encoding"
  | "unsupported-feature"
  | "unsupported-stanza-type"
  | "unsupported-version";

export type FramingCode =
  | "XML_NOT_WELL_FORMED"
  | "XML_RESTRICTED"
  | "XML_INVALID_UTF8"
  | "XML_STANZA_TOO_LARGE"
  | "XML_TOO_DEEP"
  | "XML_HEADER_TOO_LARGE"
  | "XML_BAD_PREFIX"
  | "XML_INTERNAL";

export class FramingError extends Error {
  readonly condition: StreamErrorCondition;
  readonly code: FramingCode;
  constructor(code: FramingCode, condition: StreamErrorCondition, message: string) {
    super(message);
    this.name = "FramingError";
    this.code = code;
    this.condition = condition;
  }
}
