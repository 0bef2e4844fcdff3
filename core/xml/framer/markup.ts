import { FramingError } from "../errors.js";
import { B, isSpace, tokString } from "./bytes.js";
import { Max } from "./limits.js";

/**
 * The two '<' constructs that are not tags: '<!' (only CDATA sections are allowed) and '<?' (only
 * the XML declaration, once, before the stream header). RFC 6120 §11.1 forbids comments,
 * processing instructions and DTDs (with them, entity declarations) in an XMPP stream.
 */

/**
 * One more byte after '<!' (appended to `t`). Returns true once `<![CDATA[` is complete; throws as
 * soon as the bytes can no longer become a CDATA section.
 */
export function bangByte(t: number[], c: number, depth: number): boolean {
  t.push(c);
  const s = tokString(t);
  if (s === "[CDATA[") {
    // XML 1.0 §2.7: CDATA is character data, so it cannot stand between stanzas
    if (depth < 2) throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "CDATA outside of a stanza");
    return true;
  }
  if (s.startsWith("--") || s.startsWith("DOCTYPE") || s.startsWith("ENTITY")) {
    throw new FramingError("XML_RESTRICTED", "restricted-xml", s.startsWith("--") ? "comment" : "DTD");
  }
  // still a prefix of something: keep reading until it is recognisable (and then refused, or CDATA)
  if (!"[CDATA[".startsWith(s) && !"DOCTYPE".startsWith(s) && !"ENTITY".startsWith(s) && s !== "-") {
    throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "bad '<!' construct");
  }
  return false;
}

/**
 * One more byte after '<?' (appended to `t`). Returns true once the declaration `<?xml …?>`
 * (XML 1.0 §2.8) is complete; anything else after '<?' is a processing instruction.
 */
export function declByte(t: number[], c: number): boolean {
  t.push(c);
  if (t.length > Max.DECL_BYTES) throw new FramingError("XML_HEADER_TOO_LARGE", "policy-violation", "XML declaration too long");
  if (t.length === 4) {
    if (!(t[0] === 0x78 && t[1] === 0x6d && t[2] === 0x6c && isSpace(t[3]!))) {
      throw new FramingError("XML_RESTRICTED", "restricted-xml", "processing instruction");
    }
  }
  if (!(c === B.GT && t.length >= 2 && t[t.length - 2] === B.QM)) return false;
  if (t.length < 5) throw new FramingError("XML_RESTRICTED", "restricted-xml", "processing instruction");
  // RFC 6120 §11.6: XMPP is UTF-8 only
  const enc = /encoding\s*=\s*["']([^"']*)["']/.exec(Buffer.from(t).toString("latin1"));
  if (enc && enc[1]!.toLowerCase() !== "utf-8") {
    throw new FramingError("XML_NOT_WELL_FORMED", "unsupported-encoding", "only UTF-8 is allowed");
  }
  return true;
}
