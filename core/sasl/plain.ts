/**
 * SASL PLAIN (RFC 4616) as carried in XMPP (RFC 6120 §6).
 *
 *   message = [authzid] UTF8NUL authcid UTF8NUL passwd     (RFC 4616 §2)
 *   authcid = 1*SAFE, passwd = 1*SAFE, authzid = 1*SAFE    (SAFE = any UTF-8 char except NUL)
 */
import { parseJid } from "../jid.js";
import { decodeSaslBase64, decodeUtf8Strict, encodeSaslBase64 } from "./base64.js";
import { SaslError } from "./errors.js";

export interface PlainCredentials {
  /** "" when the client sent none (RFC 4616 §2: the authzid is optional). */
  authzid: string;
  authcid: string;
  password: string;
}

/**
 * Per-field limits. RFC 4616 §2 only says a server MUST accept up to 255 octets per field; we accept
 * up to 1023 (the JID part limit of RFC 7622 §3, since in XMPP authcid is a localpart and authzid a
 * bare JID) for identities and 1024 octets for passwords — enough for any password manager — and
 * reject beyond that so one message cannot make us hold arbitrarily large strings.
 */
export const PLAIN_MAX_AUTHCID_BYTES = 1023;
export const PLAIN_MAX_AUTHZID_BYTES = 3071; // a bare JID: 1023 + "@" + 1023, with room to spare
export const PLAIN_MAX_PASSWORD_BYTES = 1024;
const MAX_MESSAGE_BYTES = PLAIN_MAX_AUTHZID_BYTES + PLAIN_MAX_AUTHCID_BYTES + PLAIN_MAX_PASSWORD_BYTES + 2;
const MAX_BASE64_CHARS = Math.ceil(MAX_MESSAGE_BYTES / 3) * 4;

/**
 * Parses the base64 content of an XMPP `<auth mechanism="PLAIN">` (initial response) or `<response>`.
 * Throws SaslError:
 * - incorrect-encoding: not strict base64 (RFC 6120 §6.5.2);
 * - malformed-request: empty response ("=" or no content, RFC 6120 §6.4.2), not exactly two NULs,
 *   empty authcid or password, invalid UTF-8, a field over its size limit (RFC 6120 §6.5.8);
 * - invalid-authzid: an authzid that is present but not a valid JID (RFC 6120 §6.5.6; in XMPP the
 *   authzid is a bare JID, RFC 6120 §6.3.8). Whether the authcid may act as that JID is the
 *   caller's policy.
 * The error never contains any part of the payload.
 */
export function parsePlainResponse(base64: string): PlainCredentials {
  const buf = decodeSaslBase64(base64, MAX_BASE64_CHARS);
  if (buf.length === 0) throw new SaslError("malformed-request", "empty PLAIN response");
  if (buf.length > MAX_MESSAGE_BYTES) throw new SaslError("malformed-request", "PLAIN response too large");

  // Split on the raw bytes before UTF-8 decoding: NUL (0x00) never occurs inside a multi-byte
  // UTF-8 sequence, and counting octets here gives the RFC 4616 limits in octets.
  const first = buf.indexOf(0);
  const second = first === -1 ? -1 : buf.indexOf(0, first + 1);
  if (first === -1 || second === -1 || buf.indexOf(0, second + 1) !== -1) {
    throw new SaslError("malformed-request", "PLAIN response must contain exactly two NUL separators");
  }
  const authzidBytes = buf.subarray(0, first);
  const authcidBytes = buf.subarray(first + 1, second);
  const passwordBytes = buf.subarray(second + 1);

  if (authcidBytes.length === 0) throw new SaslError("malformed-request", "empty authcid");
  if (passwordBytes.length === 0) throw new SaslError("malformed-request", "empty password");
  if (authcidBytes.length > PLAIN_MAX_AUTHCID_BYTES) throw new SaslError("malformed-request", "authcid too long");
  if (passwordBytes.length > PLAIN_MAX_PASSWORD_BYTES) throw new SaslError("malformed-request", "password too long");
  if (authzidBytes.length > PLAIN_MAX_AUTHZID_BYTES) throw new SaslError("invalid-authzid", "authzid too long");

  const authzid = decodeUtf8Strict(authzidBytes);
  const authcid = decodeUtf8Strict(authcidBytes);
  const password = decodeUtf8Strict(passwordBytes);

  if (authzid !== "" && parseJid(authzid) === null) throw new SaslError("invalid-authzid", "authzid is not a valid JID");
  return { authzid, authcid, password };
}

/**
 * Builds the base64 PLAIN message for sending upstream (already encoded for the XMPP element, unlike
 * the SCRAM client whose strings are raw). Throws SaslError("malformed-request") — without echoing the
 * values — if a field contains NUL or authcid/password is empty, since such a message could not be
 * parsed back unambiguously (RFC 4616 §2).
 */
export function encodePlain(authcid: string, password: string, authzid: string = ""): string {
  if (authcid === "" || password === "") throw new SaslError("malformed-request", "authcid and password must be non-empty");
  if (authcid.includes("\0") || password.includes("\0") || authzid.includes("\0")) {
    throw new SaslError("malformed-request", "PLAIN fields must not contain NUL");
  }
  return encodeSaslBase64(`${authzid}\0${authcid}\0${password}`);
}
