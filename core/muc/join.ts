import { Element } from "ltx";
import { type HistoryRequest, ensureDelay, parseHistoryRequest } from "./history.js";
import { NS_MUC, NS_STANZAS } from "../xml/ns.js";
import { presenceToRoom } from "./presence-aggregate.js";
import type { JoinRequest, RoomState } from "./room-state.js";
import { STATUS, editStatusCodes } from "./status-codes.js";
import { addressedTo, attr, isoStamp, removeChildren, withId, copyOf } from "./stanza.js";
import { type Action, toSession } from "./actions.js";
import { keptCopy } from "./fanout.js";

/** Reads a session's join presence (XEP-0045 §7.2.1: presence to room/nick with <x xmlns='muc'>). */
export function joinRequest(session: string, presence: Element, nick: string, at: number): JoinRequest {
  return {
    at,
    session,
    id: attr(presence, "id"),
    nick,
    history: parseHistoryRequest(presence.getChild("x", NS_MUC)),
    presence: copyOf(presence),
  };
}

/**
 * The account's own join (§7.2.1), built from the first session's join: same nick, same
 * <x xmlns='muc'> (password §7.2.6), same show/status/caps, our own id. Its <history/> is the
 * account's, not the session's (issue 10 §3): as many stanzas as the buffer holds
 * (`maxstanzas`), so every session, whichever joined first, can be answered its own slice
 * (§7.2.15) from the buffer. A rejoin also asks only what came after the last message seen
 * (`since`, docs/architecture.md §4.4).
 */
export function upstreamJoin(room: RoomState, source: Element | undefined, id: string, maxstanzas: number, since?: number): Element {
  const p = presenceToRoom(source, room.occupantJid, id);
  const x = copyOf(room.joinX);
  removeChildren(x, "history");
  const h: Record<string, string> = { maxstanzas: String(maxstanzas) };
  if (since !== undefined) h.since = isoStamp(since);
  x.c("history", h);
  p.cnode(x);
  return p;
}

/**
 * The self-presence a session gets for its join (§7.2.3: last of the presences, with 110).
 * Carries the session's own join id. 201 only on the fresh join that created the room (§10.1.1),
 * never on a replay; 210 exactly when the session asked for another nick than the account's
 * (§7.2.9) — the `from` is then room/accountNick, which tells it the nick it really has.
 */
export function selfPresenceFor(room: RoomState, req: JoinRequest, fresh: boolean): Element {
  const base = room.selfPresence ?? new Element("presence", { from: room.occupantJid });
  const p = withId(addressedTo(base, req.session), req.id);
  p.attrs.from = room.occupantJid;
  const remove = fresh ? [STATUS.NICK_MODIFIED] : [STATUS.NICK_MODIFIED, STATUS.CREATED];
  const add: string[] = [STATUS.SELF];
  if (req.nick !== room.nick) add.push(STATUS.NICK_MODIFIED);
  return editStatusCodes(p, add, remove);
}

/**
 * The answer to a join the account could not complete in time: an error presence from the occupant
 * JID the session asked for, with its join id (§7.2 join errors have this shape). The condition is
 * what a server says when a remote entity did not answer (RFC 6120 §8.3.3.16), type wait: try again.
 */
export function joinTimeoutError(room: RoomState, req: JoinRequest): Element {
  const attrs: Record<string, string> = { type: "error", from: `${room.jid}/${req.nick}`, to: req.session };
  if (req.id !== undefined) attrs.id = req.id;
  const p = new Element("presence", attrs);
  p.c("x", { xmlns: NS_MUC });
  const err = p.c("error", { type: "wait" });
  err.c("remote-server-timeout", { xmlns: NS_STANZAS });
  err.c("text", { xmlns: NS_STANZAS, "xml:lang": "en" }).t("the room did not answer the join in time");
  return p;
}

/** §8.1 / §7.2.16: no subject set is announced with an empty <subject/>. */
export function emptySubject(roomBare: string, session: string): Element {
  const m = new Element("message", { type: "groupchat", from: roomBare, to: session });
  m.c("subject");
  return m;
}

/**
 * A join answered from state (room already joined by the account), in §7.2.3 order: the room's
 * own presence if it sent one (ejabberd, first, as it sends it), every other occupant's presence,
 * the self-presence, history as the session asked (§7.2.15, with XEP-0203 delay from=room), then
 * the subject. If the subject has not arrived yet (the account's own join
 * is still streaming history), it is left out: the live subject will reach this session anyway.
 */
export function replayFromState(room: RoomState, req: JoinRequest, now: number, defaultMaxStanzas: number): Action[] {
  const out: Action[] = [];
  const s = req.session;
  if (room.bareRoomPresence) out.push(keptCopy(room.bareRoomPresence, s));
  for (const p of room.occupants.values()) out.push(keptCopy(p, s));
  out.push(toSession(s, selfPresenceFor(room, req, false)));
  if (room.historyHold) {
    // The account's first join is still receiving the room's history: this session gets its
    // slice, then the subject, when that history has ended (releaseHistory), like the first ones.
    room.historyHold.set(s, req.history);
    return out;
  }
  out.push(...historySlice(room, s, req.history, now, defaultMaxStanzas));
  if (room.subjectReceived) out.push(subjectFor(room, s));
  return out;
}

/** The buffered history one session asked for (§7.2.15), each with a delay from the room (§7.2.14, XEP-0203). */
export function historySlice(room: RoomState, s: string, req: HistoryRequest | undefined, now: number, defaultMaxStanzas: number): Action[] {
  return room.history.select(req, now, defaultMaxStanzas, (m) => ensureDelay(addressedTo(m.stanza, s), room.jid, m.time)).map((h) => toSession(s, h));
}

/** The room's subject for one session; an empty <subject/> when none is set (§7.2.16). */
export function subjectFor(room: RoomState, s: string): Action {
  return room.subject ? keptCopy(room.subject, s) : toSession(s, emptySubject(room.jid, s));
}

/**
 * The first join's history has ended: each held session still joined gets its own slice of it
 * (§7.2.15), in the order the sessions joined. The subject follows from the caller (it is what
 * ended the hold, or comes later live). Sessions that left meanwhile get nothing.
 */
export function releaseHistory(room: RoomState, now: number, defaultMaxStanzas: number): Action[] {
  const hold = room.historyHold;
  if (!hold) return [];
  room.historyHold = undefined;
  room.historyHoldSince = undefined;
  const out: Action[] = [];
  for (const [s, req] of hold) if (room.isJoined(s)) out.push(...historySlice(room, s, req, now, defaultMaxStanzas));
  return out;
}
