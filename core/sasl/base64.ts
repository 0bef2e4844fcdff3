import { SaslError } from "./errors.js";

/**
 * Strict base64 for SASL payloads carried in XMPP (RFC 6120 §6.4.2 / §6.4.5):
 * - the standard alphabet of RFC 4648 §4 only (no URL-safe alphabet, no internal whitespace or line
 *   breaks — RFC 6120 §6.4.2 forbids them),
 * - padding required, and canonical (RFC 4648 §3.5: unused trailing bits must be zero), so one
 *   payload has exactly one encoding,
 * - a single "=" is the zero-length payload (RFC 6120 §6.4.2), as is empty element content.
 * Leading/trailing XML whitespace is tolerated because callers may hand us an element's text as-is.
 * Anything else → SaslError("incorrect-encoding"), RFC 6120 §6.5.2.
 */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Upper bound on accepted encoded length, checked before any decoding work. */
export const MAX_SASL_BASE64_LENGTH = 16_384;

export function decodeSaslBase64(text: string, maxLength: number = MAX_SASL_BASE64_LENGTH): Buffer {
  const t = text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
  if (t.length > maxLength) throw new SaslError("malformed-request", "payload too large");
  if (t === "" || t === "=") return Buffer.alloc(0);
  if (!BASE64_RE.test(t)) throw new SaslError("incorrect-encoding", "invalid base64");
  const buf = Buffer.from(t, "base64");
  // Node silently ignores non-zero trailing bits; re-encoding catches non-canonical input.
  if (buf.toString("base64") !== t) throw new SaslError("incorrect-encoding", "non-canonical base64");
  return buf;
}

/** Encodes a SASL payload for XMPP; the zero-length payload becomes "=" (RFC 6120 §6.4.2). */
export function encodeSaslBase64(data: Buffer | string): string {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return buf.length === 0 ? "=" : buf.toString("base64");
}

/** Decodes UTF-8 strictly (invalid sequences → SaslError), instead of Node's silent U+FFFD replacement. */
export function decodeUtf8Strict(buf: Buffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    throw new SaslError("malformed-request", "invalid UTF-8");
  }
}
