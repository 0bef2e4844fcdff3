import type { Element } from "ltx";
import { type Action, toRoomUpstream, toSession } from "./actions.js";
import type { MachineState } from "./machine-state.js";
import { fanOut } from "./fanout.js";
import { type JidParts, splitJid as parseJid } from "../jid.js";
import { releaseHistory, selfPresenceFor } from "./join.js";
import { vanishedOccupant } from "./leave.js";
import { mostAvailable } from "./presence-aggregate.js";
import { classifySelfUnavailable } from "./removal.js";
import type { RoomState } from "./room-state.js";
import { isPing, pingResultUpstream } from "./self-ping.js";
import { isHoldablePm } from "./held-pms.js";
import { STATUS, hasDestroy, mucItem, statusCodes } from "./status-codes.js";
import { addressedTo, attr, contentKey, hasDelay, withId, copyOf } from "./stanza.js";
import { errorReply } from "../xml/errors.js";
import { bounceHeld, releaseHeld } from "./from-session.js";

/** Is this stanza (received by the account session) about one of this account's rooms? */
export function isRoomStanza(core: MachineState, stanza: Element): boolean {
  const from = parseJid(attr(stanza, "from"));
  return from !== undefined && core.addressedToAccount(stanza) && (core.rooms.has(from.bare) || core.pendingLeaves.has(from.bare));
}

/** Stanza the account session received from upstream. */
export function fromRoom(core: MachineState, stanza: Element, now: number): Action[] {
  // Isolation: only stanzas addressed to this account (and its account session) are looked at.
  if (!core.addressedToAccount(stanza)) return [];
  const from = parseJid(attr(stanza, "from"));
  if (!from) return [];
  if ((core.pendingLeaves.get(from.bare) ?? 0) > 0) {
    // Tail of an occupancy we already left; its end is our self-unavailable (§7.14).
    if (stanza.name === "presence" && attr(stanza, "type") === "unavailable" && statusCodes(stanza).has(STATUS.SELF)) {
      const n = (core.pendingLeaves.get(from.bare) ?? 1) - 1;
      if (n <= 0) core.pendingLeaves.delete(from.bare);
      else core.pendingLeaves.set(from.bare, n);
    }
    return [];
  }
  const room = core.rooms.get(from.bare);
  if (!room) return []; // not ours to handle (the account session answers other IQs itself)
  room.lastSeen = now;
  switch (stanza.name) {
    case "presence":
      return presence(core, room, from, stanza, now);
    case "message":
      return message(core, room, stanza, now);
    case "iq":
      return iq(core, room, stanza, now);
    default:
      return [];
  }
}

function isSelfPresence(room: RoomState, from: JidParts, codes: Set<string>): boolean {
  // §7.2.3: 110 marks presence about the receiving occupant; fall back on the nick for rooms that omit it.
  return codes.has(STATUS.SELF) || (from.resource !== undefined && from.resource === room.nick && !room.occupants.has(from.resource));
}

function presence(core: MachineState, room: RoomState, from: JidParts, stanza: Element, now: number): Action[] {
  const type = attr(stanza, "type");
  if (type === "error") return presenceError(core, room, from, stanza);
  const nick = from.resource;
  if (nick === undefined) return fromBareRoom(room, stanza);
  const codes = statusCodes(stanza);
  const out: Action[] = [];
  if (isSelfPresence(room, from, codes)) {
    if (type === "unavailable") {
      const kind = classifySelfUnavailable(stanza);
      if (kind === "nick-change") {
        // §7.6: first half of a rename; every session sees it, the new nick comes next.
        const newNick = mucItem(stanza)?.attrs.nick;
        if (typeof newNick === "string" && newNick !== "") room.nick = newNick;
        out.push(...fanOut(stanza, room.audience()));
        return out;
      }
      if (codes.has(STATUS.SHUTDOWN) && room.phase === "joined" && !hasDestroy(stanza)) {
        // 332: the MUC service is shutting down (server restart). Not a rule for the account to
        // leave: the room is rejoined, with history since, when the account session comes back
        // (or after a pause if it stays up). Sessions see nothing, as for any upstream loss.
        core.markOut(room, now, out);
        room.outSince = now;
        return out;
      }
      // Removal (§8.2 kick, §9.1 ban, 321/322, 333, §10.9 destroy) or the room dropping us:
      // every session is told, the room is forgotten so a later join starts fresh.
      out.push(...fanOut(stanza, room.sessions.keys()));
      for (const [s, req] of room.waiting) out.push(toSession(s, withId(addressedTo(stanza, s), req.id)));
      core.dropRoom(room, out, "removed");
      return out;
    }
    if (type !== undefined) return [];
    room.nick = nick;
    const previous = room.selfPresence;
    room.selfPresence = copyOf(stanza);
    if (room.phase === "joining") return completeJoin(core, room, now);
    if (room.rejoining) return completeRejoin(room, previous, stanza);
    if (room.outSince !== undefined) return []; // after a 332 the room is not ours until the rejoin
    // Live self-presence (role change, our aggregate's echo, second half of a rename).
    const pending = room.pendingNick;
    if (pending && pending.nick === nick) {
      room.pendingNick = undefined;
      for (const s of room.audience()) {
        const copy = addressedTo(stanza, s);
        out.push(toSession(s, s === pending.session ? withId(copy, pending.id) : copy));
      }
      return out;
    }
    out.push(...fanOut(stanza, room.audience()));
    return out;
  }
  // Another occupant (§7.2.3 list, §7.4 updates, §7.6 renames, §7.14 leaves, §8-§9 removals).
  if (room.outSince !== undefined) return []; // the shutting-down room's tail: the rejoin tells who is there
  if (type === "unavailable") room.occupants.delete(nick);
  else if (type === undefined) {
    const before = room.occupants.get(nick);
    room.occupants.set(nick, copyOf(stanza));
    if (room.rejoining) {
      room.rejoinSeen.add(nick);
      // Sessions already know this occupant: only tell them what changed while we were away.
      if (before && contentKey(before) === contentKey(stanza)) return [];
    }
  } else return [];
  out.push(...fanOut(stanza, room.audience()));
  return out;
}

/**
 * A presence from the bare room JID (ejabberd: the room's caps, before the occupant list and on
 * config changes): kept for replays and fanned out like an occupant's presence. After a rejoin the
 * room repeats it; sessions already have it unless it changed.
 */
function fromBareRoom(room: RoomState, stanza: Element): Action[] {
  if (attr(stanza, "type") !== undefined) return [];
  const before = room.bareRoomPresence;
  room.bareRoomPresence = copyOf(stanza);
  if (room.rejoining && before && contentKey(before) === contentKey(stanza)) return [];
  return fanOut(stanza, room.audience());
}

/** §7.2.3: our self-presence ends the occupant list; every waiting session is now joined. */
function completeJoin(core: MachineState, room: RoomState, now: number): Action[] {
  const out: Action[] = [];
  room.phase = "joined";
  room.rejoining = false;
  // The room's history comes next (§7.2.3): held until it ends, then each session gets its slice.
  room.historyHold = new Map();
  room.historyHoldSince = now;
  const joined = [...room.waiting.values()];
  for (const req of joined) {
    const s = req.session;
    out.push(toSession(s, selfPresenceFor(room, req, true)));
    room.sessions.set(s, { session: s, presence: req.presence, seq: core.nextSeq() });
    room.historyHold.set(s, req.history);
  }
  room.waiting.clear();
  if (room.sessions.size === 0 && room.idleSince === undefined) room.idleSince = now;
  core.updateAggregate(room, out);
  // what they sent while waiting goes now, as the account's occupant (docs/architecture.md §6.1)
  for (const req of joined) releaseHeld(core, room, req, now, out);
  return out;
}

/**
 * The account is back in the room after an upstream drop. Sessions never saw it leave, so they
 * get only the difference: occupants that left meanwhile (synthesised unavailable), changed
 * occupants (already forwarded), the missed history (forwarded as it arrives, overlap dropped).
 * The self-presence is forwarded only when the room gave us another nick.
 */
function completeRejoin(room: RoomState, previous: Element | undefined, self: Element): Action[] {
  const out: Action[] = [];
  room.rejoining = false;
  for (const [nick, last] of [...room.occupants]) {
    if (room.rejoinSeen.has(nick)) continue;
    room.occupants.delete(nick);
    out.push(...fanOut(vanishedOccupant(room, nick, last), room.audience()));
  }
  room.rejoinSeen.clear();
  const prevNick = previous ? parseJid(attr(previous, "from"))?.resource : undefined;
  if (prevNick !== undefined && prevNick !== room.nick) out.push(...fanOut(self, room.audience()));
  return out;
}

function presenceError(core: MachineState, room: RoomState, from: JidParts, stanza: Element): Action[] {
  const out: Action[] = [];
  if (room.phase === "joining") {
    // §7.2.6-§7.2.11 join errors (401, 403, 407, 409, 503…): each waiting session gets it with its own id.
    for (const [s, req] of room.waiting) {
      out.push(toSession(s, withId(addressedTo(stanza, s), req.id)));
      bounceHeld(room, req, out);
    }
    core.dropRoom(room, out, "join-refused");
    return out;
  }
  const pending = room.pendingNick;
  if (pending && from.resource === pending.nick) {
    // §7.6 nick change refused (409 conflict, 406…): only the session that asked, with its id.
    room.pendingNick = undefined;
    if (pending.session !== undefined && room.isJoined(pending.session))
      out.push(toSession(pending.session, withId(addressedTo(stanza, pending.session), pending.id)));
    return out;
  }
  out.push(...fanOut(stanza, room.sessions.keys()));
  // A failed rejoin (e.g. banned while we were away) leaves us outside the room: forget it. The
  // sessions waiting on it get the room's answer too, with their own join ids.
  if (room.rejoining) {
    for (const [s, req] of room.waiting) {
      out.push(toSession(s, withId(addressedTo(stanza, s), req.id)));
      bounceHeld(room, req, out);
    }
    core.dropRoom(room, out, "rejoin-refused");
  }
  return out;
}

function message(core: MachineState, room: RoomState, stanza: Element, now: number): Action[] {
  const type = attr(stanza, "type");
  if (room.phase !== "joined") return []; // nothing but presences precede our self-presence (§7.2.3)
  if (type === "groupchat") {
    const isSubject = stanza.getChild("subject") !== undefined && stanza.getChild("body") === undefined;
    if (isSubject) {
      // §8.1: a subject message has <subject/> and no <body/>; it ends the join sequence (§7.2.16).
      // After a rejoin the room repeats the subject; sessions already have it unless it changed.
      const repeat =
        room.rejoinSubjectPending &&
        room.subject !== undefined &&
        (room.subject.getChildText("subject") ?? "") === (stanza.getChildText("subject") ?? "");
      const endsRejoin = room.rejoinSubjectPending && !room.rejoining;
      room.subject = copyOf(stanza);
      room.subjectReceived = true;
      // The subject ends the first join's history: every held session gets its slice first.
      const out = releaseHistory(room, now, core.opts.defaultHistoryStanzas);
      if (!repeat) out.push(...fanOut(stanza, room.sessions.keys()));
      if (endsRejoin) core.finishRejoin(room, now, out);
      else room.rejoinSubjectPending = false;
      return out;
    } else if (stanza.getChild("body") !== undefined) {
      // A rejoin's <history since=…> overlaps what we saw live: drop what the buffer already has.
      if (hasDelay(stanza) && room.history.has(stanza)) return [];
      if (room.historyHold) {
        // The first join's history (delayed, §7.2.14) is only buffered; sessions get their slices
        // when it ends. A live message ends it: slices first (without it), then it goes out as usual.
        if (hasDelay(stanza)) {
          room.history.push(stanza, now);
          return [];
        }
        const out = releaseHistory(room, now, core.opts.defaultHistoryStanzas);
        room.history.push(stanza, now);
        out.push(...fanOut(stanza, room.sessions.keys()));
        return out;
      }
      room.history.push(stanza, now);
    }
    return fanOut(stanza, room.sessions.keys());
  }
  if (type === "error") {
    // A bounce of something a session sent: back to that session if we know it, else to all.
    const id = attr(stanza, "id");
    const sender = id === undefined ? undefined : room.recentSent.get(id);
    // An id the proxy gave an id-less PM (from-session.ts) goes back to none, as the session sent it.
    if (sender !== undefined && room.isJoined(sender)) return fanOut(id?.startsWith("mmx-msg-") === true ? withId(copyOf(stanza), undefined) : stanza, [sender]);
    return fanOut(stanza, room.sessions.keys());
  }
  // §7.5 private messages from occupants, and room notices/invites (muc#user x): every joined session.
  if (room.sessions.size === 0 && parseJid(attr(stanza, "from"))?.resource !== undefined && isHoldablePm(stanza)) {
    // Nobody of the account is in the room: kept for the next session back (issue 10 §4).
    const out: Action[] = [];
    core.holdPm(room, stanza, now, out);
    return out;
  }
  return fanOut(stanza, room.sessions.keys());
}

function iq(core: MachineState, room: RoomState, stanza: Element, now: number): Action[] {
  const type = attr(stanza, "type");
  if (type === "result" || type === "error") {
    const p = core.iqs.peek(attr(stanza, "id"));
    if (!p || p.direction !== "toRoom" || p.room !== room.jid) return [];
    // The answer must come from whom the session asked (RFC 6120 §8.1.2.1 spoofing guard).
    const fromBare = parseJid(attr(stanza, "from"))?.bare;
    const fromRes = parseJid(attr(stanza, "from"))?.resource;
    const peer = parseJid(p.peer);
    if (!peer || peer.bare !== fromBare || peer.resource !== fromRes) return [];
    core.iqs.take(p.id);
    const reply = withId(addressedTo(stanza, p.session), p.originalId);
    return [toSession(p.session, reply)];
  }
  if (type !== "get" && type !== "set") return [];
  // XEP-0199: pings to the account's occupant are answered by the account session itself.
  if (isPing(stanza)) return [toRoomUpstream(pingResultUpstream(stanza))];
  const target = room.phase === "joined" ? mostAvailable(room.sessions.values()) : undefined;
  const asker = attr(stanza, "from");
  if (!target || asker === undefined) {
    const to = asker;
    return [toRoomUpstream(errorReply(stanza, { to, type: "cancel", condition: "service-unavailable" }))];
  }
  if (core.iqs.size >= core.opts.maxPendingIqs) {
    // issue 10 §7: too many IQs in flight; the occupant may retry (RFC 6120 §8.3.3.15; not a "ghost" condition)
    return [{ kind: "stanzaRefused", room: room.jid, code: "PENDING_IQS_FULL" }, toRoomUpstream(errorReply(stanza, { to: asker, type: "wait", condition: "resource-constraint" }))];
  }
  // An occupant's IQ to our occupant (vCard, version, …): one session answers, id remapped.
  const newId = core.iqs.add({ direction: "toSession", session: target.session, room: room.jid, originalId: attr(stanza, "id"), peer: asker, at: now });
  return [toSession(target.session, withId(addressedTo(stanza, target.session), newId))];
}
