/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454) as far as is reasonable without Unicode tables:
 *   §2.1 mapping: B.1 "commonly mapped to nothing" → removed; C.1.2 non-ASCII spaces → U+0020;
 *   §2.2 normalisation: NFKC;
 *   §2.3 prohibited output: C.1.2 (gone after mapping), C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9.
 * Not done: §2.4 bidi checks (need the Bidi_Class table, which JS regexps cannot query) and the
 * unassigned-code-point check — RFC 4013 §2.5 lets "stored strings" callers skip the latter only for
 * queries, but every SCRAM server we talk to re-preps with its own table anyway, so accepting an
 * unassigned code point merely lets the server decide.
 * For ASCII input without control characters the result is the input, which is the overwhelmingly
 * common case and what the RFC 5802 / RFC 7677 test vectors use.
 * Returns null when the string contains a prohibited code point.
 */

// B.1 (RFC 3454 appendix B.1).
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
// C.1.2 (U+200B is also in B.1 and removed above first, as common SASLprep implementations do).
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/gu;

function isProhibited(cp: number): boolean {
  return (
    cp <= 0x1f || cp === 0x7f || // C.2.1 ASCII controls
    (cp >= 0x80 && cp <= 0x9f) || // C.2.2 non-ASCII controls
    cp === 0x06dd || cp === 0x070f || cp === 0x180e || cp === 0x200c || cp === 0x200d ||
    cp === 0x2028 || cp === 0x2029 || (cp >= 0x2060 && cp <= 0x2063) || cp === 0xfeff ||
    (cp >= 0x1d173 && cp <= 0x1d17a) ||
    (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xf0000 && cp <= 0xffffd) || (cp >= 0x100000 && cp <= 0x10fffd) || // C.3
    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe || // C.4 noncharacters (U+nFFFE, U+nFFFF)
    (cp >= 0xd800 && cp <= 0xdfff) || // C.5 (a lone surrogate in a JS string)
    (cp >= 0xfff9 && cp <= 0xfffd) || // C.6
    (cp >= 0x2ff0 && cp <= 0x2ffb) || // C.7
    cp === 0x0340 || cp === 0x0341 || cp === 0x200e || cp === 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x206a && cp <= 0x206f) || // C.8
    cp === 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f) // C.9
  );
}

export function saslprep(input: string): string | null {
  // Fast path: printable ASCII is invariant under every step.
  if (/^[\x20-\x7e]*$/.test(input)) return input;
  // Lone surrogates (C.5): reject before normalize(), whose handling of them is not specified.
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(input)) return null;
  const mapped = input.replace(MAPPED_TO_NOTHING, "").replace(NON_ASCII_SPACE, " ").normalize("NFKC");
  for (const ch of mapped) {
    if (isProhibited(ch.codePointAt(0) ?? 0)) return null;
  }
  return mapped;
}
