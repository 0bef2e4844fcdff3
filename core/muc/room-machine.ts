import type { Element } from "ltx";
import { type Action, toSession } from "./actions.js";
import { MachineState, type RoomMachineOptions, DEFAULT_OPTIONS, type UpstreamState } from "./machine-state.js";
import { fromRoom, isRoomStanza } from "./from-room.js";
import { fromRoomBytes } from "./from-room-bytes.js";
import { bounceHeld, fromSession } from "./from-session.js";
import { type CarbonVerdict, sentCarbon } from "./carbons.js";
import { joinTimeoutError, releaseHistory } from "./join.js";
import { splitBare as bareOf, splitJid as parseJid } from "../jid.js";
import { upstreamLeave } from "./leave.js";
import { bookmarkJoin, bookmarkLeave } from "./bookmarked.js";
import { isHoldablePm } from "./held-pms.js";
import type { RoomSnapshot, RoomState } from "./room-state.js";

export type { RoomMachineOptions } from "./machine-state.js";
export type { RoomSnapshot } from "./room-state.js";

/**
 * One account's MUC rooms, joined once by the account session and shared by every downstream
 * session of that account (docs/architecture.md §4-§6, issue 3). Pure: events in, actions out; time is passed in.
 */
export class RoomMachine {
  private readonly core: MachineState;

  constructor(accountBareJid: string, opts?: Partial<RoomMachineOptions>) {
    const bare = bareOf(accountBareJid);
    if (bare === undefined) throw new Error(`not a JID: ${accountBareJid}`);
    this.core = new MachineState(bare, { ...DEFAULT_OPTIONS, ...opts });
  }

  /** The account session's bound full JID: stanzas from upstream must be addressed to it. */
  setAccountSessionJid(fullJid: string): void {
    const j = parseJid(fullJid);
    if (!j || j.bare !== this.core.accountBare) throw new Error(`${fullJid} is not a JID of ${this.core.accountBare}`);
    this.core.accountSessionJid = fullJid;
    this.core.accountResource = j.resource;
  }

  fromSession(sessionFullJid: string, stanza: Element, now: number): Action[] {
    return fromSession(this.core, sessionFullJid, stanza, now);
  }

  fromRoom(stanza: Element, now: number): Action[] {
    return fromRoom(this.core, stanza, now);
  }

  /**
   * The fast path for a `message` the account session received, from its bytes: the actions
   * `fromRoom` would return for it, or undefined when deciding needs the element (then call
   * `handles`/`fromRoom` with the parsed stanza). See from-room-bytes.ts.
   */
  fromRoomBytes(bytes: Buffer, now: number): Action[] | undefined {
    return fromRoomBytes(this.core, bytes, now);
  }

  /**
   * True when `fromRoom` would act on this stanza (it comes from a room this account is in or is
   * leaving). Anything else that reaches the account session (pings, disco from the server…) is
   * the account session's own to answer.
   */
  handles(stanza: Element): boolean {
    return isRoomStanza(this.core, stanza);
  }

  /** A carbon on a session's own upstream leg (XEP-0280 §6): see carbons.ts. */
  sentCarbon(sessionFullJid: string, carbon: Element): CarbonVerdict {
    return sentCarbon(this.core, sessionFullJid, carbon);
  }

  /**
   * A downstream session disconnected. Not a leave (docs/architecture.md §6.6): the account stays in
   * its rooms, the buffers keep collecting; a room with no session left starts its idle clock, and
   * the account's room presence goes to the configured away state (`awayPresence`).
   */
  sessionGone(sessionFullJid: string, now: number): Action[] {
    return this.endSession(sessionFullJid, now, false);
  }

  /**
   * A new stream bound this session's full JID while the old stream still held it: the server
   * gives the resource to the new stream and ends the old one (RFC 6120 §7.7.2.2, conflict).
   * The old stream's memberships, waits and IQs end here; the new stream has joined nothing yet,
   * so its joins are fresh joins (answered from state, with its own ids), not resyncs of the old
   * stream's. Unlike sessionGone the room presence is left alone: the user is back, not away.
   */
  sessionReplaced(sessionFullJid: string, now: number): Action[] {
    return this.endSession(sessionFullJid, now, true);
  }

  /**
   * A PM (XEP-0045 §7.5) this machine delivered to a session whose client never acknowledged it:
   * the session is ending without resumption (XEP-0198 expiry, docs/architecture.md §8.4). Bouncing
   * it toward the room would get the account kicked (held-pms.ts), so: when another session of the
   * account is joined in that room, it has its own copy and nothing is done; otherwise it is held
   * like a PM that arrived while every session was away (issue 10 §4), for the next session back.
   * Call before `sessionGone` of that session; `handled` false means it was not a PM of a room here.
   */
  undeliveredPm(sessionFullJid: string, stanza: Element, now: number): { handled: boolean; actions: Action[] } {
    const from = parseJid(typeof stanza.attrs.from === "string" ? stanza.attrs.from : "");
    if (from?.resource === undefined || !isHoldablePm(stanza)) return { handled: false, actions: [] };
    const room = this.core.rooms.get(from.bare);
    if (room === undefined) return { handled: false, actions: [] };
    for (const s of room.sessions.keys()) if (s !== sessionFullJid) return { handled: true, actions: [] };
    const out: Action[] = [];
    this.core.holdPm(room, stanza, now, out);
    return { handled: true, actions: out };
  }

  private endSession(sessionFullJid: string, now: number, replaced: boolean): Action[] {
    const out: Action[] = [];
    for (const room of this.core.rooms.values()) {
      if (!room.involves(sessionFullJid)) continue;
      const joined = room.sessions.get(sessionFullJid);
      room.waiting.delete(sessionFullJid);
      room.sessions.delete(sessionFullJid);
      if (room.pendingNick?.session === sessionFullJid) room.pendingNick.session = undefined;
      removeWhere(room.heldPings, (p) => p.session === sessionFullJid);
      room.resyncs.delete(sessionFullJid);
      if (room.empty()) room.idleSince = now;
      if (room.sessions.size > 0) this.core.updateAggregate(room, out);
      else if (joined && !replaced) this.core.awayAggregate(room, joined.presence, out);
    }
    // Its IQs in flight: replies to it are dropped; occupants waiting on it get an error.
    for (const p of this.core.iqs.takeWhere((q) => q.session === sessionFullJid)) {
      if (p.direction === "toSession") out.push(...this.core.failPending(p, "service-unavailable", "cancel"));
    }
    return out;
  }

  /**
   * The account's upstream dropped. Sessions see nothing (no leave): rooms stay joined in their
   * eyes and are rejoined with <history since=…> on accountSessionUp; stanzas for them are held.
   * Until each rejoin has ended, nobody is answered from the room's (stale) state.
   */
  accountSessionDown(now: number): Action[] {
    const out: Action[] = [];
    const core = this.core;
    core.upstream = core.rooms.size > 0 ? "opening" : "down";
    core.accountOutboxEmptied(); // the proxy discards what it held for the lost connection
    core.pendingLeaves.clear();
    for (const room of core.rooms.values()) core.markOut(room, now, out);
    for (const p of core.iqs.takeWhere(() => true)) {
      if (p.direction === "toRoom") out.push(...core.failPending(p, "remote-server-timeout", "wait"));
    }
    return out;
  }

  /**
   * The account session is (re)connected and bound: (re)join every room that needs it, then flush held
   * stanzas. `sameStream`: the proxy kept the stream online while no room wanted it (started at a
   * client's login, or lingering: docs/architecture.md §4.1), so the echoes of leaves sent on it are
   * still to come and are still swallowed.
   */
  accountSessionUp(now: number, sameStream = false): Action[] {
    const out: Action[] = [];
    const core = this.core;
    core.upstream = "up";
    core.accountOutboxEmptied(); // the proxy flushed what it held before calling this
    if (!sameStream) core.pendingLeaves.clear(); // a fresh stream carries no echo of an earlier one
    for (const room of core.rooms.values()) {
      if (room.joinSent) {
        // its first join is already queued on this connection
        if (room.phase === "joining") room.occupancySince = now;
        continue;
      }
      core.rejoin(room, now, out);
    }
    return out;
  }

  /** Idle leave (docs/architecture.md §6.6), join timeouts, rejoins after a room's shutdown notice, IQ timeouts. */
  tick(now: number): Action[] {
    const out: Action[] = [];
    const core = this.core;
    const { idleLeaveMs, joinTimeoutMs, rejoinAfterShutdownMs } = core.opts;
    for (const room of [...core.rooms.values()]) {
      if (joinTimeoutMs > 0) this.expireWaiting(room, now, out);
      if (!core.rooms.has(room.jid)) continue;
      // A room that never ends its history with a subject (§7.2.16): the held sessions get their slices anyway.
      if (room.historyHoldSince !== undefined && now - room.historyHoldSince >= core.opts.historyHoldMs) out.push(...releaseHistory(room, now, core.opts.defaultHistoryStanzas));
      if (room.outSince !== undefined && core.upstream === "up" && now - room.outSince >= rejoinAfterShutdownMs) core.rejoin(room, now, out);
      // idleLeaveMs 0 = never (--room-idle-leave 0); a bookmarked room is held for the bookmark
      if (idleLeaveMs <= 0 || room.bookmarked || !room.empty() || room.idleSince === undefined) continue;
      if (now - room.idleSince < idleLeaveMs) continue;
      core.leaveUpstream(room, upstreamLeave(room, undefined), out);
      core.dropRoom(room, out, "idle-timeout");
    }
    for (const p of core.iqs.takeWhere((q) => now - q.at >= core.opts.iqTimeoutMs)) out.push(...core.failPending(p, "remote-server-timeout", "wait"));
    return out;
  }

  /**
   * Sessions that waited longer than the join timeout on the account's (re)join. A rejoin whose
   * self-presence came but whose subject never did is done as far as it goes: answered from state.
   * Otherwise the session gets an error presence (remote-server-timeout, as a server says when the
   * room does not answer), and a first join nobody waits for any more is undone: no state is left.
   */
  private expireWaiting(room: RoomState, now: number, out: Action[]): void {
    const core = this.core;
    const late = [...room.waiting.values()].filter((r) => now - r.at >= core.opts.joinTimeoutMs);
    if (late.length === 0) return;
    if (room.phase === "joined" && !room.rejoining) {
      // the rejoin's self-presence and history came; only the subject is missing (§7.2.16)
      core.finishRejoin(room, now, out);
      return;
    }
    for (const req of late) {
      room.waiting.delete(req.session);
      out.push(toSession(req.session, joinTimeoutError(room, req)));
      bounceHeld(room, req, out);
    }
    if (room.phase === "joining" && room.empty()) {
      core.leaveUpstream(room, upstreamLeave(room, undefined), out);
      core.dropRoom(room, out, "join-timeout");
    } else if (room.empty() && room.idleSince === undefined) room.idleSince = now;
  }

  /**
   * The account follows an autojoin bookmark of `roomJid` (docs/architecture.md §4.6): it joins with
   * the bookmark's nick and password, asking `<history since>` the last message it saw there (a
   * proxy restart: `since`), else as much history as the buffer holds, so sessions joining later
   * are answered from state. No session is involved and none is forced in. A room the account is
   * in already only becomes bookmarked.
   */
  bookmarkJoin(roomJid: string, nick: string, password: string | undefined, since: number | undefined, now: number): Action[] {
    return bookmarkJoin(this.core, roomJid, nick, password, since, now);
  }

  /**
   * The room's autojoin bookmark was retracted or switched off (docs/architecture.md §4.6): every
   * session in it gets its own leave (§7.14: unavailable, 110), and the account leaves the room.
   */
  bookmarkLeave(roomJid: string): Action[] {
    return bookmarkLeave(this.core, roomJid);
  }

  rooms(): RoomSnapshot[] {
    return [...this.core.rooms.values()].map((r) => r.snapshot());
  }

  /** Is this bare JID a room the account is in or joining? (case-insensitive, like all room JIDs here) */
  knowsRoom(bareJid: string): boolean {
    const bare = bareOf(bareJid);
    return bare !== undefined && this.core.rooms.has(bare);
  }

  /** The account's nick in a room it is in or joining (XEP-0357 mentions, docs/architecture.md §8.6); undefined otherwise. */
  nickIn(bareJid: string): string | undefined {
    const bare = bareOf(bareJid);
    return bare === undefined ? undefined : this.core.rooms.get(bare)?.nick;
  }

  hasState(): boolean {
    return this.core.rooms.size > 0;
  }

  /** Stanzas (and their bytes) the proxy holds for the account session while it is not online, as counted here. */
  accountOutboxSize(): { stanzas: number; bytes: number } {
    return this.core.accountOutboxSize();
  }

  /** Where the machine believes the account session is (for status/metrics and tests). */
  upstreamState(): UpstreamState {
    return this.core.upstream;
  }
}

function removeWhere<T>(xs: T[], pred: (x: T) => boolean): void {
  for (let i = xs.length - 1; i >= 0; i--) if (pred(xs[i] as T)) xs.splice(i, 1);
}
