import { Element } from "ltx";
import { NS_MUC_USER } from "../xml/ns.js";
import { attr } from "./stanza.js";

/** XEP-0045 §16.6 status codes this machine acts on. */
export const STATUS = {
  NON_ANONYMOUS: "100", // room shows real JIDs to all (§7.2.3); kept on replays
  SELF: "110", // presence refers to the receiving occupant (§7.2.3)
  LOGGING: "170", // room is logged (§7.2.12); kept on replays
  CREATED: "201", // new room created (§10.1.1); only true for the first join, never replayed
  NICK_MODIFIED: "210", // service assigned/modified the nick (§7.2.9)
  BANNED: "301", // §9.1
  NICK_CHANGED: "303", // §7.6: unavailable half of a nick change
  KICKED: "307", // §8.2
  AFFILIATION_REMOVED: "321", // §9.4 (removed because of an affiliation change)
  MEMBERS_ONLY_REMOVED: "322", // §9.8 (room became members-only)
  SHUTDOWN: "332", // system shutdown
  TECHNICAL_REMOVAL: "333", // removed for technical reasons (e.g. the occupant's errors)
} as const;

/** Codes that mean "this occupant was removed from the room" when on an unavailable presence. */
export const REMOVAL_CODES: readonly string[] = [
  STATUS.BANNED,
  STATUS.KICKED,
  STATUS.AFFILIATION_REMOVED,
  STATUS.MEMBERS_ONLY_REMOVED,
  STATUS.SHUTDOWN,
  STATUS.TECHNICAL_REMOVAL,
];

function userX(stanza: Element): Element | undefined {
  return stanza.getChild("x", NS_MUC_USER);
}

/** The status codes of the stanza's <x xmlns='muc#user'>. */
export function statusCodes(stanza: Element): Set<string> {
  const codes = new Set<string>();
  const x = userX(stanza);
  if (!x) return codes;
  for (const s of x.getChildren("status")) {
    const code = attr(s, "code");
    if (code !== undefined) codes.add(code);
  }
  return codes;
}

/** In place: removes `remove` codes and appends `add` codes that are not there yet. */
export function editStatusCodes(stanza: Element, add: readonly string[], remove: readonly string[]): Element {
  let x = userX(stanza);
  if (!x) x = stanza.c("x", { xmlns: NS_MUC_USER });
  for (const s of x.getChildren("status")) {
    const code = attr(s, "code");
    if (code !== undefined && remove.includes(code)) x.remove(s);
  }
  const present = statusCodes(stanza);
  for (const code of add) if (!present.has(code)) x.c("status", { code });
  return stanza;
}

/** The <item/> of the muc#user x (affiliation, role, nick, jid). */
export function mucItem(stanza: Element): Element | undefined {
  return userX(stanza)?.getChild("item");
}

/** §10.9: the room was destroyed (<destroy/> inside muc#user x of an unavailable presence). */
export function hasDestroy(stanza: Element): boolean {
  return userX(stanza)?.getChild("destroy") !== undefined;
}
