import type { Element } from "ltx";
import { rawLocal, splitBare } from "../../core/jid.js";
import { isoStamp } from "../../core/muc/stanza.js";
import { NS_MUC } from "../../core/xml/ns.js";
import type { Action } from "../../core/muc/actions.js";
import type { RoomMachine } from "../../core/muc/room-machine.js";
import { BookmarkBook } from "../../core/bookmarks/book.js";
import type { Bookmark } from "../../core/bookmarks/bookmark.js";
import type { BookmarkDiff } from "../../core/bookmarks/diff.js";
import type { BookmarkChange } from "../../core/bookmarks/stanzas.js";
import type { Logger } from "../log.js";
import type { RoomMarkStore } from "../state/room-marks.js";
import { RoomMarkError } from "../state/room-marks.js";

/** How long a server's XEP-0402 `#compat` answer is trusted before a fetch asks disco#info again. */
export const COMPAT_RECHECK_MS = 3_600_000;

/** What the follower needs of its account (AccountHub). */
export interface BookmarkHost {
  readonly bare: string;
  readonly rooms: RoomMachine;
  execute(actions: Action[]): void;
  /** --max-rooms-per-account */
  readonly maxRooms: number | undefined;
}

/**
 * The account following its bookmarks (docs/architecture.md §4.6): fetches and changes in, the room
 * machine's bookmark joins and leaves out; and the per-room marks (last stanza seen) kept in the
 * RoomMarkStore, so that after a proxy restart the rejoin asks `<history since>` them. Everything
 * runs in order on one promise chain (the marks are read from disk once, before the first join).
 */
export class BookmarkFollower {
  private readonly book = new BookmarkBook();
  private loaded = false;
  private readonly marks: Promise<Map<string, number>>;
  /** The marks as last written (JSON of the sorted entries), so unchanged marks are not rewritten. */
  private written: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  private fetchSeq = 0;
  /** Per fetch under way: the changes seen since it went out. */
  private readonly sinceFetch = new Map<number, BookmarkChange[]>();
  /** The server's `#compat` from the last disco#info answered, and when (ms). */
  private compat: { value: boolean; at: number } | undefined;

  constructor(
    private readonly host: BookmarkHost,
    private readonly store: RoomMarkStore | undefined,
    private readonly log: Logger,
    /** A restart's rejoin asks history from this long before the mark (the room's clock is not ours). */
    private readonly sinceMarginMs = 5000,
  ) {
    this.marks = store
      ? store.load(host.bare).catch((err: unknown) => {
          const code = err instanceof RoomMarkError ? err.code : undefined;
          this.log.warn({ code, reason: (err as Error).message }, "room marks not read: bookmarked rooms are rejoined with the rooms' default history");
          return new Map<string, number>();
        })
      : Promise.resolve(new Map());
  }

  /**
   * A fetch goes out: changes seen from now on are kept for it (its answers may predate them).
   * Returns its token for `fetched`. At most 8 fetches are remembered (a login whose leg closed
   * before the answers came never completes).
   */
  fetchStarted(): number {
    const token = ++this.fetchSeq;
    this.sinceFetch.set(token, []);
    for (const k of this.sinceFetch.keys()) if (this.sinceFetch.size > 8) this.sinceFetch.delete(k);
    return token;
  }

  /**
   * The server's `#compat` if a fetch's disco#info told it less than COMPAT_RECHECK_MS ago: later fetches
   * then skip the disco#info (and, with compat, the XEP-0048 list). A server whose modules change is
   * asked again within that time.
   */
  knownCompat(now: number): boolean | undefined {
    return this.compat !== undefined && now - this.compat.at < COMPAT_RECHECK_MS ? this.compat.value : undefined;
  }

  /**
   * A fetch's answers (docs/architecture.md §4.6); undefined = that request failed (or was not asked).
   * `compatAnswered`: what its disco#info said, when it asked one and got a result.
   */
  fetched(token: number, pep: Bookmark[] | undefined, legacy: Bookmark[] | undefined, compat: boolean, compatAnswered?: boolean, now = Date.now()): Promise<void> {
    if (compatAnswered !== undefined) this.compat = { value: compatAnswered, at: now };
    return this.then(async () => {
      const marks = await this.marks;
      const since = this.sinceFetch.get(token) ?? [];
      this.sinceFetch.delete(token);
      const diff = this.book.loaded(pep, legacy, compat, since);
      this.loaded = true;
      this.log.info({ bookmarks: this.book.bookmarks.size, autojoin: diff.join.length, compat, compatAnswered, pepFailed: pep === undefined, legacyFailed: !compat && legacy === undefined }, "bookmarks fetched");
      this.apply(diff, marks);
    });
  }

  /** A change seen on a client leg (its publish, retract or XEP-0048 store; a PEP notification). */
  changed(change: BookmarkChange): Promise<void> {
    for (const list of this.sinceFetch.values()) list.push(change);
    return this.then(async () => {
      const marks = await this.marks;
      const diff = this.book.apply(change);
      if (diff.join.length + diff.leave.length > 0) this.log.info({ change: change.kind, join: diff.join.length, leave: diff.leave.length }, "bookmarks changed");
      this.apply(diff, marks);
    });
  }

  private apply(diff: BookmarkDiff, marks: Map<string, number>): void {
    const { host } = this;
    for (const room of diff.leave) host.execute(host.rooms.bookmarkLeave(room));
    const now = Date.now();
    for (const b of diff.join) {
      if (!host.rooms.knowsRoom(b.room) && host.maxRooms !== undefined && host.rooms.rooms().length >= host.maxRooms) {
        this.log.warn({ room: b.room, limit: host.maxRooms, code: "ROOM_LIMIT" }, "autojoin bookmark not joined: per-account room limit");
        continue;
      }
      const mark = marks.get(b.room);
      const since = mark === undefined ? undefined : Math.max(0, mark - this.sinceMarginMs);
      host.execute(host.rooms.bookmarkJoin(b.room, b.nick ?? rawLocal(host.bare), b.password, since, now));
    }
  }

  /**
   * A cluster member about to open the account session under a lease it has just acquired
   * (docs/architecture.md §8.7): another node may have served the account — and written newer marks —
   * since this node read them (a session here waited for the lease meanwhile, and its login already
   * applied the bookmarks with the marks of that time). Re-reads the marks, keeps the newer of each, and
   * moves the `<history since>` of the autojoin rooms' joins still `queued` for the account session
   * forward to them (never back). An unreadable store leaves everything as it was (logged).
   */
  refreshMarks(queued: readonly Element[]): Promise<void> {
    return this.then(async () => {
      if (!this.store) return;
      let fresh: Map<string, number>;
      try {
        fresh = await this.store.load(this.host.bare);
      } catch (err) {
        const code = err instanceof RoomMarkError ? err.code : undefined;
        this.log.warn({ code, reason: (err as Error).message }, "room marks not re-read at the lease: the rejoins keep the marks read before");
        return;
      }
      const marks = await this.marks;
      for (const [room, t] of fresh) if (t > (marks.get(room) ?? -1)) marks.set(room, t);
      for (const el of queued) {
        const room = splitBare(String(el.attrs.to ?? ""));
        const mark = room === undefined ? undefined : marks.get(room);
        if (mark === undefined || !this.book.bookmarks.get(room!)?.autojoin) continue;
        advanceJoinSince(el, Math.max(0, mark - this.sinceMarginMs));
      }
    });
  }

  /**
   * Writes the marks when they changed: for each autojoin bookmark, the last stanza seen from its
   * room while the account is in it, else the mark kept from before (a rejoin not done yet must not
   * lose it). Nothing is written before the bookmarks were fetched once.
   */
  save(): Promise<void> {
    return this.then(async () => {
      if (!this.store || !this.loaded) return;
      const before = await this.marks;
      const held = new Map(this.host.rooms.rooms().map((r) => [r.room, r]));
      const next = new Map<string, number>();
      for (const b of this.book.bookmarks.values()) {
        if (!b.autojoin) continue;
        const r = held.get(b.room);
        const seen = r && r.state === "joined" && r.upstreamJoined ? r.lastSeen : undefined;
        const t = seen ?? before.get(b.room);
        if (t !== undefined) next.set(b.room, t);
      }
      const key = JSON.stringify([...next].sort(([a], [b]) => (a < b ? -1 : 1)));
      if (key === this.written) return;
      try {
        await this.store.save(this.host.bare, next);
        this.written = key;
        before.clear();
        for (const [k, v] of next) before.set(k, v);
      } catch (err) {
        const code = err instanceof RoomMarkError ? err.code : undefined;
        this.log.warn({ code, reason: (err as Error).message }, "room marks not written");
      }
    });
  }

  private then(f: () => Promise<void>): Promise<void> {
    const p = this.chain.then(f).catch((err: unknown) => this.log.error({ err }, "bookmark handling failed"));
    this.chain = p;
    return p;
  }
}

/**
 * A MUC join presence (XEP-0045 §7.2) not yet sent: its `<history since>` moved to `sinceMs` when that
 * is later than what it asks now (no since: the room's default history, the earliest). Other stanzas
 * are left alone. True when it changed.
 */
export function advanceJoinSince(el: Element, sinceMs: number): boolean {
  if (!el.is("presence") || el.attrs.type !== undefined) return false;
  const history = el.getChild("x", NS_MUC)?.getChild("history");
  if (!history) return false;
  const cur = typeof history.attrs.since === "string" ? Date.parse(history.attrs.since) : Number.NaN;
  if (!Number.isNaN(cur) && cur >= sinceMs) return false;
  history.attrs.since = isoStamp(sinceMs);
  return true;
}
