import { escapeXml } from "./element.js";
import type { StreamErrorCondition } from "./errors.js";

export const NS_STREAM = "http://etherx.jabber.org/streams";
export const NS_CLIENT = "jabber:client";
export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
export const NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";

export interface StreamHeader {
  from?: string;
  to?: string;
  id?: string;
  lang?: string;
}

/** RFC 6120 §4.7: the stream header; `<?xml?>` declaration first, as servers send it. */
export function streamHeader(h: StreamHeader): string {
  let s = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'";
  if (h.from) s += ` from='${escapeXml(h.from)}'`;
  if (h.to) s += ` to='${escapeXml(h.to)}'`;
  if (h.id) s += ` id='${escapeXml(h.id)}'`;
  s += ` xml:lang='${escapeXml(h.lang ?? "en")}'>`;
  return s;
}

export const STREAM_CLOSE = "</stream:stream>";

/** RFC 6120 §4.9: a stream error, followed by the close tag. */
export function streamError(condition: StreamErrorCondition, text?: string): string {
  let s = `<stream:error><${condition} xmlns='${NS_STREAMS_ERR}'/>`;
  if (text) s += `<text xmlns='${NS_STREAMS_ERR}' xml:lang='en'>${escapeXml(text)}</text>`;
  return s + `</stream:error>${STREAM_CLOSE}`;
}
