/**
 * What happens to each unacked stanza when a session expires (docs/architecture.md §8.4, XEP-0198
 * §4: "A server SHOULD treat unacknowledged stanzas in the same way that it would treat a stanza sent
 * to an unavailable resource"). Nothing is dropped silently that a sender waits for.
 */
import type { Element } from "ltx";
import { rawBare } from "../jid.js";
import { errorReply } from "../xml/errors.js";
import { NS_CARBONS, NS_MAM_2, NS_SID } from "../xml/ns.js";

export type UnackedFate =
  /** groupchat from a room: the proxy's room history buffer still has it for the next join. */
  | "room-history"
  /** Archived by the server (XEP-0359 <stanza-id by=account/>): the client gets it from MAM. */
  | "archived"
  /** What a server drops for an unavailable resource: errors, headlines, presence, IQ results. */
  | "drop"
  /** A sender may be waiting: answer with {@link bounceFor} on the session's upstream leg. */
  | "bounce";

function attr(el: Element, name: string): string | undefined {
  const v: unknown = el.attrs[name];
  return typeof v === "string" ? v : undefined;
}

/** A direct child `name` in namespace `ns` (its own xmlns, not one inherited from the stanza). */
function hasChild(el: Element, name: string, ns: string): boolean {
  return el.getChildElements().some((c) => c.getName() === name && c.getNS() === ns);
}

/** XEP-0359 §5: a <stanza-id/> whose `by` is the account's bare JID (compared case-insensitively). */
function archivedFor(el: Element, accountBare: string): boolean {
  const account = accountBare.toLowerCase();
  for (const c of el.getChildElements()) {
    if (c.getName() !== "stanza-id" || c.getNS() !== NS_SID) continue;
    const by = attr(c, "by");
    if (by !== undefined && rawBare(by).toLowerCase() === account) return true;
  }
  return false;
}

/**
 * The fate of one unacked stanza written to the session of `accountBare` (its bare JID):
 * - message type=groupchat → "room-history" (only rooms send groupchat);
 * - message type=error or headline → "drop" (RFC 6121 §8.5.2: no error for these);
 * - message carrying <stanza-id by=account/> → "archived";
 * - carbon copies (XEP-0280) and MAM results (XEP-0313) → "drop": copies of what reached another
 *   resource or the archive; a bounce would tell a sender "undelivered" about a delivered message;
 * - message without a `from`, or from the account's own bare JID → "drop": the server on the
 *   account's behalf, there is nobody to bounce to (mod_smacks likewise skips its own JID);
 * - other messages (chat, normal, no or unknown type — RFC 6121 §5.2.2) → "bounce";
 * - presence → "drop"; iq result/error → "drop"; iq get/set → "bounce" (the requester waits);
 * - anything else → "drop".
 */
export function classifyUnacked(el: Element, accountBare: string): UnackedFate {
  const type = attr(el, "type");
  switch (el.getName()) {
    case "message": {
      if (type === "groupchat") return "room-history";
      if (type === "error" || type === "headline") return "drop";
      if (archivedFor(el, accountBare)) return "archived";
      if (hasChild(el, "received", NS_CARBONS) || hasChild(el, "sent", NS_CARBONS) || hasChild(el, "result", NS_MAM_2)) return "drop";
      const from = attr(el, "from");
      if (from === undefined || from === "" || from.toLowerCase() === accountBare.toLowerCase()) return "drop";
      return "bounce";
    }
    case "iq":
      return type === "get" || type === "set" ? "bounce" : "drop";
    default:
      return "drop";
  }
}

/**
 * The error answering a bounced stanza: same name and id, type='error', to/from swapped,
 * <recipient-unavailable/> of type "wait" — RFC 6120 §8.3.3.13 ("the associated error type SHOULD be
 * wait"; Prosody's mod_smacks sends "cancel", but the session may well come back, so the sender may
 * retry). The original payload is not echoed (§8.3.1 makes that optional).
 */
export function bounceFor(el: Element): Element {
  return errorReply(el, {
    type: "wait",
    condition: "recipient-unavailable",
    from: attr(el, "to"),
    to: attr(el, "from"),
  });
}
