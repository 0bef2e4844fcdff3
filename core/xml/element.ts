import { Element, parse } from "ltx";
import { FramingError } from "./errors.js";

/**
 * escapeXML: the one XML escape (& < > " ' → entities), for attribute values and character data
 * alike. It is ltx's own, the one Element#toString uses for attributes, so text written by hand
 * matches what ltx serialises (the fan-out template relies on that).
 */
export { Element, escapeXML } from "ltx";

/**
 * Builds the element tree of one framed stanza. The framer already proved the bytes well-formed
 * and free of restricted XML; ltx still throws on things it dislikes, which become a stream error
 * rather than an exception escaping into the socket handler.
 */
export function parseStanza(bytes: Buffer | string): Element {
  try {
    const el = parse(typeof bytes === "string" ? bytes : bytes.toString("utf8"));
    if (!(el instanceof Element)) throw new Error("no element");
    return el;
  } catch {
    throw new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "stanza could not be parsed");
  }
}
