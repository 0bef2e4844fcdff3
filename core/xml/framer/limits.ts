import { FramingError } from "../errors.js";

/** The limits a Framer enforces while scanning, before anything is buffered past them. */
export interface FramerLimits {
  /** Max bytes of one top-level element (stanza or nonza). */
  maxStanzaSize: number;
  /** Max element nesting inside the stream (a bare `<message/>` is depth 1). */
  maxDepth: number;
}

export const DEFAULT_LIMITS: FramerLimits = { maxStanzaSize: 262_144, maxDepth: 64 };

// Fixed bounds on what a peer can make the framer hold. None of them is reached by anything a
// real client sends; they exist so that no token grows without bound while it is being read.

/**
 * A const enum, so that tsc writes the numbers into the scanner's comparisons (an imported `const`
 * is a module-variable load, per byte of a name or reference).
 */
export const enum Max {
  /** The stream header and the XML declaration are small; anything longer is abuse. */
  HEADER_BYTES = 8192,
  /** `<?xml version='1.0' encoding='UTF-8'?>` with generous room for whitespace. */
  DECL_BYTES = 256,
  /** Element and attribute names. */
  NAME_BYTES = 1024,
  /** `#x10FFFF` is the longest reference that can be valid (the name between '&' and ';'). */
  ENTITY_BYTES = 12,
  /** Attributes on one element. */
  ATTRIBUTES = 64,
}

/** The limit on a frame being collected: the header before the stream is open, a stanza after. */
export function frameLimit(limits: FramerLimits, inHeader: boolean): number {
  return inHeader ? Max.HEADER_BYTES : limits.maxStanzaSize;
}

/** Thrown when a frame being collected passes `frameLimit`. */
export function frameTooLarge(inHeader: boolean, max: number): FramingError {
  return inHeader
    ? new FramingError("XML_HEADER_TOO_LARGE", "policy-violation", "stream header too large")
    : new FramingError("XML_STANZA_TOO_LARGE", "policy-violation", `stanza larger than ${max} bytes`);
}

export function tooDeep(maxDepth: number): FramingError {
  return new FramingError("XML_TOO_DEEP", "policy-violation", `elements nested deeper than ${maxDepth}`);
}
