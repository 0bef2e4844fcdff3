import type { Action } from "./actions.js";
import type { MachineState } from "./machine-state.js";
import { fanOutTemplate } from "./fanout.js";
import { splitJid } from "../jid.js";
import { attrSpan, directChildren, peekAttr } from "../xml/peek.js";
import { NS_CLIENT, NS_HINTS } from "../xml/ns.js";

/**
 * The room fast path (docs/architecture.md §2.2): a live groupchat message, the bulk of what a room
 * sends, routed from its bytes. It answers only what `fromRoom` would do with the element — keep it
 * in the history buffer when it has a body and may be stored, fan it out to every joined session —
 * and only when the answer needs nothing more than the attributes of the start tag and the names of
 * its direct children. Anything else returns undefined and takes the element path (from-room.ts):
 * other stanzas and types, subjects, delayed messages (a rejoin's history, the first join's held
 * history), a room not simply joined, values with character references, prefixed children.
 *
 * Each session's copy is the server's own bytes with its JID spliced into `to` (as the pass-through
 * path forwards a leg's bytes unchanged), so nothing is parsed or serialized on the way.
 */
export function fromRoomBytes(core: MachineState, bytes: Buffer, now: number): Action[] | undefined {
  if (peekAttr(bytes, "type") !== "groupchat") return undefined;
  const ns = peekAttr(bytes, "xmlns");
  if (ns !== undefined && ns !== NS_CLIENT) return undefined;
  const toSpan = attrSpan(bytes, "to");
  const fromSpan = attrSpan(bytes, "from");
  if (!toSpan || !fromSpan) return undefined;
  const to = bytes.toString("utf8", toSpan.start, toSpan.end);
  const from = bytes.toString("utf8", fromSpan.start, fromSpan.end);
  // character references: the element path unescapes them exactly (ltx)
  if (to.includes("&") || from.includes("&")) return undefined;
  if (!core.addressedToAccountJid(to)) return undefined;
  const room = core.rooms.get(splitJid(from)?.bare ?? "");
  if (!room || core.pendingLeaves.has(room.jid)) return undefined;
  // from-room.ts message(): joined, its first history released, and (conservatively) not mid-rejoin
  if (room.phase !== "joined" || room.historyHold || room.rejoining || room.rejoinSubjectPending || room.outSince !== undefined) return undefined;
  const children = directChildren(bytes);
  if (!children) return undefined;
  let body = false;
  let storable = true;
  for (const c of children) {
    if (c.name.includes(":")) return undefined; // prefixed: the element path resolves the namespace
    switch (c.name) {
      case "subject": // §8.1 subject change, and the end of a join's history (§7.2.16)
      case "delay": // XEP-0203: history, de-duplicated against the buffer on a rejoin
        return undefined;
      case "body":
        body = true;
        break;
      case "no-store":
      case "no-permanent-store":
        if (c.xmlns === NS_HINTS) storable = false; // XEP-0334 §4 (history.ts isStorable)
        break;
    }
  }
  room.lastSeen = now;
  if (body && storable) room.history.pushRaw(bytes.toString("utf8"), bytes.length, now);
  const t = { head: bytes.toString("utf8", 0, toSpan.start), tail: bytes.toString("utf8", toSpan.end) };
  return fanOutTemplate(t, room.sessions.keys());
}
