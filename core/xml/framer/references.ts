import { FramingError } from "../errors.js";
import { isXmlChar } from "./bytes.js";

/** XML 1.0 §4.6: the five entities every processor knows without a DTD. */
const PREDEFINED = new Set(["lt", "gt", "amp", "quot", "apos"]);

/**
 * Checks the name of a reference (`&name;`, the part between '&' and ';'): a predefined entity or a
 * character reference to an XML character (XML 1.0 §4.1 WFC: Legal Character). Any other entity
 * is restricted XML (RFC 6120 §11.1): without a DTD it could not be defined anyway.
 */
export function checkReference(name: string): void {
  if (PREDEFINED.has(name)) return;
  let cp = NaN;
  if (/^#x[0-9a-fA-F]{1,6}$/.test(name)) cp = parseInt(name.slice(2), 16);
  else if (/^#[0-9]{1,7}$/.test(name)) cp = parseInt(name.slice(1), 10);
  else if (/^[A-Za-z_][\w.-]*$/.test(name)) {
    throw new FramingError("XML_RESTRICTED", "restricted-xml", "entity reference");
  }
  if (!isXmlChar(cp)) throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "bad character reference");
}

/** An attribute value with its references replaced (they were checked while scanning). */
export function decodeAttr(raw: string): string {
  return raw.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_m, e: string) => {
    switch (e) {
      case "lt": return "<";
      case "gt": return ">";
      case "amp": return "&";
      case "quot": return '"';
      case "apos": return "'";
      default: return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}
