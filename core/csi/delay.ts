import type { Element } from "../xml/element.js";
import { NS_DELAY } from "../xml/ns.js";
import { rawBare } from "../jid.js";
import { attr, isoStamp } from "../muc/stanza.js";

/** ECMA-262 §21.4.1.22: the largest time value a Date holds; beyond it toISOString throws. */
const MAX_DATE_MS = 8.64e15;

/**
 * XEP-0203 stamp on a stanza held for an inactive session (docs/architecture.md §8.5), serialized:
 * `<delay xmlns='urn:xmpp:delay' from=ROOM stamp=HELD_AT/>` appended as the last child, `from`
 * the bare JID of the stanza's sender (the room; omitted when the stanza has no `from`), `stamp`
 * when it was held (XEP-0082 UTC with milliseconds). A stanza that already carries a delay keeps
 * it and gets no second one (its stamp already says when it was sent, e.g. room history); so does
 * one held at an invalid time (nothing true to say). Mutates `el`; returns what to write.
 */
export function stampHeld(el: Element, heldAtMs: number): string {
  if (Number.isFinite(heldAtMs) && Math.abs(heldAtMs) <= MAX_DATE_MS && el.getChild("delay", NS_DELAY) === undefined) {
    const from = attr(el, "from");
    const attrs: Record<string, string> = { xmlns: NS_DELAY };
    if (from !== undefined) attrs.from = rawBare(from);
    attrs.stamp = isoStamp(heldAtMs);
    el.c("delay", attrs);
  }
  return el.toString();
}
