/**
 * The two kinds of XMPP error the proxy writes, each built in one place:
 * - stream errors (RFC 6120 §4.9): streamError in ./stream.ts, which also closes the stream;
 * - stanza errors (RFC 6120 §8.3): {@link errorReply} below.
 */
import { Element } from "ltx";
import { NS_STANZAS } from "./ns.js";

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

/** RFC 6120 §8.3.2: what the sender may do about a stanza error. */
export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/** RFC 6120 §8.3.3: the defined stanza error conditions. */
export type StanzaErrorCondition =
  | "bad-request"
  | "conflict"
  | "feature-not-implemented"
  | "forbidden"
  | "gone"
  | "internal-server-error"
  | "item-not-found"
  | "jid-malformed"
  | "not-acceptable"
  | "not-allowed"
  | "not-authorized"
  | "policy-violation"
  | "recipient-unavailable"
  | "redirect"
  | "registration-required"
  | "remote-server-not-found"
  | "remote-server-timeout"
  | "resource-constraint"
  | "service-unavailable"
  | "subscription-required"
  | "undefined-condition"
  | "unexpected-request";

export interface StanzaErrorReply {
  /** Addresses of the reply, as given (usually the request's, swapped). */
  from?: string;
  to?: string;
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  /** Human-readable text (§8.3.2 <text/>), in the language `lang` (default "en"). */
  text?: string;
  lang?: string;
  /** The entity that generated the error, when the proxy answers on another's behalf (§8.3.2). */
  by?: string;
}

/**
 * An error reply to `request` (RFC 6120 §8.3): same element name and id, type='error', the
 * addresses as given, then <error type by?><condition xmlns=stanzas/><text xml:lang>?</error>.
 * Only the request's name and id are read. Children the caller adds come after the <error/>.
 */
export function errorReply(request: Element, e: StanzaErrorReply): Element {
  const attrs: Record<string, string> = { type: "error" };
  const id: unknown = request.attrs.id;
  if (typeof id === "string") attrs.id = id;
  if (e.from !== undefined) attrs.from = e.from;
  if (e.to !== undefined) attrs.to = e.to;
  const reply = new Element(request.name, attrs);
  const errAttrs: Record<string, string> = { type: e.type };
  if (e.by !== undefined) errAttrs.by = e.by;
  const error = reply.c("error", errAttrs);
  error.c(e.condition, { xmlns: NS_STANZAS });
  if (e.text !== undefined) error.c("text", { xmlns: NS_STANZAS, "xml:lang": e.lang ?? "en" }).t(e.text);
  return reply;
}
