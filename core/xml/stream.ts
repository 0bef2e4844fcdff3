import { escapeXML } from "./element.js";
import type { StreamErrorCondition } from "./errors.js";
import { NS_CLIENT, NS_STREAM, NS_STREAMS_ERR } from "./ns.js";

/** Namespaces live in ./ns.ts; these re-exports only serve proxy/check.ts until it imports from there. */

export interface StreamHeader {
  from?: string;
  to?: string;
  id?: string;
  lang?: string;
}

const HEADER_START = `<?xml version='1.0'?><stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' version='1.0'`;

/** RFC 6120 §4.7: the stream header; `<?xml?>` declaration first, as servers send it. */
export function streamHeader(h: StreamHeader): string {
  let s = HEADER_START;
  if (h.from) s += ` from='${escapeXML(h.from)}'`;
  if (h.to) s += ` to='${escapeXML(h.to)}'`;
  if (h.id) s += ` id='${escapeXML(h.id)}'`;
  s += ` xml:lang='${escapeXML(h.lang ?? "en")}'>`;
  return s;
}

export const STREAM_CLOSE = "</stream:stream>";

/**
 * RFC 6120 §4.9: a stream error, followed by the close tag. `appCondition` is an already serialised
 * application-specific condition element (§4.9.4), written after the text as the §4.9.2 syntax has it
 * (e.g. XEP-0198's <handled-count-too-high/>, core/sm/elements.ts).
 */
export function streamError(condition: StreamErrorCondition, text?: string, appCondition?: string, conditionText?: string): string {
  // `conditionText`: the condition's character data (only <see-other-host/> has any, RFC 6120 §4.9.3.19)
  let s = conditionText ? `<stream:error><${condition} xmlns='${NS_STREAMS_ERR}'>${escapeXML(conditionText)}</${condition}>` : `<stream:error><${condition} xmlns='${NS_STREAMS_ERR}'/>`;
  if (text) s += `<text xmlns='${NS_STREAMS_ERR}' xml:lang='en'>${escapeXML(text)}</text>`;
  if (appCondition) s += appCondition;
  return s + `</stream:error>${STREAM_CLOSE}`;
}
