import { Element } from "ltx";
import { type Action, type RoomLeftReason, toRoomUpstream, toSession } from "./actions.js";
import { releaseHistory, replayFromState, upstreamJoin } from "./join.js";
import { IqRemapper, type PendingIq } from "./iq-remap.js";
import { splitJid } from "../jid.js";
import { aggregateKey, mostAvailable, presenceToRoom } from "./presence-aggregate.js";
import { type HeldPing, RoomState } from "./room-state.js";
import { HeldPms, heldPmFor, pmError } from "./held-pms.js";
import { utf8Length } from "./history.js";
import { selfPingNotJoined, selfPingResult } from "./self-ping.js";
import { attr, copyOf, removeChildren } from "./stanza.js";
import { type StanzaErrorCondition, type StanzaErrorType, errorReply } from "../xml/errors.js";
import { releaseHeld } from "./from-session.js";

export interface RoomMachineOptions {
  historyLimit: number; // max buffered groupchat messages per room (default 200)
  /** Bound of each room's buffer in bytes of XML (--room-history-bytes); the oldest go first. */
  historyBytes: number; // default 1 MiB
  /**
   * The first join's history is held until the subject ends it (§7.2.16); a room that never
   * sends one releases it after this long (on tick) or at its first live message.
   */
  historyHoldMs: number; // default 10 s
  /** PMs held per account while no session is in their room (--max-held-pms, issue 10 §4): count and bytes. */
  maxHeldPms: number; // default 100
  maxHeldPmBytes: number; // default 256 KiB
  /**
   * Bounds of what a session may queue (issue 10 §7): each room's outbox while the account is out of
   * the room (count and bytes), and the account's IQs awaiting a reply. Beyond them the session's
   * stanza is answered with resource-constraint (RFC 6120 §8.3.3.15, type wait).
   */
  maxOutboxStanzas: number; // default 1000
  maxOutboxBytes: number; // default 1 MiB
  maxPendingIqs: number; // default 1000
  /**
   * Bound of the proxy's own queue while the account session connects or reconnects (actions.ts:
   * `toRoomUpstream` emitted while it is not online is queued there): count and bytes of what the
   * machine emitted meanwhile. What goes there is mostly joins of rooms new to the account; a
   * session's stanza that would pass the bound is refused like the room outbox's (resource-constraint).
   */
  maxAccountOutboxStanzas: number; // default 1000
  maxAccountOutboxBytes: number; // default 1 MiB
  idleLeaveMs: number; // leave a room after this long with no session joined (default 2 h)
  /** History replayed to a session whose join has no <history/> (the room-default analogue). */
  defaultHistoryStanzas: number; // default 20
  /**
   * A rejoin asks <history since = last stanza seen − margin>: stanzas in flight when the
   * upstream dropped are lost, and the room's clock is not ours. The overlap is dropped again by
   * message identity (stanza-id, else from+id+body) against the buffer.
   */
  rejoinSinceMarginMs: number; // default 5 s
  /** Unanswered remapped IQs are answered with an error after this long (on tick). */
  iqTimeoutMs: number; // default 60 s
  /**
   * The account's room presence once a room's last joined session is gone without a leave
   * (--away-presence): `xa` or `away` (<show/> of RFC 6121 §4.7.2.1, the rest of the last
   * aggregate kept), or `keep` the last aggregate. Back to the aggregate when a session joins.
   */
  awayPresence: AwayPresence; // default xa
  /** A session waiting on a join gets an error presence after this long (on tick); 0 = wait forever. */
  joinTimeoutMs: number; // default 30 s
  /** After a room's shutdown notice (332) while the account session stays up, rejoin after this long. */
  rejoinAfterShutdownMs: number; // default 5 s
}

export type AwayPresence = "xa" | "away" | "keep";

export const DEFAULT_OPTIONS: RoomMachineOptions = {
  historyLimit: 200,
  historyBytes: 1024 * 1024,
  historyHoldMs: 10_000,
  maxHeldPms: 100,
  maxHeldPmBytes: 256 * 1024,
  maxOutboxStanzas: 1000,
  maxOutboxBytes: 1024 * 1024,
  maxPendingIqs: 1000,
  maxAccountOutboxStanzas: 1000,
  maxAccountOutboxBytes: 1024 * 1024,
  idleLeaveMs: 2 * 60 * 60 * 1000,
  defaultHistoryStanzas: 20,
  rejoinSinceMarginMs: 5000,
  iqTimeoutMs: 60_000,
  awayPresence: "xa",
  joinTimeoutMs: 30_000,
  rejoinAfterShutdownMs: 5000,
};

export type UpstreamState = "down" | "opening" | "up";

/** Why a session's stanza was not queued (issue 10 §7); the log code and metric label. */
export type QueueFullCode = "ROOM_OUTBOX_FULL" | "ACCOUNT_OUTBOX_FULL";

/** Shared state and helpers of one account's rooms; the stanza handlers work on this. */
export class MachineState {
  readonly rooms = new Map<string, RoomState>();
  readonly iqs: IqRemapper;
  /** PMs to the account's occupant that arrived while no session was in their room (held-pms.ts). */
  readonly heldPms: HeldPms;
  upstream: UpstreamState = "down";
  accountSessionJid: string | undefined;
  accountResource: string | undefined;
  /**
   * Leaves sent upstream whose self-unavailable echo (§7.14) has not come back yet, per room.
   * Until it does, everything from that room belongs to the old occupancy and is dropped, so a
   * quick re-join is not confused by the tail of the previous one.
   */
  readonly pendingLeaves = new Map<string, number>();
  /**
   * What the proxy holds for the account session because it is not online (actions.ts contract:
   * `toRoomUpstream` emitted while upstream ≠ "up" is queued, flushed once bound, discarded on a
   * loss or a close). Counted here, where the stanzas are decided, so the bound is decided here too.
   */
  private readonly accountOutbox = { stanzas: 0, bytes: 0 };
  private seqNo = 0;

  constructor(
    readonly accountBare: string,
    readonly opts: RoomMachineOptions,
  ) {
    this.iqs = new IqRemapper("mmx");
    this.heldPms = new HeldPms({ maxCount: opts.maxHeldPms, maxBytes: opts.maxHeldPmBytes });
  }

  /** A PM for the account's occupant with no session in the room: held, or the sender is told (issue 10 §4). */
  holdPm(room: RoomState, stanza: Element, now: number, out: Action[]): void {
    if (this.heldPms.hold(room.jid, stanza, now)) return;
    const err = pmError(stanza, "full");
    if (err) this.sendToRoom(room, err, out);
    out.push({ kind: "heldPmRefused", room: room.jid });
  }

  /** A session is back in the room: every session joined now gets the held PMs once, then they are forgotten. */
  deliverHeldPms(room: RoomState, out: Action[]): void {
    if (room.sessions.size === 0) return;
    const domain = splitJid(this.accountBare)?.domain ?? this.accountBare;
    for (const h of this.heldPms.take(room.jid)) for (const s of room.sessions.keys()) out.push(toSession(s, heldPmFor(h, s, domain)));
  }

  nextSeq(): number {
    this.seqNo += 1;
    return this.seqNo;
  }

  nextId(kind: string): string {
    return `mmx-${kind}-${this.nextSeq().toString(36)}`;
  }

  /** Is this full JID one of this account's sessions? (isolation: nothing else is ever served) */
  ownsSession(session: string): boolean {
    const j = splitJid(session);
    return j !== undefined && j.resource !== undefined && j.bare === this.accountBare;
  }

  /**
   * Room-bound stanza through the account session: straight out when the room's join is on the
   * current connection (or queued in front of it), held otherwise so it follows the rejoin.
   */
  sendToRoom(room: RoomState, stanza: Element, out: Action[]): void {
    if (room.joinSent) this.toUpstream(stanza, out);
    else {
      room.outbox.push(stanza);
      room.outboxBytes += utf8Length(stanza.toString());
    }
  }

  /**
   * A session's stanza for the room, held like sendToRoom — unless the queue it would wait in is
   * full (count or bytes, issue 10 §7): the room's outbox while the account is out of the room, the
   * proxy's queue while the account session is not online. Then nothing is queued, the refusal is
   * logged and counted (`stanzaRefused`), and the caller answers the session.
   */
  trySendToRoom(room: RoomState, stanza: Element, out: Action[]): boolean {
    const full = this.queueFull(room, stanza);
    if (full) {
      out.push({ kind: "stanzaRefused", room: room.jid, code: full });
      return false;
    }
    this.sendToRoom(room, stanza, out);
    return true;
  }

  /** The bound `stanza` would pass if it were queued for `room` now, if any. */
  queueFull(room: RoomState, stanza: Element): QueueFullCode | undefined {
    if (room.joinSent) return this.accountOutboxFits(stanza) ? undefined : "ACCOUNT_OUTBOX_FULL";
    const bytes = utf8Length(stanza.toString());
    if (room.outbox.length + 1 > this.opts.maxOutboxStanzas || room.outboxBytes + bytes > this.opts.maxOutboxBytes) return "ROOM_OUTBOX_FULL";
    return undefined;
  }

  /** Would the proxy's queue (see accountOutbox) take `stanza` within its bounds? Always while online. */
  accountOutboxFits(stanza: Element): boolean {
    if (this.upstream === "up") return true;
    const q = this.accountOutbox;
    return q.stanzas + 1 <= this.opts.maxAccountOutboxStanzas && q.bytes + utf8Length(stanza.toString()) <= this.opts.maxAccountOutboxBytes;
  }

  /**
   * Every room-bound stanza the machine emits for the current connection goes through here:
   * while the account session is not online the proxy queues it, so it is counted.
   */
  toUpstream(stanza: Element, out: Action[]): void {
    if (this.upstream !== "up") {
      this.accountOutbox.stanzas += 1;
      this.accountOutbox.bytes += utf8Length(stanza.toString());
    }
    out.push(toRoomUpstream(stanza));
  }

  /** The proxy's queue was flushed (account session bound) or discarded (lost, closed). */
  accountOutboxEmptied(): void {
    this.accountOutbox.stanzas = 0;
    this.accountOutbox.bytes = 0;
  }

  /** For tests and status: what the machine counts in the proxy's queue. */
  accountOutboxSize(): { stanzas: number; bytes: number } {
    return { ...this.accountOutbox };
  }

  /** Sends the account's leave (§7.14) and remembers to swallow its echo. */
  leaveUpstream(room: RoomState, leave: Element, out: Action[]): void {
    if (!room.joinSent) return; // not in the room on this connection: nothing to leave
    // Held PMs will never be delivered: their senders are told while the account is still an occupant.
    for (const h of this.heldPms.take(room.jid)) {
      const err = pmError(h.stanza, "left");
      if (err) this.toUpstream(err, out);
    }
    this.toUpstream(leave, out);
    this.pendingLeaves.set(room.jid, (this.pendingLeaves.get(room.jid) ?? 0) + 1);
  }

  /**
   * The account is out of this room for good: forget it; when none is left the account session may
   * go. Every caller says why (logged by the proxy), so a leave is never unexplained.
   */
  dropRoom(room: RoomState, out: Action[], reason: RoomLeftReason): void {
    if (this.rooms.get(room.jid) !== room) return;
    this.rooms.delete(room.jid);
    // Still held here means the account is out of the room already (removed, rejoin refused): the
    // room no longer relays for it, so the senders cannot be told. Counted and logged, not silent.
    const lost = this.heldPms.take(room.jid).length;
    out.push(lost > 0 ? { kind: "roomLeft", room: room.jid, reason, heldPmsLost: lost } : { kind: "roomLeft", room: room.jid, reason });
    // Held self-pings: the account is out, so they get what a room gives a non-occupant (XEP-0410).
    for (const p of room.heldPings.splice(0)) out.push(toSession(p.session, selfPingNotJoined(p.stanza, p.session, room.jid)));
    // IQs in flight for this room: answer the asking sessions now rather than never.
    for (const p of this.iqs.takeWhere((q) => q.room === room.jid)) out.push(...this.failPending(p, "recipient-unavailable", "wait"));
    if (this.rooms.size === 0 && this.upstream !== "down") {
      out.push({ kind: "closeAccountSession" });
      this.upstream = "down";
      this.accountOutboxEmptied(); // the proxy discards its queue with the account session
    }
  }

  /**
   * The account is out of a room it was in and will be put back (upstream lost, or the room's 332):
   * sessions see nothing; its state stays for them, marked stale until the rejoin ends.
   */
  markOut(room: RoomState, now: number, out: Action[]): void {
    // The first join's history ends here: held sessions get their slices of what came, and the
    // rejoin's <history since=…> is forwarded live like any missed message (§4.4).
    out.push(...releaseHistory(room, now, this.opts.defaultHistoryStanzas));
    room.joinSent = false;
    room.pendingNick = undefined;
    if (room.phase === "joined") {
      room.rejoining = true;
      room.rejoinSeen.clear();
      room.rejoinSubjectPending = true;
    } else {
      room.occupants.clear(); // the join is sent again and its presences come again
    }
  }

  /** (Re)join a room on the current connection: a rejoin asks <history since=…> (§7.2.15), then held stanzas follow. */
  rejoin(room: RoomState, now: number, out: Action[]): void {
    room.outSince = undefined;
    if (room.phase === "joining") room.occupancySince = now; // its join goes out now
    const since = room.phase === "joined" ? this.rejoinSince(room, now) : undefined;
    // with no session joined, the room keeps seeing the away presence (--away-presence)
    const source = room.phase === "joined" ? (mostAvailable(room.sessions.values())?.presence ?? room.awayPresence) : room.waiting.values().next().value?.presence;
    this.toUpstream(upstreamJoin(room, source, this.nextId("join"), this.opts.historyLimit, since), out);
    room.joinSent = true;
    for (const held of room.outbox.splice(0)) this.toUpstream(held, out);
    room.outboxBytes = 0;
  }

  /**
   * since = last stanza seen − margin, but never older than the buffer can de-duplicate, nor
   * older than this occupancy (assumes the room's clock is close to ours: documented limit).
   */
  private rejoinSince(room: RoomState, now: number): number {
    let since = (room.lastSeen ?? now) - this.opts.rejoinSinceMarginMs;
    const oldest = room.history.oldest();
    if (room.history.full && oldest) since = Math.max(since, oldest.time);
    if (room.occupancySince !== undefined) since = Math.max(since, room.occupancySince);
    return Math.max(0, since);
  }

  /**
   * The rejoin's join sequence is over (its subject came, §7.2.16): the state is rebuilt from what
   * the room said. Sessions that joined meanwhile are answered from it now, held self-pings too.
   */
  finishRejoin(room: RoomState, now: number, out: Action[]): void {
    room.rejoinSubjectPending = false;
    for (const s of [...room.waiting.keys()]) this.answerFromState(room, s, now, out);
    for (const req of room.resyncs.values()) if (room.isJoined(req.session)) out.push(...replayFromState(room, req, now, this.opts.defaultHistoryStanzas));
    room.resyncs.clear();
    this.deliverHeldPms(room, out);
    for (const p of room.heldPings.splice(0)) out.push(this.answerPing(room, p));
    this.updateAggregate(room, out);
  }

  /** A waiting session joins the (joined, up to date) room: replay, then it counts in the aggregate. */
  answerFromState(room: RoomState, session: string, now: number, out: Action[]): void {
    const req = room.waiting.get(session);
    if (!req) return;
    room.waiting.delete(session);
    out.push(...replayFromState(room, req, now, this.opts.defaultHistoryStanzas));
    room.sessions.set(session, { session, presence: req.presence, seq: this.nextSeq() });
    room.idleSince = undefined;
    releaseHeld(this, room, req, now, out);
  }

  /** XEP-0410 from state: result for a joined session, <not-acceptable/> (rejoin!) otherwise. */
  answerPing(room: RoomState, p: HeldPing): Action {
    return toSession(p.session, room.isJoined(p.session) ? selfPingResult(p.stanza, p.session) : selfPingNotJoined(p.stanza, p.session, room.jid));
  }

  /** Error answer for a remapped IQ that will not get its reply. */
  failPending(p: PendingIq, condition: StanzaErrorCondition, type: StanzaErrorType): Action[] {
    if (p.direction === "toRoom") {
      const reply = errorReply(fakeIq(p.originalId), { from: p.peer, to: p.session, type, condition });
      return [toSession(p.session, reply)];
    }
    const reply = errorReply(fakeIq(p.originalId), { to: p.peer, type, condition });
    const room = this.rooms.get(p.room);
    if (room) {
      const tmp: Action[] = [];
      this.sendToRoom(room, reply, tmp);
      return tmp;
    }
    return [];
  }

  /**
   * Presence aggregation (docs/architecture.md §6.5): recompute the account's room presence from its joined
   * sessions and send it upstream only when it changed. Nothing is sent when no session is
   * joined (a disconnect is not a presence change for the room).
   */
  updateAggregate(room: RoomState, out: Action[]): void {
    if (room.phase !== "joined" || room.sessions.size === 0) return;
    const best = mostAvailable(room.sessions.values());
    const key = aggregateKey(best?.presence);
    if (key === room.lastPresenceKey) return;
    room.lastPresenceKey = key;
    room.awayPresence = undefined;
    this.sendToRoom(room, presenceToRoom(best?.presence, room.occupantJid), out);
  }

  /**
   * The room's last joined session is gone without a leave: the account's occupant stays
   * (docs/architecture.md §6.6) but nobody reads the room, so its presence becomes `opts.awayPresence` — the last
   * aggregate (`last`: status, caps) with <show/> replaced. The next aggregate undoes it.
   */
  awayAggregate(room: RoomState, last: Element | undefined, out: Action[]): void {
    const show = this.opts.awayPresence;
    if (show === "keep" || room.phase !== "joined") return;
    const p = presenceToRoom(last, room.occupantJid);
    removeChildren(p, "show");
    p.c("show").t(show);
    const key = aggregateKey(p);
    if (key === room.lastPresenceKey) return;
    room.lastPresenceKey = key;
    room.awayPresence = p;
    // Out of the room (a rejoin is pending): the rejoin's join carries this presence, nothing to hold.
    if (room.joinSent) this.sendToRoom(room, copyOf(p), out);
  }

  /** The bare-JID-normalised account session resource check for stanzas from upstream. */
  addressedToAccount(stanza: Element): boolean {
    return this.addressedToAccountJid(attr(stanza, "to"));
  }

  /** addressedToAccount for a `to` already read (the fast path peeks it from the bytes). */
  addressedToAccountJid(toJid: string | undefined): boolean {
    const to = splitJid(toJid);
    if (!to || to.bare !== this.accountBare) return false;
    if (to.resource !== undefined && this.accountResource !== undefined && to.resource !== this.accountResource) return false;
    return true;
  }
}

/** errorReply only reads the name and id of the request it answers. */
function fakeIq(id: string | undefined): Element {
  const attrs: Record<string, string> = {};
  if (id !== undefined) attrs.id = id;
  return new Element("iq", attrs);
}
