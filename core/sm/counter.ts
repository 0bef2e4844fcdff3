/**
 * XEP-0198 sequence numbers (docs/architecture.md §8.4). Both counters of a stream — stanzas sent,
 * stanzas handled ('h') — are xs:unsignedInt and wrap from 2^32-1 back to 0 (XEP-0198 §4, "Acks").
 * Every comparison of two counts therefore goes through {@link countDiff}, never `<` on raw values.
 */
import { NS_CLIENT } from "../xml/ns.js";

/** Counts live in [0, SM_WRAP); SM_WRAP - 1 + 1 is 0 (XEP-0198 §4). */
export const SM_WRAP = 2 ** 32;

/** (h + 1) mod 2^32. `h` must already be a count in [0, 2^32). */
export function nextCount(h: number): number {
  return (h + 1) % SM_WRAP;
}

/** (h + n) mod 2^32 for a non-negative integer n. */
export function addCount(h: number, n: number): number {
  return (h + (n % SM_WRAP)) % SM_WRAP;
}

/**
 * How many steps `later` is ahead of `earlier`, modulo 2^32: countDiff(1, 2^32 - 2) is 3.
 * Always in [0, 2^32); a `later` that is really behind `earlier` comes out as a huge number, which
 * callers read with serial-number arithmetic (RFC 1982): a difference ≥ 2^31 means "behind".
 */
export function countDiff(later: number, earlier: number): number {
  const d = (later - earlier) % SM_WRAP;
  return d < 0 ? d + SM_WRAP : d;
}

/** Half the counter space: a {@link countDiff} at or above this means "behind" (RFC 1982 §3.2). */
export const SM_HALF = 2 ** 31;

/**
 * XEP-0198 §1/§4: only stanzas are counted — top-level `iq`, `message`, `presence` in the content
 * namespace — never nonzas (`<r/>`, `<a/>`, `<enable/>`, stream features, SASL, whitespace). Pass
 * the element's namespace when known (a top-level element in another namespace is not a stanza;
 * over WebSocket stanzas carry xmlns='jabber:client' explicitly, RFC 7395 §3.5).
 */
export function isCounted(name: string, xmlns?: string): boolean {
  if (xmlns !== undefined && xmlns !== NS_CLIENT) return false;
  return name === "iq" || name === "message" || name === "presence";
}

const DIGITS = /^0*[0-9]{1,10}$/;

/**
 * Strict reading of an 'h' attribute (xs:unsignedInt, XEP-0198 §10 schema): ASCII decimal digits
 * only (no sign, no spaces, no exponent, no hex; leading zeros allowed), value 0..2^32-1. Anything else is undefined —
 * the caller answers it as a protocol error, never as 0.
 */
export function parseH(attr: string | undefined): number | undefined {
  if (attr === undefined || !DIGITS.test(attr)) return undefined;
  const n = Number(attr);
  return n < SM_WRAP ? n : undefined;
}
