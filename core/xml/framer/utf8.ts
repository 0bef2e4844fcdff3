import { isUtf8 } from "node:buffer";
import { FramingError } from "../errors.js";

const U_FFFE = Buffer.from([0xef, 0xbf, 0xbe]);
const U_FFFF = Buffer.from([0xef, 0xbf, 0xbf]);

/**
 * Checks the text of a whole frame at once (one native pass) rather than byte by byte in the
 * scanner: the scanner only looks at ASCII delimiters, which UTF-8 never hides inside a sequence,
 * so a frame's boundaries are right even before its encoding is known to be.
 */
export function checkFrameText(bytes: Buffer): void {
  if (!isUtf8(bytes)) throw new FramingError("XML_INVALID_UTF8", "not-well-formed", "invalid UTF-8");
  // U+FFFE and U+FFFF are valid UTF-8 but not XML characters (XML 1.0 §2.2); servers' parsers refuse
  // them. Both encode with a 0xBF byte, so the common frame is cleared by one byte search.
  if (bytes.includes(0xbf) && (bytes.includes(U_FFFE) || bytes.includes(U_FFFF))) {
    throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "non-character U+FFFE/U+FFFF");
  }
}
