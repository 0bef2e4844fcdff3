import type { Element } from "ltx";
import { rawBare } from "../jid.js";
import { NS_DELAY, NS_HINTS } from "../xml/ns.js";
import { mentions } from "./mention.js";

/** --push-rooms: which groupchat messages wake a sleeping device (room PMs always do). */
export type PushRoomsMode = "mentions" | "all" | "off";
export const PUSH_ROOMS_MODES: readonly PushRoomsMode[] = ["mentions", "all", "off"];

/** Why a push is due: a 1:1 message, a room PM, a groupchat message naming the account's nick, any groupchat message (`all`). */
export type PushReason = "chat" | "room-pm" | "mention" | "groupchat";

export interface PushTrigger {
  readonly reason: PushReason;
  /** The stanza's `from` as it came (XEP-0357 §7 last-message-sender). */
  readonly sender: string;
  readonly body: string;
  /** A room PM marked not to be archived (XEP-0334 no-store / no-permanent-store): no server push module sees it. */
  readonly unarchived?: boolean;
}

/**
 * A stanza the server sent on a hibernating session's own leg (docs/architecture.md §8.6): a message
 * with a body, of type chat or normal (or none), from someone other than the account itself. Carbons,
 * MAM results and other wrapped messages have no top-level body; groupchat on the own leg belongs to
 * a room the session joined past the proxy (whose nick it does not know); headlines and errors never wake a phone.
 */
export function ownLegTrigger(el: Element, accountBare: string): PushTrigger | undefined {
  if (el.name !== "message") return undefined;
  const type = el.attrs.type;
  if (type !== undefined && type !== "chat" && type !== "normal") return undefined;
  const from = typeof el.attrs.from === "string" ? el.attrs.from : undefined;
  if (from === undefined || rawBare(from).toLowerCase() === accountBare) return undefined;
  const body = bodyOf(el);
  return body === undefined ? undefined : { reason: "chat", sender: from, body };
}

/** What the push decision needs to know about the account's rooms. */
export interface RoomView {
  /** The account's nick in the room with this (lower-case) bare JID; undefined: not a room of the account. */
  nickIn(roomBare: string): string | undefined;
}

/**
 * A stanza a room sent to the account session (docs/architecture.md §8.6). A PM from an occupant
 * (type chat or normal, from room/nick) with a body; a live groupchat message with a body from
 * another occupant when `mode` is `all`, or when it mentions the account's nick and `mode` is
 * `mentions`. History (anything with an XEP-0203 delay: a rejoin's replay), the account's own
 * reflections, subjects and the room's own messages never wake a phone.
 */
export function roomTrigger(el: Element, rooms: RoomView, mode: PushRoomsMode): PushTrigger | undefined {
  if (el.name !== "message") return undefined;
  const from = typeof el.attrs.from === "string" ? el.attrs.from : undefined;
  if (from === undefined) return undefined;
  const slash = from.indexOf("/");
  if (slash === -1) return undefined; // the room itself
  const nick = rooms.nickIn(from.slice(0, slash).toLowerCase());
  if (nick === undefined) return undefined;
  const type = el.attrs.type;
  const body = bodyOf(el);
  if (body === undefined) return undefined;
  if (type === "chat" || type === "normal" || type === undefined) {
    const unarchived = el.getChild("no-store", NS_HINTS) !== undefined || el.getChild("no-permanent-store", NS_HINTS) !== undefined;
    return unarchived ? { reason: "room-pm", sender: from, body, unarchived } : { reason: "room-pm", sender: from, body };
  }
  if (type !== "groupchat" || mode === "off") return undefined;
  if (from.slice(slash + 1) === nick) return undefined; // the room's reflection of what the account sent
  if (el.getChild("delay", NS_DELAY)) return undefined;
  if (mode === "all") return { reason: "groupchat", sender: from, body };
  return mentions(body, nick) ? { reason: "mention", sender: from, body } : undefined;
}

/** The first top-level <body/>'s text, if it is not empty (XML whitespace only counts as empty). */
function bodyOf(el: Element): string | undefined {
  const b = el.getChild("body");
  if (!b) return undefined;
  const text = b.text();
  return text.trim() === "" ? undefined : text;
}
