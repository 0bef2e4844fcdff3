import { Element } from "ltx";
import { NS_MUC_USER } from "../xml/ns.js";
import type { RoomState } from "./room-state.js";
import { STATUS, mucItem } from "./status-codes.js";
import { attr } from "./stanza.js";

/**
 * §7.14: the answer to a session's explicit leave, for that session only — an unavailable
 * self-presence with 110, role none, the affiliation it had. The account's occupant stays in the
 * room while other sessions remain, so nobody else sees anything.
 */
export function leaveSelfPresence(room: RoomState, session: string, nick: string, leave: Element): Element {
  const attrs: Record<string, string> = { type: "unavailable", from: `${room.jid}/${nick}`, to: session };
  const id = attr(leave, "id");
  if (id !== undefined) attrs.id = id;
  const p = new Element("presence", attrs);
  const status = leave.getChildText("status");
  if (status !== null) p.c("status").t(status);
  const affiliation = (room.selfPresence ? mucItem(room.selfPresence) : undefined)?.attrs.affiliation;
  const x = p.c("x", { xmlns: NS_MUC_USER });
  x.c("item", { affiliation: typeof affiliation === "string" ? affiliation : "none", role: "none" });
  x.c("status", { code: STATUS.SELF });
  return p;
}

/** The account's own leave (§7.14), carrying the leaving session's status text if it gave one. */
export function upstreamLeave(room: RoomState, leave: Element | undefined): Element {
  const p = new Element("presence", { type: "unavailable", to: room.occupantJid });
  const status = leave?.getChildText("status");
  if (status !== undefined && status !== null) p.c("status").t(status);
  return p;
}

/**
 * Synthesised for sessions during a rejoin: an occupant that was there before the upstream
 * dropped and is absent from the rejoin's occupant list left meanwhile (§7.14 shape).
 */
export function vanishedOccupant(room: RoomState, nick: string, last: Element): Element {
  const p = new Element("presence", { type: "unavailable", from: `${room.jid}/${nick}` });
  const item = mucItem(last);
  const x = p.c("x", { xmlns: NS_MUC_USER });
  const itemAttrs: Record<string, string> = { role: "none" };
  const affiliation: unknown = item?.attrs.affiliation;
  itemAttrs.affiliation = typeof affiliation === "string" ? affiliation : "none";
  const jid: unknown = item?.attrs.jid;
  if (typeof jid === "string") itemAttrs.jid = jid;
  x.c("item", itemAttrs);
  return p;
}
