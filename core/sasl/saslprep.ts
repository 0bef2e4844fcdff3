/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454), done by @mongodb-js/saslprep with the
 * Unicode 3.2 tables of RFC 3454:
 *   §2.1 mapping: C.1.2 non-ASCII spaces → U+0020, then B.1 "commonly mapped to nothing" → removed
 *        (U+200B is in both tables; like libidn, it becomes a space);
 *   §2.2 normalisation: NFKC;
 *   §2.3 prohibited output: C.1.2, C.2.1, C.2.2, C.3, C.4, C.5 (also a lone surrogate), C.6–C.9;
 *   §2.4 bidi (RFC 3454 §6): no string with both RandALCat and LCat characters, and a string with
 *        any RandALCat character must start and end with one.
 *
 * Unassigned code points (RFC 4013 §2.5, table A.1) are ALLOWED, i.e. the input is prepared as a
 * "query" (RFC 3454 §7), for both callers, the SCRAM client's username and password:
 *   - the username: RFC 5802 §5.1 says so explicitly;
 *   - the password: RFC 5802 §2.2 asks for "stored string" rules, but the proxy never stores a new
 *     credential. The password came from a client (SASL PLAIN) and is only presented to the upstream
 *     server, which stored the credential under its own rules and decides. A.1 is Unicode 3.2's
 *     list, so refusing it would refuse every later character (all emoji, for one) in passwords the
 *     server accepted; the PLAIN path upstream does not prep the password at all. So we do not
 *     judge what only the server can.
 *
 * For printable ASCII the result is the input, the overwhelmingly common case and what the
 * RFC 5802 / RFC 7677 test vectors use. Returns null when the string cannot be prepared.
 */
import { saslprep as prepare } from "@mongodb-js/saslprep";

export function saslprep(input: string): string | null {
  // Fast path: printable ASCII is invariant under every step (and is all LCat or neutral).
  if (/^[\x20-\x7e]*$/.test(input)) return input;
  try {
    return prepare(input, { allowUnassigned: true });
  } catch {
    // Its errors say which rule failed; that is all a caller could log, and the SCRAM client must
    // not echo the input. (1.6.3 also throws a TypeError when everything maps to nothing, e.g.
    // "\u00AD": rejecting that is right too, since an empty username or password is refused.)
    return null;
  }
}
