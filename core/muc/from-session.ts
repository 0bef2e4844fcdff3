import { Element } from "ltx";
import { type Action, PASSTHROUGH, toSession } from "./actions.js";
import type { MachineState } from "./machine-state.js";
import { fanOut, keptCopy } from "./fanout.js";
import { joinRequest, replayFromState, upstreamJoin } from "./join.js";
import { type JidParts, splitJid as parseJid } from "../jid.js";
import { leaveSelfPresence, upstreamLeave } from "./leave.js";
import { NS_MUC, NS_MUC_ADMIN } from "../xml/ns.js";
import { aggregateKey, presenceToRoom } from "./presence-aggregate.js";
import { type JoinRequest, MAX_HELD_WHILE_WAITING, RoomState } from "./room-state.js";
import { isPing, selfPingNotJoined, selfPingResult } from "./self-ping.js";
import { attr, forUpstream, withId, copyOf } from "./stanza.js";
import { errorReply } from "../xml/errors.js";

/** Stanza a downstream session sent: route it through the account session, answer it, or let it pass. */
export function fromSession(core: MachineState, session: string, stanza: Element, now: number): Action[] {
  // Isolation: a stanza of another account's session never touches this account's rooms.
  if (!core.ownsSession(session)) return [PASSTHROUGH];
  if (stanza.name === "presence" && attr(stanza, "to") === undefined) return broadcastPresence(core, session, stanza);
  const to = parseJid(attr(stanza, "to"));
  if (!to || to.local === "") return [PASSTHROUGH]; // rooms are room@service
  switch (stanza.name) {
    case "presence":
      return presence(core, session, stanza, to, now);
    case "message":
      return message(core, session, stanza, to);
    case "iq":
      return iq(core, session, stanza, to, now);
    default:
      return [PASSTHROUGH];
  }
}

function presence(core: MachineState, session: string, stanza: Element, to: JidParts, now: number): Action[] {
  const room = core.rooms.get(to.bare);
  const type = attr(stanza, "type");
  const involved = room?.involves(session) ?? false;
  // Never forward a session's error to the room: rooms kick occupants for errors (issue 3 §4).
  if (type === "error") return involved ? [] : [PASSTHROUGH];
  if (type === "unavailable") return room && involved ? leave(core, room, session, stanza, now) : [PASSTHROUGH];
  if (type !== undefined) return [PASSTHROUGH]; // probe/subscription presences are not occupancy
  if (stanza.getChild("x", NS_MUC) !== undefined) {
    if (to.resource === undefined) return [PASSTHROUGH]; // §7.2.1 needs a nick; the room answers jid-malformed
    return join(core, session, stanza, to.bare, to.resource, now);
  }
  if (!room || !involved) return [PASSTHROUGH];
  const waiting = room.waiting.get(session);
  if (waiting) {
    // Not joined yet: remember it as this session's room presence, nothing goes upstream twice.
    waiting.presence = copyOf(stanza);
    return [];
  }
  const entry = room.sessions.get(session);
  if (!entry) return [PASSTHROUGH];
  if (to.resource !== undefined && to.resource !== room.nick) return nickChange(core, room, session, stanza, to.resource);
  // §7.7 presence update: part of the account's aggregate.
  entry.presence = copyOf(stanza);
  entry.seq = core.nextSeq();
  const out: Action[] = [];
  core.updateAggregate(room, out);
  return out;
}

/**
 * A broadcast presence (no `to`). A server forwards it to every room the user's session joined
 * (RFC 6121 §4.6.2 directed-presence tracking, XEP-0045 §7.7 "change availability status"); the
 * session's own stream never joined those rooms, so the machine does it: the new availability
 * counts in each joined room's aggregate. The stanza itself still goes through (contacts).
 * A broadcast unavailable is not a leave (docs/architecture.md §6.6): only passthrough.
 */
function broadcastPresence(core: MachineState, session: string, stanza: Element): Action[] {
  const out: Action[] = [PASSTHROUGH];
  if (attr(stanza, "type") !== undefined) return out;
  for (const room of core.rooms.values()) {
    const entry = room.sessions.get(session);
    if (entry) {
      entry.presence = copyOf(stanza);
      entry.seq = core.nextSeq();
      core.updateAggregate(room, out);
      continue;
    }
    const waiting = room.waiting.get(session);
    if (waiting) waiting.presence = copyOf(stanza);
  }
  return out;
}

/** §7.2: join, or wait for the account's join, or answer from state. */
function join(core: MachineState, session: string, stanza: Element, roomBare: string, nick: string, now: number): Action[] {
  const out: Action[] = [];
  const req = joinRequest(session, stanza, nick, now);
  let room = core.rooms.get(roomBare);
  if (!room) {
    const x = stanza.getChild("x", NS_MUC);
    room = new RoomState(roomBare, nick, x ? copyOf(x) : new Element("x", { xmlns: NS_MUC }), core.opts.historyLimit, core.opts.historyBytes);
    const up = upstreamJoin(room, stanza, core.nextId("join"), core.opts.historyLimit);
    // Emitted at once: the proxy queues it until the account session is bound (actions.ts) — within
    // its bound (issue 10 §7); beyond it the join is refused like any stanza that does not fit.
    if (!core.accountOutboxFits(up)) {
      const err = refusal(stanza, session);
      err.c("x", { xmlns: NS_MUC }); // XEP-0045 §7.2: a join's error presence carries the MUC <x/>
      return [{ kind: "stanzaRefused", room: roomBare, code: "ACCOUNT_OUTBOX_FULL" }, toSession(session, err)];
    }
    core.rooms.set(roomBare, room);
    room.waiting.set(session, req);
    if (core.upstream === "down") {
      out.push({ kind: "openAccountSession" });
      core.upstream = "opening";
    }
    room.joinSent = true;
    if (core.upstream === "up") room.occupancySince = now;
    room.lastPresenceKey = aggregateKey(stanza);
    core.toUpstream(up, out);
    return out;
  }
  room.idleSince = undefined;
  if (room.phase === "joining") {
    // The account's join is pending: wait for it (no second upstream join), but catch up on the
    // occupant presences already fanned out to the sessions that were waiting before.
    room.sessions.delete(session);
    room.waiting.set(session, req);
    for (const p of room.occupants.values()) out.push(keptCopy(p, session));
    return out;
  }
  if (room.rebuilding) {
    // The account is being put back into the room (upstream lost, server restart): its state is
    // stale until the rejoin's sequence has ended (occupants, self, history since, subject: §7.2.3,
    // §7.2.16). The session waits for it (bounded by the join timeout) and is then answered from
    // the rebuilt state — never from what was true before the loss.
    if (room.sessions.has(session)) room.resyncs.set(session, req); // stays joined; its replay comes with the rebuilt state
    else room.waiting.set(session, req);
    return out;
  }
  // Joined: answer from state, no upstream join (a join while joined is a resync).
  out.push(...replayFromState(room, req, now, core.opts.defaultHistoryStanzas));
  room.sessions.set(session, { session, presence: copyOf(stanza), seq: core.nextSeq() });
  core.deliverHeldPms(room, out);
  core.updateAggregate(room, out);
  return out;
}

/** §7.14 explicit leave: answered locally; the account leaves only with its last session. */
function leave(core: MachineState, room: RoomState, session: string, stanza: Element, now: number): Action[] {
  const out: Action[] = [];
  const waiting = room.waiting.get(session);
  if (waiting?.held?.length) {
    // join, message, leave in one breath: the messages go first, as the server would take them (§6.1)
    waiting.leaveAfter = copyOf(stanza);
    return out;
  }
  const nick = waiting && waiting.nick !== room.nick && room.phase === "joining" ? waiting.nick : room.nick;
  const joined = room.sessions.get(session);
  room.waiting.delete(session);
  room.sessions.delete(session);
  room.resyncs.delete(session);
  out.push(toSession(session, leaveSelfPresence(room, session, nick, stanza)));
  if (room.pendingNick?.session === session) room.pendingNick.session = undefined;
  if (room.empty() && room.bookmarked) {
    // The account follows the room's autojoin bookmark (docs/architecture.md §4.6): it stays, as
    // after a disconnect, until the bookmark goes. A client that leaves for good also un-bookmarks.
    room.idleSince = now;
    if (joined) core.awayAggregate(room, joined.presence, out);
  } else if (room.empty()) {
    // The last session left explicitly: the account leaves (if it is in the room at all on this
    // connection). The room's unavailable echo then finds no state and is dropped; a later join of
    // the same room starts fresh and ignores that echo (see from-room.ts).
    core.leaveUpstream(room, upstreamLeave(room, stanza), out);
    core.dropRoom(room, out, "last-session-left");
  } else {
    core.updateAggregate(room, out);
  }
  return out;
}

/** §7.6: one session renames the shared occupant; the room's 303 sequence reaches every session. */
function nickChange(core: MachineState, room: RoomState, session: string, stanza: Element, newNick: string): Action[] {
  const out: Action[] = [];
  const entry = room.sessions.get(session);
  if (entry) {
    entry.presence = copyOf(stanza);
    entry.seq = core.nextSeq();
  }
  if (!core.trySendToRoom(room, presenceToRoom(stanza, `${room.jid}/${newNick}`, attr(stanza, "id")), out)) return [...out, toSession(session, refusal(stanza, session))];
  room.pendingNick = { nick: newNick, session, id: attr(stanza, "id") };
  room.lastPresenceKey = aggregateKey(stanza);
  return out;
}

function message(core: MachineState, session: string, stanza: Element, to: JidParts): Action[] {
  const room = core.rooms.get(to.bare);
  const type = attr(stanza, "type");
  if (!room || !room.involves(session)) return [PASSTHROUGH];
  if (type === "error") return []; // never an error from a session to the room
  if (!room.isJoined(session)) {
    const req = room.waiting.get(session);
    if (!req || req.leaveAfter) return [PASSTHROUGH];
    // Straight to the server this message would follow the join presence on one stream and find an
    // occupant (§7.2 is handled before §7.4); here the account's join is still on its way, and the
    // session's own stream is no occupant at all: the message waits for the join (§6.1).
    req.held ??= [];
    if (req.held.length >= MAX_HELD_WHILE_WAITING) {
      return [{ kind: "stanzaRefused", room: room.jid, code: "HELD_WHILE_JOINING_FULL" }, toSession(session, refusal(stanza, session))];
    }
    req.held.push(copyOf(stanza));
    return [];
  }
  // Groupchat (§7.4), PMs (§7.5), invitations and other room-addressed messages go as the
  // account's occupant; ids and origin-id are kept so the room's reflection is the echo.
  const out: Action[] = [];
  const up = forUpstream(stanza);
  // A PM without an id gets one, so the server's carbon of it can be told apart (carbons.ts).
  if (attr(up, "id") === undefined && type !== "groupchat") up.attrs.id = core.nextId("msg");
  const id = attr(up, "id");
  if (!core.trySendToRoom(room, up, out)) return [...out, toSession(session, refusal(stanza, session))];
  if (id !== undefined) room.rememberSent(id, session);
  return out;
}

/** Role-based muc#admin IQs (§8: kick, voice, moderator lists) need the sender's occupant role. */
function needsOccupantRole(stanza: Element): boolean {
  const q = stanza.getChild("query", NS_MUC_ADMIN);
  return q !== undefined && q.getChildren("item").some((i) => attr(i, "role") !== undefined);
}

function iq(core: MachineState, session: string, stanza: Element, to: JidParts, now: number): Action[] {
  const room = core.rooms.get(to.bare);
  if (!room) return [PASSTHROUGH];
  const type = attr(stanza, "type");
  const joined = room.isJoined(session);
  if (type === "result" || type === "error") {
    // A reply to an occupant's IQ we relayed to this session: map back (id, to) and send as the occupant.
    const p = core.iqs.peek(attr(stanza, "id"));
    if (p && p.direction === "toSession" && p.session === session && p.room === room.jid) {
      core.iqs.take(p.id);
      const reply = withId(forUpstream(stanza), p.originalId);
      reply.attrs.to = p.peer;
      const out: Action[] = [];
      core.sendToRoom(room, reply, out);
      return out;
    }
    return [PASSTHROUGH];
  }
  if (type !== "get" && type !== "set") return [PASSTHROUGH];
  if (isPing(stanza) && to.resource !== undefined) {
    // XEP-0410 answered from state, within the same tick — but only while the account really is
    // in the room upstream. During a rejoin the answer waits for its end (finishRejoin), so a
    // client never hears "still joined" about an occupancy the server may refuse.
    const own = to.resource === room.nick;
    if (room.rebuilding && ((joined && own) || room.waiting.has(session))) {
      room.heldPings.push({ session, stanza: copyOf(stanza) });
      return [];
    }
    if (joined && own) return [toSession(session, selfPingResult(stanza, session))];
    if (!joined) return [toSession(session, selfPingNotJoined(stanza, session, room.jid))];
  }
  if (!joined) return [PASSTHROUGH];
  // IQs to occupants and role changes go as the occupant; others (disco, MAM, config,
  // affiliations) work from the session's own JID and stream.
  if (to.resource === undefined && !needsOccupantRole(stanza)) return [PASSTHROUGH];
  if (core.iqs.size >= core.opts.maxPendingIqs) {
    return [{ kind: "stanzaRefused", room: room.jid, code: "PENDING_IQS_FULL" }, toSession(session, refusal(stanza, session))];
  }
  const newId = core.iqs.add({
    direction: "toRoom",
    session,
    room: room.jid,
    originalId: attr(stanza, "id"),
    peer: attr(stanza, "to") ?? room.jid,
    at: now,
  });
  const out: Action[] = [];
  if (!core.trySendToRoom(room, withId(forUpstream(stanza), newId), out)) {
    core.iqs.take(newId);
    out.push(toSession(session, refusal(stanza, session)));
  }
  return out;
}

/**
 * The session `req` waited for is joined now (its self-presence or replay is out): the messages it
 * held go as the account's occupant, in order, then its deferred leave, if it sent one.
 */
export function releaseHeld(core: MachineState, room: RoomState, req: JoinRequest, now: number, out: Action[]): void {
  const held = req.held ?? [];
  req.held = undefined;
  for (const m of held) {
    const to = parseJid(attr(m, "to"));
    if (to) out.push(...message(core, req.session, m, to));
  }
  const bye = req.leaveAfter;
  req.leaveAfter = undefined;
  if (bye && room.isJoined(req.session)) out.push(...leave(core, room, req.session, bye, now));
}

/**
 * The join `req` waited for failed (refused, timed out, or the room was dropped): each message it
 * held gets the error the room gives a non-occupant (XEP-0045 §7.4: not-acceptable), with its id.
 */
export function bounceHeld(room: RoomState, req: JoinRequest, out: Action[]): void {
  for (const m of req.held ?? []) {
    out.push(toSession(req.session, errorReply(m, { from: attr(m, "to") ?? room.jid, to: req.session, type: "cancel", condition: "not-acceptable", text: "not an occupant: the join did not succeed" })));
  }
  req.held = undefined;
  req.leaveAfter = undefined;
}

/**
 * A session's stanza the proxy will not queue (issue 10 §7: the room's outbox, the queue while the
 * account session connects, or pending IQs full): the session is told to retry later —
 * resource-constraint, type wait (RFC 6120 §8.3.3.15), from the entity it addressed, with its own id.
 */
function refusal(stanza: Element, session: string): Element {
  return errorReply(stanza, { from: attr(stanza, "to"), to: session, type: "wait", condition: "resource-constraint", text: "too many stanzas queued for the room; try again later" });
}
