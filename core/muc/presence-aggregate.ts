import { Element } from "ltx";
import { NS_MUC } from "../xml/ns.js";
import { attr, contentKey, removeChildren, copyOf } from "./stanza.js";

/**
 * The account has one occupant but many sessions; its room presence is the "most available" of
 * its joined sessions' latest room presences (docs/architecture.md §6.5). Order, most available first:
 *
 *   chat > available (no <show/>) > away > dnd > xa
 *
 * dnd ranks above xa on purpose: dnd means someone is at a device but busy (explicit user intent),
 * xa means gone for a long time; a desk session on dnd says more about the person than an idle
 * phone on xa. Ties go to the most recently updated session, so a fresh status text wins.
 */
export type Availability = "chat" | "available" | "away" | "dnd" | "xa";

const RANK: Record<Availability, number> = { chat: 5, available: 4, away: 3, dnd: 2, xa: 1 };

export function availabilityOf(presence: Element | undefined): Availability {
  const show = presence?.getChildText("show")?.trim();
  return show === "chat" || show === "away" || show === "dnd" || show === "xa" ? show : "available";
}

export interface PresenceCandidate {
  session: string;
  presence: Element | undefined;
  seq: number; // larger = updated later
}

export function mostAvailable<T extends PresenceCandidate>(candidates: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const c of candidates) {
    if (!best) {
      best = c;
      continue;
    }
    const d = RANK[availabilityOf(c.presence)] - RANK[availabilityOf(best.presence)];
    if (d > 0 || (d === 0 && c.seq > best.seq)) best = c;
  }
  return best;
}

/**
 * The presence the account sends to room/nick for a session's presence: its payload (show,
 * status, caps, …) without the join's <x xmlns='muc'>, without from/id/type.
 */
export function presenceToRoom(source: Element | undefined, occupant: string, id?: string): Element {
  const p = source ? copyOf(source) : new Element("presence");
  delete p.attrs.from;
  delete p.attrs.type;
  delete p.attrs.xmlns;
  if (id === undefined) delete p.attrs.id;
  else p.attrs.id = id;
  p.attrs.to = occupant;
  removeChildren(p, "x", NS_MUC);
  return p;
}

/** Comparable form of an aggregate, independent of the nick it is addressed to. */
export function aggregateKey(source: Element | undefined): string {
  const p = presenceToRoom(source, "");
  return contentKey(p);
}

/** Is this a plain availability update (no type) rather than probe/subscribe/…? */
export function isAvailable(presence: Element): boolean {
  return attr(presence, "type") === undefined;
}
