import type { Element } from "ltx";
import { parseStanza } from "../../core/xml/element.js";
import { bounceFor, classifyUnacked } from "../../core/sm/expiry.js";
import type { QueuedStanza } from "../../core/sm/outbound.js";

export interface UnackedOutcome {
  /** Errors to write on the session's upstream leg, in order (recipient-unavailable to each sender). */
  bounces: string[];
  /** Left where the client can still get them: room history (groupchat) or the account's archive (MAM). */
  kept: number;
  /** Dropped as a server drops them for an unavailable resource (errors, headlines, presence, IQ results, copies). */
  dropped: number;
  /** Would have been bounced but could not be: the upstream leg is gone, or the account layer delivered an IQ. */
  lost: number;
  /**
   * Messages the account layer delivered (room PMs) that would be bounced: handed back to it
   * (AccountHub.undeliveredPms), which holds them for the next session in the room when no other
   * session of the account has its own copy.
   */
  undelivered: Element[];
}

/**
 * What becomes of the stanzas a session's client never acknowledged when the session ends
 * (docs/architecture.md §8.4, expiry; XEP-0198 §4 "treat them as sent to an unavailable resource").
 * The fate of each comes from core/sm/expiry.ts. A Buffer came from the session's own upstream leg:
 * the server routed it to this full JID, so a bounce goes back the same way. A string was delivered
 * by the account layer (room fan-out, replies from state, relayed occupant IQs): the room keeps its
 * history, the account layer answers occupants itself when the session goes (§6.3), and PMs go back
 * to it (`undelivered`), so nothing is bounced for those on the own leg (a bounce toward the room
 * would get the account kicked).
 */
export function settleUnacked(items: readonly QueuedStanza[], accountBare: string, upstreamUsable: boolean): UnackedOutcome {
  const out: UnackedOutcome = { bounces: [], kept: 0, dropped: 0, lost: 0, undelivered: [] };
  for (const item of items) {
    let el: Element;
    try {
      el = parseStanza(item);
    } catch {
      // written to the client as it came, so it was read once; what ltx cannot read has no sender to tell
      out.dropped++;
      continue;
    }
    const fate = classifyUnacked(el, accountBare);
    if (fate === "room-history" || fate === "archived") out.kept++;
    else if (fate === "drop") out.dropped++;
    else if (typeof item === "string") {
      if (el.name === "message") out.undelivered.push(el);
      else out.lost++;
    } else if (!upstreamUsable) out.lost++;
    else out.bounces.push(bounceFor(el).toString());
  }
  return out;
}
