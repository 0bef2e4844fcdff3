import { Element } from "ltx";
import { NS_DELAY } from "../xml/ns.js";
import { errorReply } from "../xml/errors.js";
import { utf8Length } from "./history.js";
import { attr, copyOf, isoStamp } from "./stanza.js";

/**
 * Private messages (XEP-0045 §7.5) that reached the account's occupant while none of the account's
 * sessions was in that room (issue 10 §4). The server accepted them (the account is an occupant),
 * so they are kept, bounded per account in count and bytes, and delivered once, with an XEP-0203
 * delay, to the sessions that are joined when one is back in the room; or answered with an error.
 */
export interface HeldPm {
  room: string; // bare room JID (lower-cased key)
  stanza: Element; // as received (from room/nick, to the account session)
  at: number; // arrival
  bytes: number;
}

export interface HeldPmLimits {
  maxCount: number;
  maxBytes: number;
}

export class HeldPms {
  private readonly held: HeldPm[] = [];
  private totalBytes = 0;

  constructor(private readonly limits: HeldPmLimits) {}

  get size(): number {
    return this.held.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Keeps the PM if it fits the account's bounds; false means the sender must be told (pmError). */
  hold(room: string, stanza: Element, at: number): boolean {
    const bytes = utf8Length(stanza.toString());
    if (this.held.length + 1 > this.limits.maxCount || this.totalBytes + bytes > this.limits.maxBytes) return false;
    this.held.push({ room, stanza: copyOf(stanza), at, bytes });
    this.totalBytes += bytes;
    return true;
  }

  /** Removes and returns the PMs held for `room`, oldest first. */
  take(room: string): HeldPm[] {
    const taken: HeldPm[] = [];
    for (let i = 0; i < this.held.length; ) {
      const h = this.held[i];
      if (h !== undefined && h.room === room) {
        taken.push(h);
        this.totalBytes -= h.bytes;
        this.held.splice(i, 1);
      } else i++;
    }
    return taken;
  }
}

/**
 * A held PM as a session gets it: addressed to the session, with an XEP-0203 delay. The delay's
 * `from` is the account's server (XEP-0203 §3: the entity that delayed it; the proxy holds it for
 * the server side, like offline storage, XEP-0160) — not the room, whose delay marks room history.
 */
export function heldPmFor(h: HeldPm, session: string, accountDomain: string): Element {
  const c = copyOf(h.stanza);
  c.attrs.to = session;
  if (c.getChild("delay", NS_DELAY) === undefined) c.c("delay", { xmlns: NS_DELAY, from: accountDomain, stamp: isoStamp(h.at) });
  return c;
}

/**
 * The error a held PM's sender gets, sent through the room as the account's occupant (§7.5). The
 * condition must not be one rooms take as a sign of a dead occupant: Prosody and ejabberd kick an
 * occupant that sends an error with gone, item-not-found, recipient-unavailable,
 * service-unavailable, remote-server-*, redirect, jid-malformed or internal-server-error
 * ("kickable" / check_error_kick) — so `recipient-unavailable` (RFC 6120 §8.3.3.13), which would
 * say it best, is not used. Bound hit: `resource-constraint`, type wait (§8.3.3.15: try later).
 * Account left the room first: `not-acceptable`, type cancel (§8.3.3.12), with a text.
 */
export function pmError(stanza: Element, reason: "full" | "left"): Element | undefined {
  const sender = attr(stanza, "from");
  if (sender === undefined) return undefined;
  return reason === "full"
    ? errorReply(stanza, { to: sender, type: "wait", condition: "resource-constraint", text: "the recipient is away and holds too many messages; try again later" })
    : errorReply(stanza, { to: sender, type: "cancel", condition: "not-acceptable", text: "the recipient left the room before the message could be delivered" });
}

/** §7.5 PM with content from an occupant (not the room itself, not chat states alone). */
export function isHoldablePm(stanza: Element): boolean {
  const type = attr(stanza, "type") ?? "normal";
  return (type === "chat" || type === "normal") && stanza.getChild("body") !== undefined;
}
