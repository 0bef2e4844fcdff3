import type { Element } from "ltx";
import { toSession, type Action } from "./actions.js";
import { addressedTo } from "./stanza.js";

/**
 * DESIGN §5 fan-out: one copy per session, `to` rewritten to that session's full JID, nothing
 * else changed (ids, stanza-id, delay and every child element are kept).
 */
export function fanOut(stanza: Element, sessions: Iterable<string>): Action[] {
  const out: Action[] = [];
  for (const s of sessions) out.push(toSession(s, addressedTo(stanza, s)));
  return out;
}
