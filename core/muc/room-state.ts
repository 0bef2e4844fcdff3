import { Element } from "ltx";
import { HistoryBuffer, type HistoryRequest } from "./history.js";
import { withResource } from "../jid.js";

/** A session's join request (XEP-0045 §7.2), kept while it waits and to shape its replay. */
export interface JoinRequest {
  session: string;
  id: string | undefined; // its join stanza id: echoed on its self-presence / join error
  nick: string; // the nick it asked for (210 when it differs from the account's, §7.2.9)
  history: HistoryRequest | undefined;
  presence: Element; // the join presence itself (show/status/caps count for the aggregate)
  at: number; // when it started waiting (bounded by the join timeout)
  /**
   * Messages it addressed to the room while waiting (at most MAX_HELD_WHILE_WAITING), in order: sent as
   * the account's occupant once it is joined, bounced if the join fails (docs/architecture.md §6.1).
   */
  held?: Element[];
  /** Its explicit leave, sent after messages it is holding: carried out after them. */
  leaveAfter?: Element;
}

/**
 * Messages one waiting session may send to the room before its join completes. A client sends a
 * message right behind its join presence (bots, notification senders: go-sendxmpp), which a server
 * handles in stream order; a client that sends more before it is an occupant is told to wait.
 */
export const MAX_HELD_WHILE_WAITING = 32;

/** A session's XEP-0410 self-ping held while the account is being put back into the room. */
export interface HeldPing {
  session: string;
  stanza: Element;
}

/** A session joined to the room (it received its self-presence). */
export interface RoomSession {
  session: string;
  presence: Element | undefined; // its latest room presence (join or update)
  seq: number; // for "most recent wins" in the aggregate
}

/**
 *  - joining: the account's join was sent, the room has not yet sent our self-presence; sessions wait.
 *  - joined:  the account is (or, while `rejoining`, is being put back) in the room.
 */
export type RoomPhase = "joining" | "joined";

export interface RoomSnapshot {
  room: string;
  nick: string;
  state: RoomPhase;
  /** true when the account's occupant is confirmed in the room on the current upstream connection. */
  upstreamJoined: boolean;
  sessions: string[];
  waiting: string[];
  occupants: number; // other occupants (not counting the account)
  buffered: number;
  subject: string | undefined;
  idleSince: number | undefined;
  /** Why the account is in the room: an autojoin bookmark it follows, or only sessions' joins (docs/architecture.md §4.6). */
  source: "bookmark" | "client";
  /** Time of the last stanza from the room (the basis of <history since> after a proxy restart). */
  lastSeen: number | undefined;
}

/** Per (account, room) state, docs/architecture.md §5.2. Plain data; the decisions live in the handlers. */
export class RoomState {
  phase: RoomPhase = "joining";
  /** Join presence emitted on the current (or queued-for-next) upstream connection. */
  joinSent = false;
  /** The upstream dropped after we were joined; a join with <history since=…> is (to be) under way. */
  rejoining = false;
  /** Nicks re-announced during a rejoin (occupants not in it left while we were away). */
  rejoinSeen = new Set<string>();
  /** The first session's <x xmlns='muc'> (password, history): reused for rejoins. */
  joinX: Element;
  readonly occupants = new Map<string, Element>(); // nick → latest presence (other occupants)
  selfPresence: Element | undefined;
  /**
   * The room's own presence (from the bare room JID): ejabberd sends one with the room's entity caps
   * (XEP-0115) before the occupant list and again whenever the room's configuration changes. Not in
   * XEP-0045, but clients use it to notice config changes, so sessions get it like a direct client.
   */
  bareRoomPresence: Element | undefined;
  subject: Element | undefined;
  subjectReceived = false;
  /**
   * A rejoin is under way and its join sequence has not ended yet: the subject ends it (§7.2.16),
   * and may repeat the one sessions already have.
   */
  rejoinSubjectPending = false;
  /**
   * The room told the account it shuts down (332) while the account session stayed up: the room
   * is rejoined after a pause (or on the next accountSessionUp), never forgotten for that.
   */
  outSince: number | undefined;
  /** Joins of already-joined sessions (a resync) during a rejoin: replayed once it has ended. */
  readonly resyncs = new Map<string, JoinRequest>();
  /** Self-pings held until the rejoin ends (answered from the rebuilt state then). */
  readonly heldPings: HeldPing[] = [];
  readonly history: HistoryBuffer;
  /**
   * The account's first join asks the room for all the history the buffer can hold, whatever the
   * sessions asked (issue 10 §3). Until that history has ended (the subject, §7.2.16, or the first
   * live message, or the hold timeout on tick) it is only buffered; then each session here gets
   * the slice it asked for (§7.2.15), in the §7.2.3 order: self-presence, history, subject.
   * session → its <history/> request. undefined when no hold is under way.
   */
  historyHold: Map<string, HistoryRequest | undefined> | undefined;
  historyHoldSince: number | undefined;
  readonly sessions = new Map<string, RoomSession>();
  readonly waiting = new Map<string, JoinRequest>();
  idleSince: number | undefined;
  /**
   * The account follows an autojoin bookmark of this room (docs/architecture.md §4.6): it stays in the
   * room with no session (no idle leave, and the last session's leave is not the account's) until
   * the bookmark goes or its autojoin is switched off.
   */
  bookmarked = false;
  /**
   * When the account's join for this occupancy went on the wire. A rejoin never asks history
   * from before it: older messages belong to an earlier occupancy (e.g. before a kick) that
   * sessions already saw, or to history nobody asked for.
   */
  occupancySince: number | undefined;
  /** Time of the last stanza received from the room on a live connection (basis of since=). */
  lastSeen: number | undefined;
  /** Aggregate presence last sent upstream (aggregateKey form). */
  lastPresenceKey: string | undefined;
  /** The away presence sent when the last session went (awayAggregate); a rejoin repeats it. */
  awayPresence: Element | undefined;
  /** A session's nick change in flight (§7.6). */
  pendingNick: { nick: string; session: string | undefined; id: string | undefined } | undefined;
  /** Room-bound stanzas held while the account is out of the room (sent after the rejoin). */
  readonly outbox: Element[] = [];
  /** UTF-8 bytes of `outbox` (bounded with its length: MachineState.sendToRoom). */
  outboxBytes = 0;
  /** Recent outgoing message ids → sender, to route a bounced message error to its sender only. */
  readonly recentSent = new Map<string, string>();

  constructor(
    readonly jid: string,
    public nick: string,
    joinX: Element,
    historyLimit: number,
    historyBytes: number = Number.POSITIVE_INFINITY,
  ) {
    this.joinX = joinX;
    this.history = new HistoryBuffer(historyLimit, jid, historyBytes);
  }

  get occupantJid(): string {
    return withResource(this.jid, this.nick);
  }

  isJoined(session: string): boolean {
    return this.sessions.has(session);
  }

  /** Joined or waiting: the session has a stake in this room. */
  involves(session: string): boolean {
    return this.sessions.has(session) || this.waiting.has(session);
  }

  /**
   * Every session that should see room traffic now. Sessions waiting on the account's first join
   * get the join's presences as they come; sessions waiting on a rejoin get nothing until it has
   * ended, then the whole rebuilt state at once (replayFromState).
   */
  audience(): string[] {
    return this.phase === "joining" ? [...this.waiting.keys(), ...this.sessions.keys()] : [...this.sessions.keys()];
  }

  /**
   * The account was in the room and is being put back (upstream lost, or the room shut down): its
   * state is stale until the rejoin's join sequence ends with the subject. Nobody is answered from it.
   */
  get rebuilding(): boolean {
    return this.phase === "joined" && (this.rejoining || this.rejoinSubjectPending);
  }

  empty(): boolean {
    return this.sessions.size === 0 && this.waiting.size === 0;
  }

  rememberSent(id: string, session: string): void {
    this.recentSent.set(id, session);
    if (this.recentSent.size > 64) {
      const first = this.recentSent.keys().next();
      if (!first.done) this.recentSent.delete(first.value);
    }
  }

  snapshot(): RoomSnapshot {
    return {
      room: this.jid,
      nick: this.nick,
      state: this.phase,
      upstreamJoined: this.phase === "joined" && this.joinSent && !this.rejoining && this.outSince === undefined,
      sessions: [...this.sessions.keys()],
      waiting: [...this.waiting.keys()],
      occupants: this.occupants.size,
      buffered: this.history.size,
      subject: this.subject?.getChildText("subject") ?? undefined,
      idleSince: this.idleSince,
      source: this.bookmarked ? "bookmark" : "client",
      lastSeen: this.lastSeen,
    };
  }
}
