import { Element } from "ltx";
import { rawBare, rawLocal } from "../../core/jid.js";
import { RoomMachine, type RoomMachineOptions } from "../../core/muc/room-machine.js";
import { sessionXml, type Action } from "../../core/muc/actions.js";
import type { CarbonVerdict } from "../../core/muc/carbons.js";
import type { Logger } from "../log.js";
import type { UpstreamSecret, UpstreamTarget } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { AccountSession, AccountSessionClosed } from "./account-session.js";
import { answerOwnIq } from "./own-iq.js";
import { metrics } from "../metrics.js";
import { NS_MUC } from "../../core/xml/ns.js";
import { peekAttr } from "../../core/xml/peek.js";
import { errorReply } from "../../core/xml/errors.js";
import type { Bookmark } from "../../core/bookmarks/bookmark.js";
import type { BookmarkChange } from "../../core/bookmarks/stanzas.js";
import type { RoomMarkStore } from "../state/room-marks.js";
import { BookmarkFollower } from "./bookmarks.js";
import type { PushConfig } from "../config.js";
import { AccountPush } from "../push/account-push.js";
import type { ClusterGate } from "../cluster/gate.js";
import type { AccountLease } from "../cluster/leases.js";

/**
 * After a takeover (the previous owner never released the lease), how long the new account session
 * waits between its bind and its first room stanza, dropping what it receives meanwhile: the bind made
 * the server replace the old owner's session (same resource, §8.7), and ejabberd removes that session's
 * occupants asynchronously, sending each room's unavailable to the (same) full JID — a join sent at once
 * can reach the room before the old session's unavailable, which then removes the new occupant, and the
 * goodbyes would read as this session's removal (both seen in test/integration/cluster.test.ts).
 * Prosody replaces the old session synchronously, within the bind.
 */
const TAKEOVER_SETTLE_MS = 1000;

const DEFAULT_PUSH: PushConfig = { rooms: "mentions", intervalMs: 10_000, withBody: false, timeoutMs: 30_000 };

/** A downstream session, as the account sees it: where to write stanzas for it. */
export interface SessionLink {
  readonly jid: string;
  deliver(stanza: string): void;
  /** Several stanzas in a row for this session, in order (one write where the transport allows). */
  deliverAll?(stanzas: string[]): void;
}

export interface AccountHubOptions {
  target: UpstreamTarget;
  resourcePrefix: string;
  rooms: Partial<RoomMachineOptions>;
  log: Logger;
  /** Rooms the account may be in (joined or joining); a join beyond it is refused here. Default: no limit. */
  maxRooms?: number;
  /** XEP-0357 (docs/architecture.md §8.6); default: the config defaults. */
  push?: PushConfig;
  /** Reconnect backoff bounds for the account session. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** --bookmarks follow: the account follows its bookmarks, with per-room marks kept here (docs/architecture.md §4.6). */
  bookmarks?: { marks: RoomMarkStore | undefined };
  /** When the account session logs in and how long it lingers (docs/architecture.md §4.1). Default: at the first join, no linger. */
  accountSession?: AccountSessionPolicy;
  /** --cluster-redis: the account session needs the account's lease, and binds the cluster-wide resource (docs/architecture.md §8.7). */
  cluster?: ClusterGate;
}

/**
 * --account-session-start / --account-session-linger (docs/architecture.md §4.1). "login": the account
 * session logs in as soon as a session of the account is attached (bind), so a first join finds it
 * online, and stays `lingerMs` after the last session and room are gone. "join": only while the room
 * machine wants it (first join until closeAccountSession); `lingerMs` is not used.
 */
export interface AccountSessionPolicy {
  start: "login" | "join";
  lingerMs: number;
}

const JOIN_ONLY: AccountSessionPolicy = { start: "join", lingerMs: 0 };

/**
 * One account: its downstream sessions, its room machine (core/muc) and its account session.
 * Executes the machine's actions — the only place where core's decisions meet sockets.
 */
export class AccountHub {
  readonly rooms: RoomMachine;
  /** XEP-0357 registrations of the account's devices and the publishes for them (docs/architecture.md §8.6). */
  readonly push: AccountPush;
  private readonly sessions = new Map<string, SessionLink>();
  /** The account session, from the start of its connect until it is closed or lost. */
  private session: AccountSession | undefined;
  /**
   * Room stanzas emitted while the account session is not online (connecting, or reconnecting after
   * a loss): flushed once it is bound, dropped on a loss or close (core/muc/actions.ts). Bounded by
   * the machine, which counts what it emits meanwhile and refuses a session's stanza beyond
   * --max-account-outbox[-bytes] (ACCOUNT_OUTBOX_FULL, docs/architecture.md §7.3).
   */
  private readonly outbox: Element[] = [];
  private secret: UpstreamSecret | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private readonly log: Logger;
  /** Set while the machine wants an account session (first join until closeAccountSession). */
  private roomsWant = false;
  private readonly policy: AccountSessionPolicy;
  /** Running while the account session is kept warm with nothing using it (docs/architecture.md §4.1). */
  private lingerTimer: NodeJS.Timeout | undefined;
  /** shutdown() ran: nothing connects any more. */
  private ended = false;
  /** Room stanzas the server sent once to the account and the proxy delivered to N sessions. */
  stats = { fannedOut: 0, fromRoom: 0, toRoom: 0, reconnects: 0, joinsRefused: 0 };

  /** Set with --bookmarks follow (docs/architecture.md §4.6). */
  private readonly bookmarks: BookmarkFollower | undefined;
  /** Cluster member: the account's lease while this node owns it (docs/architecture.md §8.7). */
  private lease: AccountLease | undefined;
  private acquiring = false;
  /** The lease was taken over from a node that did not release it: settle after the bind (TAKEOVER_SETTLE_MS). */
  private takeover = false;
  /** Between such a bind and the end of the settle time: room stanzas wait in the outbox. */
  private settling = false;
  /** The node that owned the account at the last refused acquire (logged once per owner). */
  private ownerElsewhere: string | undefined;

  constructor(readonly bare: string, private readonly opts: AccountHubOptions) {
    this.rooms = new RoomMachine(bare, opts.rooms);
    this.log = opts.log.child({ account: bare });
    this.backoff = opts.backoffMinMs ?? 1000;
    this.policy = opts.accountSession ?? JOIN_ONLY;
    this.push = new AccountPush(bare, opts.push ?? DEFAULT_PUSH, {
      accountSession: () => {
        const s = this.session;
        return s?.online && this.mayWrite() ? (xml) => s.send(xml) : undefined;
      },
    }, this.log);
    if (opts.bookmarks) {
      const host = { bare, rooms: this.rooms, execute: (a: Action[]) => this.execute(a), maxRooms: opts.maxRooms };
      this.bookmarks = new BookmarkFollower(host, opts.bookmarks.marks, this.log, opts.rooms.rejoinSinceMarginMs);
    }
  }

  /** Does the account follow its bookmarks (--bookmarks follow)? Sessions then fetch them at login and report changes. */
  get followsBookmarks(): boolean {
    return this.bookmarks !== undefined;
  }

  /** The answers of a bookmark fetch made at a client login (docs/architecture.md §4.6). */
  bookmarksFetched(token: number, pep: Bookmark[] | undefined, legacy: Bookmark[] | undefined, compat: boolean, compatAnswered?: boolean): Promise<void> {
    return this.bookmarks?.fetched(token, pep, legacy, compat, compatAnswered) ?? Promise.resolve();
  }

  /** The server's XEP-0402 `#compat` as a recent fetch's disco#info said; undefined when a fetch must ask. */
  bookmarkCompat(now = Date.now()): boolean | undefined {
    return this.bookmarks?.knownCompat(now);
  }

  /** A session sends a bookmark fetch: returns the token its answers go back with. */
  bookmarkFetchStarted(): number {
    return this.bookmarks?.fetchStarted() ?? 0;
  }

  /** A bookmark change seen on a client leg. */
  bookmarkChanged(change: BookmarkChange): Promise<void> {
    return this.bookmarks?.changed(change) ?? Promise.resolve();
  }

  /**
   * Writes the room marks if they changed (every tick, and at shutdown). A cluster member only while it
   * holds the account's lease: a node whose session waits for the lease must not overwrite the owner's
   * newer marks with the ones it read at that session's login (docs/architecture.md §8.7).
   */
  saveMarks(): Promise<void> {
    if (this.opts.cluster && !this.lease?.valid()) return Promise.resolve();
    return this.bookmarks?.save() ?? Promise.resolve();
  }

  /** Fresh credentials from a successful login (SCRAM's SaltedPassword, not the password: docs/architecture.md §3.3). */
  setSecret(secret: UpstreamSecret): void {
    this.secret = secret;
    if (this.wanted && !this.session) this.scheduleConnect(0);
  }

  /**
   * Something uses the account session now: the machine's rooms, or (--account-session-start login)
   * an attached session of the account. Sessions relayed without the account layer (mucPassThrough)
   * are never attached, so they never start one.
   */
  private get inUse(): boolean {
    return this.roomsWant || (this.policy.start === "login" && this.sessions.size > 0);
  }

  /** In use, or kept warm for the linger. */
  private get wanted(): boolean {
    return this.inUse || this.lingerTimer !== undefined;
  }

  /**
   * After anything that changes `inUse` (attach, detach, the machine's open/close): connect when
   * needed and not under way (a reconnect waiting for its backoff keeps its delay); when nothing uses
   * the session any more, keep it for the linger (login mode) or close it now.
   */
  private reconsider(): void {
    if (this.ended) return;
    if (this.inUse) {
      this.stopLinger();
      if (!this.session && this.reconnectTimer === undefined && this.secret !== undefined) this.scheduleConnect(0);
      return;
    }
    if (this.lingerTimer !== undefined) return;
    const alive = this.session !== undefined || this.reconnectTimer !== undefined;
    if (!alive) return;
    if (this.policy.start === "login" && this.policy.lingerMs > 0) {
      this.log.debug({ lingerMs: this.policy.lingerMs }, "account session kept warm: nothing uses it");
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        if (!this.inUse) this.closeSession("account session closed: linger over");
      }, this.policy.lingerMs);
      this.lingerTimer.unref();
      return;
    }
    this.closeSession("account session closed: nothing uses it");
  }

  private stopLinger(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  /** Ends the account session (or its pending connect) for good; `msg` is logged at info. */
  private closeSession(msg: string): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.outbox.length = 0;
    const had = this.session !== undefined;
    // a cluster member gives the lease back, so another node may take the account at once (§8.7)
    void this.closeAndRelease();
    if (had) this.log.info(msg);
  }

  /**
   * A session bound `link.jid`. Links belong to the session object: the machine addresses
   * sessions by full JID, so there is one live link per JID. A JID still held by another link
   * means a new stream took the resource over (RFC 6120 §7.7.2.2: the server ends the old
   * stream with <conflict/>, but that stream's close reaches us whenever it does): the old
   * link's rooms end first, as a replacement, then the new link is stored.
   */
  attach(link: SessionLink): void {
    const old = this.sessions.get(link.jid);
    if (old && old !== link) {
      this.sessions.delete(link.jid);
      this.log.info({ jid: link.jid }, "session replaced by a new stream with the same resource");
      this.execute(this.rooms.sessionReplaced(link.jid, Date.now()));
    }
    this.sessions.set(link.jid, link);
    this.push.online(link.jid);
    this.reconsider();
  }

  /** The session of `link` is gone. A link replaced meanwhile touches nothing of its successor. */
  detach(link: SessionLink): void {
    if (this.sessions.get(link.jid) !== link) return;
    this.sessions.delete(link.jid);
    this.push.gone(link.jid);
    this.execute(this.rooms.sessionGone(link.jid, Date.now()));
    this.reconsider();
  }

  /**
   * Room PMs `link`'s client never acknowledged; its session ends without resumption (XEP-0198
   * expiry, docs/architecture.md §8.4). Each is left to another joined session of the account (it
   * has its own copy) or held for the next session back in the room (issue 10 §4). Call before
   * `detach`. Returns how many were not PMs of a room of this account (nothing could be done).
   */
  undeliveredPms(link: SessionLink, stanzas: readonly Element[]): number {
    if (this.sessions.get(link.jid) !== link) return stanzas.length;
    let missed = 0;
    const now = Date.now();
    for (const el of stanzas) {
      const r = this.rooms.undeliveredPm(link.jid, el, now);
      if (r.handled) this.execute(r.actions);
      else missed++;
    }
    return missed;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get accountSessionJid(): string | undefined {
    return this.session?.jid;
  }

  /**
   * Where the account session is, for status and metrics: `up` online and bound (with or without rooms:
   * it may have started at a login or be lingering, docs/architecture.md §4.1), `opening` connecting,
   * waiting to reconnect, or wanted by rooms and waiting for fresh credentials, `down` not wanted.
   */
  get accountSessionState(): "up" | "opening" | "down" {
    if (this.session?.online) return "up";
    return this.session !== undefined || this.reconnectTimer !== undefined || this.roomsWant ? "opening" : "down";
  }

  /** True when nothing is left: no sessions, no rooms, no account session. The registry then forgets it (and its secret). */
  get idle(): boolean {
    return this.sessions.size === 0 && !this.rooms.hasState() && !this.wanted;
  }

  /**
   * A stanza from a downstream session that may concern a room. Returns true when the machine
   * took it; false means "send the original bytes through the session's own stream".
   */
  fromClient(link: SessionLink, el: Element): boolean {
    // a replaced stream (its server leg got <conflict/>) speaks for nobody any more: dropped
    if (this.sessions.get(link.jid) !== link) return true;
    if (this.refuseJoinOverLimit(link, el)) return true;
    this.mayWrite(); // a lease lost while this node was paused is noticed before the machine acts (§8.7)
    const actions = this.rooms.fromSession(link.jid, el, Date.now());
    let pass = false;
    for (const a of actions) if (a.kind === "passthrough") pass = true;
    this.execute(actions);
    return !pass;
  }

  /**
   * Per-account room limit (--max-rooms-per-account): a MUC join (XEP-0045 §7.2) to a room the
   * account is not in yet, while it already has `maxRooms` rooms, is answered here with a
   * policy-violation presence error (RFC 6120 §8.3.3.12) and never reaches the server.
   */
  private refuseJoinOverLimit(link: SessionLink, el: Element): boolean {
    const max = this.opts.maxRooms;
    if (max === undefined || el.name !== "presence" || el.attrs.type !== undefined) return false;
    if (!el.getChild("x", NS_MUC)) return false;
    const to = typeof el.attrs.to === "string" ? el.attrs.to : "";
    const room = rawBare(to);
    if (room === to || room === "" || !to.includes("@")) return false;
    if (this.rooms.knowsRoom(room)) return false;
    if (this.rooms.rooms().length < max) return false;
    this.stats.joinsRefused++;
    this.log.info({ room, limit: max, code: "ROOM_LIMIT" }, "join refused: per-account room limit");
    const err = errorReply(el, { from: to, to: link.jid, type: "cancel", condition: "policy-violation",
      text: `this account is already in ${max} rooms, the limit of this proxy` });
    err.c("x", { xmlns: NS_MUC });
    link.deliver(err.toString());
    return true;
  }

  /**
   * A XEP-0280 carbon the server sent on `jid`'s own upstream leg: the sending session gets no
   * copy of a PM the account session sent for it; other sessions see it as sent by that session.
   */
  carbonOnLeg(jid: string, el: Element): CarbonVerdict {
    const v = this.rooms.sentCarbon(jid, el);
    if (v.kind !== "pass") this.log.trace({ session: jid, verdict: v.kind }, "carbon of a PM sent through the account session");
    return v;
  }

  knowsRoom(bareJid: string): boolean {
    return this.rooms.knowsRoom(bareJid);
  }

  tick(now: number): void {
    this.mayWrite();
    this.execute(this.rooms.tick(now));
    void this.saveMarks();
  }

  execute(actions: Action[]): void {
    // Consecutive stanzas for the same session (a join answered from state: occupants, self,
    // history, subject) are handed over together, so they can go out in one write.
    let runLink: SessionLink | undefined;
    let run: string[] = [];
    const flush = (): void => {
      const link = runLink;
      if (!link) return;
      const xs = run;
      runLink = undefined;
      run = [];
      if (xs.length === 1 || !link.deliverAll) for (const x of xs) link.deliver(x);
      else link.deliverAll(xs);
    };
    for (const a of actions) {
      if (a.kind !== "toSession" && runLink) flush();
      switch (a.kind) {
        case "toSession": {
          const link = this.sessions.get(a.session);
          if (link) {
            if (link !== runLink) flush();
            runLink = link;
            run.push(sessionXml(a));
            this.stats.fannedOut++;
            metrics.fanOut();
          }
          break;
        }
        case "toRoomUpstream":
          this.stats.toRoom++;
          if (!this.session?.online || this.settling) this.outbox.push(a.stanza);
          // last line of fencing (§8.7): never written without a valid lease; the machine re-sends joins on the next up
          else if (this.mayWrite()) this.session.send(a.stanza);
          break;
        case "openAccountSession":
          this.roomsWant = true;
          // Already online (started at login, or lingering): the machine is told at once, before the
          // join that follows this action is executed, so the join goes straight out (actions.ts).
          if (this.session?.online) this.accountSessionUp(this.session, true);
          else this.reconsider();
          break;
        case "closeAccountSession":
          this.roomsWant = false;
          // what was queued for the rooms goes with them (the machine counted it out: actions.ts)
          this.outbox.length = 0;
          this.push.noRooms();
          if (this.inUse) this.log.info("account session has no rooms left: kept for the account's sessions");
          else if (this.policy.start === "login" && this.policy.lingerMs > 0) this.reconsider();
          else this.closeSession("account session closed: no rooms left");
          break;
        case "roomLeft":
          if (a.heldPmsLost !== undefined) {
            // the account is out of the room: the senders of these PMs could not be told (issue 10 §4)
            this.log.warn({ room: a.room, reason: a.reason, lost: a.heldPmsLost, code: "HELD_PMS_LOST" }, "held private messages lost: the account was removed from the room");
            metrics.refused("HELD_PMS_LOST", a.heldPmsLost);
          }
          this.log.info({ room: a.room, reason: a.reason }, "account leaves room");
          break;
        case "stanzaRefused":
          this.log.info({ room: a.room, code: a.code }, "session stanza refused: bound reached (resource-constraint)");
          metrics.refused(a.code);
          break;
        case "heldPmRefused":
          this.log.info({ room: a.room, code: "HELD_PMS_FULL" }, "private message refused: held-PM bound full (sender gets resource-constraint)");
          metrics.refused("HELD_PMS_FULL");
          break;
        case "passthrough":
          break;
      }
    }
    flush();
  }

  private scheduleConnect(delayMs: number): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delayMs);
    this.reconnectTimer.unref();
  }

  private async connect(): Promise<void> {
    if (this.session || !this.wanted || this.ended) return;
    if (this.opts.cluster && !(await this.holdLease())) return;
    if (this.session || !this.wanted || this.ended) return;
    // another node may have served the account and moved its room marks on since they were read here (§8.7)
    if (this.opts.cluster && this.bookmarks) {
      await this.bookmarks.refreshMarks(this.outbox);
      if (this.session || !this.wanted || this.ended) return;
    }
    // after a takeover, what reaches the new session before the settle time is over was meant for the old one
    this.settling = this.takeover;
    this.takeover = false;
    const s = new AccountSession(this.opts.target, rawLocal(this.bare), () => this.secret, this.opts.resourcePrefix, this.log, {
      up: (jid) => this.onUp(s, jid),
      stanza: (el) => this.onRoomStanza(el),
      bytes: (name, bytes) => this.onRoomBytes(name, bytes),
      down: (reason) => this.onDown(s, reason),
    }, this.opts.cluster?.resource(this.bare));
    this.session = s;
    const used = this.secret;
    try {
      await s.open();
      this.backoff = this.opts.backoffMinMs ?? 1000;
    } catch (err) {
      // closed while connecting (closeAccountSession, shutdown): a later join has its own session
      if (this.session !== s || err instanceof AccountSessionClosed) return void this.log.debug("account session connect abandoned: closed meanwhile");
      this.session = undefined;
      const ue = err instanceof UpstreamError ? err : undefined;
      this.log.warn({ code: ue?.code, reason: (err as Error).message, retryMs: this.backoff }, "account session could not connect");
      metrics.upstreamFailed("account", ue?.code);
      if (!this.wanted) return;
      // Wrong credentials do not get better by retrying: the next client login brings fresh ones
      // (setSecret). One that came while this attempt ran is tried at once.
      if (ue?.code !== "UPSTREAM_AUTH") this.retry();
      else if (this.secret !== used) this.scheduleConnect(0);
    }
  }

  private retry(): void {
    // exponential backoff with ±20 % jitter, so accounts do not reconnect in lock-step after an outage
    const jitter = 0.8 + Math.random() * 0.4;
    this.scheduleConnect(Math.round(this.backoff * jitter));
    this.backoff = Math.min(this.backoff * 2, this.opts.backoffMaxMs ?? 60_000);
  }

  private onUp(s: AccountSession, jid: string): void {
    if (this.session !== s || !this.mayWrite()) return;
    if (this.settling) {
      this.log.info({ ms: TAKEOVER_SETTLE_MS }, "cluster: account taken over: waiting for the server to remove the previous owner's session");
      const t = setTimeout(() => {
        this.settling = false;
        this.onUp(s, jid);
      }, TAKEOVER_SETTLE_MS);
      t.unref();
      return;
    }
    this.rooms.setAccountSessionJid(jid);
    // Up before any room wants it (started at login): the machine hears of it at its first join.
    if (this.roomsWant) this.accountSessionUp(s);
  }

  /**
   * The machine's rooms get the online account session: what was queued goes out, then the (re)joins.
   * `sameStream`: it was online before the rooms wanted it (the echoes of earlier leaves may still come).
   */
  private accountSessionUp(s: AccountSession, sameStream = false): void {
    for (const el of this.outbox.splice(0)) s.send(el);
    this.execute(this.rooms.accountSessionUp(Date.now(), sameStream));
  }

  private onDown(s: AccountSession, reason: string): void {
    if (this.session !== s) return;
    this.session = undefined;
    this.settling = false;
    this.outbox.length = 0;
    this.stats.reconnects++;
    this.execute(this.rooms.accountSessionDown(Date.now()));
    if (this.rooms.hasState()) this.roomsWant = true;
    // lingering only: nothing needs it back
    if (!this.inUse) return this.stopLinger();
    this.log.info({ reason, retryMs: this.backoff }, "account session will reconnect");
    this.retry();
  }

  /**
   * The fast path (docs/architecture.md §2.2): a live groupchat message is routed from its bytes when
   * the machine can decide without the element. Not while a device sleeps: push looks at the element.
   */
  private onRoomBytes(name: string, bytes: Buffer): boolean {
    // settling after a takeover (§8.7): the element path drops what was meant for the previous owner
    if (name !== "message" || this.push.wantsRoomStanzas || this.settling) return false;
    const actions = this.rooms.fromRoomBytes(bytes, Date.now());
    if (!actions) return false;
    this.stats.fromRoom++;
    metrics.roomStanza();
    if (this.log.isLevelEnabled("trace")) this.log.trace({ kind: name, type: "groupchat", id: peekAttr(bytes, "id"), fast: true }, "room stanza");
    this.execute(actions);
    return true;
  }

  private onRoomStanza(el: Element): void {
    if (this.settling) {
      // the same full JID as the previous owner's session: its rooms' goodbyes (ejabberd sends the
      // removed occupant's unavailable to the real JID, now ours) concern nothing this session sent
      this.log.debug({ kind: el.name, type: el.attrs.type, from: el.attrs.from }, "cluster: stanza for the previous owner's session dropped");
      return;
    }
    // the answers to the proxy's own publishes (XEP-0357 §7) concern nobody else
    if (el.name === "iq" && this.push.onAnswer(el)) return;
    if (this.rooms.handles(el)) {
      this.push.fromRoom(el, this.rooms);
      this.stats.fromRoom++;
      metrics.roomStanza();
      this.log.trace({ kind: el.name, type: el.attrs.type, id: el.attrs.id }, "room stanza");
      this.execute(this.rooms.fromRoom(el, Date.now()));
      return;
    }
    const answer = answerOwnIq(el);
    if (answer && this.mayWrite()) this.session?.send(answer);
    else this.log.debug({ kind: el.name, type: el.attrs.type, id: el.attrs.id }, "account session ignored a stanza");
  }

  /**
   * Proxy shutdown (or nothing left): close the account session; the server removes its occupants
   * (docs/architecture.md §4.5). Resolves when its socket is closed.
   */
  shutdown(): Promise<void> {
    // the marks first, while the rooms are still known (docs/architecture.md §4.6)
    const marks = this.saveMarks();
    this.roomsWant = false;
    this.ended = true;
    this.stopLinger();
    this.push.close();
    clearTimeout(this.reconnectTimer);
    const done = this.closeAndRelease();
    return Promise.all([marks, done]).then(() => undefined);
  }

  /** Closes the account session; a cluster member then gives the lease back, so another node may take the account at once. */
  private closeAndRelease(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    this.settling = false;
    const closed = s?.close() ?? Promise.resolve();
    const c = this.opts.cluster;
    if (!c || !this.lease) return closed;
    this.lease = undefined;
    return closed.then(() => c.release(this.bare));
  }

  /**
   * Cluster member (docs/architecture.md §8.7): the account's lease for this node, acquired or confirmed
   * with Redis. False: another node owns the account, or Redis did not answer; a retry is scheduled.
   */
  private async holdLease(): Promise<boolean> {
    const c = this.opts.cluster!;
    if (this.acquiring) return false; // the connect in flight goes on once it has the answer
    this.acquiring = true;
    let r;
    try {
      r = await c.acquire(this.bare, (why) => this.leaseLost(why));
    } finally {
      this.acquiring = false;
    }
    if (r.kind === "held") {
      this.ownerElsewhere = undefined;
      this.takeover = r.takeover;
      if (!this.wanted) {
        void c.release(this.bare);
        return false;
      }
      this.lease = r.lease;
      return true;
    }
    this.lease = undefined;
    if (r.kind === "elsewhere" && r.owner !== this.ownerElsewhere) {
      this.ownerElsewhere = r.owner;
      this.log.info({ owner: r.owner, retryMs: r.retryMs, code: "LEASE_ELSEWHERE" }, "cluster: account owned by another node: no account session here");
    } else if (r.kind === "unavailable") {
      this.log.warn({ reason: r.reason, retryMs: r.retryMs, code: "LEASE_UNAVAILABLE" }, "cluster: account lease unknown (Redis did not answer): account session waits");
    }
    if (this.wanted) this.scheduleConnect(r.retryMs);
    return false;
  }

  /**
   * May the account session write now? Always, outside a cluster. A cluster member needs a valid lease:
   * one whose local deadline passed (the process was paused, Redis unreachable) is lost here, before
   * anything is written — the account session is closed, sessions see no leave, and a new owner is
   * found by the next connect (docs/architecture.md §8.7).
   */
  private mayWrite(): boolean {
    const c = this.opts.cluster;
    if (!c) return true;
    const l = this.lease;
    if (l?.valid()) return true;
    if (l) {
      c.forget(this.bare, l);
      this.log.warn({ token: l.token, code: "LEASE_LOST" }, "cluster: account lease expired before a write: account session closed");
      this.leaseLost("expired");
    }
    return false;
  }

  /** The lease is gone (taken over, or expired): stop acting on the account at once. */
  private leaseLost(why: string): void {
    this.lease = undefined;
    metrics.refused("LEASE_LOST");
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    this.settling = false;
    this.outbox.length = 0;
    void s.close();
    this.log.info({ why }, "cluster: account session closed: lease lost");
    this.execute(this.rooms.accountSessionDown(Date.now()));
    if (this.rooms.hasState()) this.roomsWant = true;
    if (this.wanted) this.scheduleConnect(this.opts.backoffMinMs ?? 1000);
  }
}
