import { Element } from "ltx";
import { REMOVAL_CODES, STATUS, hasDestroy, statusCodes } from "./status-codes.js";

/**
 * Why the account's occupant left the room, judging its own unavailable presence (§7.14, §8-§10).
 * "nick-change" is not a removal (§7.6: the 303 half of a rename). Anything else is: kick 307,
 * ban 301, affiliation 321, members-only 322, shutdown 332, technical 333, destroy (§10.9), or a
 * plain unavailable the room sent on its own (we only leave by deleting the room state first, so a
 * bare self-unavailable for a room we still hold means the room dropped us).
 */
export type SelfUnavailableKind = "nick-change" | "removed" | "left";

export function classifySelfUnavailable(presence: Element): SelfUnavailableKind {
  const codes = statusCodes(presence);
  if (codes.has(STATUS.NICK_CHANGED)) return "nick-change";
  if (hasDestroy(presence) || REMOVAL_CODES.some((c) => codes.has(c))) return "removed";
  return "left";
}
