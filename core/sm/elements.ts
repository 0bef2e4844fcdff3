/**
 * XEP-0198 nonzas (urn:xmpp:sm:3) read from and written to the client (docs/architecture.md §8.4).
 * Reading turns an element into a typed value and never throws; writing produces the exact bytes,
 * attributes escaped with ltx's escapeXML.
 */
import type { Element } from "ltx";
import { escapeXML } from "../xml/element.js";
import type { StanzaErrorCondition } from "../xml/errors.js";
import { NS_SM_3, NS_STANZAS } from "../xml/ns.js";
import { streamError } from "../xml/stream.js";
import { parseH } from "./counter.js";

export type SmNonza =
  /** XEP-0198 §3. `max`: the client's preferred resumption time in seconds, when valid. */
  | { kind: "enable"; resume: boolean; max?: number }
  | { kind: "r" }
  | { kind: "a"; h: number }
  /** XEP-0198 §5. */
  | { kind: "resume"; previd: string; h: number }
  /**
   * Not a usable SM nonza: wrong namespace, an element the client may not send (<enabled/>, …), or a
   * required attribute missing or malformed. `element` is the local name, so the edge can answer an
   * <enable/> or <resume/> with <failed/> and anything else with a stream error.
   */
  | { kind: "invalid"; element: string; reason: string };

/** Is this top-level element in the SM namespace (any element name)? */
export function isSmElement(el: Element): boolean {
  return el.getNS() === NS_SM_3;
}

function attr(el: Element, name: string): string | undefined {
  const v: unknown = el.attrs[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * xs:boolean after whitespace collapsing: "true"/"1" are true. Anything else — "false", "0", absent,
 * or garbage — is false, as Prosody's mod_smacks reads it: a client that asked for resumption in a
 * form we do not understand gets SM without resumption, which XEP-0198 §5 allows the server to give.
 */
function xsTrue(v: string | undefined): boolean {
  const t = v?.trim();
  return t === "true" || t === "1";
}

/** xs:positiveInteger, digits only; undefined when absent, zero, malformed or beyond 2^53. */
function positiveInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]{1,15}$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 ? n : undefined;
}

/** Reads one top-level element the client sent in the SM namespace. */
export function parseSmNonza(el: Element): SmNonza {
  const element = el.getName();
  if (el.getNS() !== NS_SM_3) return { kind: "invalid", element, reason: `not in ${NS_SM_3}` };
  switch (element) {
    case "enable": {
      const max = positiveInt(attr(el, "max"));
      return max === undefined ? { kind: "enable", resume: xsTrue(attr(el, "resume")) } : { kind: "enable", resume: xsTrue(attr(el, "resume")), max };
    }
    case "r":
      return { kind: "r" };
    case "a": {
      const h = parseH(attr(el, "h"));
      if (h === undefined) return { kind: "invalid", element, reason: "missing or invalid 'h'" };
      return { kind: "a", h };
    }
    case "resume": {
      const previd = attr(el, "previd");
      if (previd === undefined || previd === "") return { kind: "invalid", element, reason: "missing 'previd'" };
      const h = parseH(attr(el, "h"));
      if (h === undefined) return { kind: "invalid", element, reason: "missing or invalid 'h'" };
      return { kind: "resume", previd, h };
    }
    default:
      return { kind: "invalid", element, reason: `<${element}/> is not sent by a client` };
  }
}

const XMLNS = `xmlns='${NS_SM_3}'`;

/** XEP-0198 §2: the stream feature, offered after authentication. */
export function smFeature(): string {
  return `<sm ${XMLNS}/>`;
}

/**
 * XEP-0198 §3/§5: <enabled/>. With an `id` and `resume`, the session is resumable: resume='true'
 * (not '1': Conversations only accepts "true"), and `max` the resumption time in seconds. Without
 * an id, plain SM (acks only); `resume` is then ignored.
 */
export function enabled(id: string | undefined, resume: boolean, max?: number): string {
  let s = `<enabled ${XMLNS}`;
  if (id !== undefined) {
    s += ` id='${escapeXML(id)}'`;
    if (resume) s += ` resume='true'`;
  }
  if (max !== undefined && id !== undefined && resume) s += ` max='${Math.floor(max)}'`;
  return s + "/>";
}

/** XEP-0198 §5: <resumed previd h/>, h being what the proxy handled from the client. */
export function resumed(previd: string, h: number): string {
  return `<resumed ${XMLNS} previd='${escapeXML(previd)}' h='${h}'/>`;
}

/**
 * XEP-0198 §6: <failed/> with a stanza error condition (item-not-found for an unknown or expired
 * id, unexpected-request for SM out of order or twice, feature-not-implemented, …) and, for an id
 * that expired, the 'h' it had (§5).
 */
export function failed(condition: StanzaErrorCondition, h?: number): string {
  const hAttr = h === undefined ? "" : ` h='${h}'`;
  return `<failed ${XMLNS}${hAttr}><${condition} xmlns='${NS_STANZAS}'/></failed>`;
}

/** XEP-0198 §4: <r/>. */
export function ackRequest(): string {
  return `<r ${XMLNS}/>`;
}

/** XEP-0198 §4: <a h/>. */
export function ack(h: number): string {
  return `<a ${XMLNS} h='${h}'/>`;
}

/** XEP-0198 §6: the application-specific condition of the <undefined-condition/> stream error. */
export function handledCountTooHigh(h: number, sendCount: number): string {
  return `<handled-count-too-high ${XMLNS} h='${h}' send-count='${sendCount}'/>`;
}

/** XEP-0198 §6: the whole stream error (and close tag) for an h above what was sent. */
export function handledCountTooHighError(h: number, sendCount: number): string {
  return streamError(
    "undefined-condition",
    `You acknowledged ${h} stanzas, but only ${sendCount} were sent`,
    handledCountTooHigh(h, sendCount),
  );
}
