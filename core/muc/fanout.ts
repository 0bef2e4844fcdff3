import { Element, escapeXML } from "ltx";
import { toSession, type Action } from "./actions.js";
import { addressedTo } from "./stanza.js";
import { parseStanza } from "../xml/element.js";

/**
 * A stanza serialized once with a placeholder for `to`: each session's copy is `head`, its
 * escaped JID, `tail` — the same string `addressedTo(stanza, jid).toString()` gives (the
 * attribute keeps its position, or comes last when the stanza had none), without building and
 * serializing an element per session.
 */
export interface AddressTemplate {
  readonly head: string;
  readonly tail: string;
}

/**
 * U+0001 cannot occur in a stanza (XML 1.0 §2.2: the framer refuses C0 controls, and ltx writes
 * only what it parsed), so it marks the one place where `to` goes.
 */
const MARK = "\u0001";

/** Serializes `stanza` once with a `to` placeholder; undefined if the placeholder is not unique. */
export function addressTemplate(stanza: Element): AddressTemplate | undefined {
  // a shallow shell: same name and children, attributes copied in order with `to` replaced (or appended)
  const shell = new Element(stanza.name);
  shell.attrs = { ...(stanza.attrs as Record<string, unknown>), to: MARK };
  shell.children = stanza.children;
  const xml = shell.toString();
  const at = xml.indexOf(MARK);
  if (at < 0 || xml.indexOf(MARK, at + 1) >= 0) return undefined;
  return { head: xml.slice(0, at), tail: xml.slice(at + 1) };
}

/** The serialized copy of a template for one recipient. */
export function renderFor(t: AddressTemplate, to: string): string {
  return t.head + escapeXML(to) + t.tail;
}

/**
 * One session's copy of a fanned-out stanza. `xml()` is what the proxy writes; the element is
 * built only when someone asks for it (tests, or code that rewrites a copy), and once built, it
 * is what `xml()` serializes, so changes made to it are never lost.
 */
class FanOutCopy {
  readonly kind = "toSession" as const;
  #el: Element | undefined;
  readonly #t: AddressTemplate;

  constructor(readonly session: string, t: AddressTemplate) {
    this.#t = t;
  }

  get stanza(): Element {
    return (this.#el ??= parseStanza(renderFor(this.#t, this.session)));
  }

  set stanza(el: Element) {
    this.#el = el;
  }

  xml(): string {
    return this.#el ? this.#el.toString() : renderFor(this.#t, this.session);
  }
}

/**
 * Fan-out (docs/architecture.md §2.2): one copy per session, `to` rewritten to that session's full JID, nothing
 * else changed (ids, stanza-id, delay and every child element are kept). The stanza is
 * serialized once for all sessions (bench: GC was a fifth of the groupchat profile when every
 * session got its own element).
 */
export function fanOut(stanza: Element, sessions: Iterable<string>): Action[] {
  const out: Action[] = [];
  let t: AddressTemplate | undefined | null = null;
  for (const s of sessions) {
    if (t === null) t = addressTemplate(stanza);
    out.push(t ? new FanOutCopy(s, t) : fallback(stanza, s));
  }
  return out;
}

/** fanOut for a template made elsewhere (the fast path splices the server's own bytes: from-room-bytes.ts). */
export function fanOutTemplate(t: AddressTemplate, sessions: Iterable<string>): Action[] {
  const out: Action[] = [];
  for (const s of sessions) out.push(new FanOutCopy(s, t));
  return out;
}

const kept = new WeakMap<Element, AddressTemplate | null>();

/**
 * One session's copy of an element the room state keeps and never changes in place (occupant
 * presences, the room's presence, the subject: each update stores a new copy). Its template is
 * made once and remembered with it, so replaying a room to a (re)joining session costs a string
 * concatenation per stanza (bench: reconnect with 50 rooms of 20 occupants).
 */
export function keptCopy(el: Element, session: string): Action {
  let t = kept.get(el);
  if (t === undefined) {
    t = addressTemplate(el) ?? null;
    kept.set(el, t);
  }
  return t ? new FanOutCopy(session, t) : fallback(el, session);
}

function fallback(stanza: Element, s: string): Action {
  return toSession(s, addressedTo(stanza, s));
}
