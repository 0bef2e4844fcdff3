/**
 * XEP-0198 resumption ids and what they name (docs/architecture.md §8.4). Decisions only: the
 * registry never reads a clock (time comes in as `now`, ms) and never arms a timer — the edge asks
 * `nextDeadline()` / `dueExpiries(now)` and drives expiry itself.
 *
 * An id is bound to the account that enabled SM. Looking an id up for another account gives exactly
 * the answer an unknown id gives (`{ kind: "failed" }`, no h): a token is no oracle for whether
 * another account's session exists.
 *
 * Lifecycle of an id: issue → live ⇄ hibernating (hibernate / wake) → expire (a tombstone keeping the
 * inbound 'h', so a late <resume/> gets <failed h/>, §5) or remove (clean close: no tombstone, as
 * Prosody's mod_smacks drops the token on pre-session-close — a client that closed its stream does
 * not resume it). Tombstones are bounded by count and age (sweep).
 *
 * Unlike mod_smacks, a tombstone is not consumed by the lookup that reads it: a client retrying the
 * same <resume/> gets the same answer until the tombstone ages out.
 */
import { randomBytes } from "node:crypto";

export interface ResumeRegistryOptions {
  /** Most tombstones kept; the oldest go first (default 10 000). */
  maxTombstones?: number;
  /** How long a tombstone answers with its h, in ms (default 1 h). */
  tombstoneMs?: number;
  /** Source of randomness (tests inject collisions); default node:crypto randomBytes. */
  random?: (bytes: number) => Buffer;
}

export type LookupResult<S> =
  | { kind: "live"; session: S; hibernating: boolean }
  | { kind: "failed"; h?: number };

interface SessionEntry<S> {
  account: string;
  session: S;
  /** Hibernation deadline (ms), when hibernating. */
  deadline?: number;
}

interface Tombstone {
  account: string;
  h: number;
  /** When it was laid (ms); undefined until the next sweep stamps it, when expire() had no `now`. */
  at: number | undefined;
}

/** 18 random bytes: 144 bits, 24 base64url characters (XEP-0198 §5: unguessable, opaque). */
const ID_BYTES = 18;
/** Draws before giving up on a random source that keeps repeating itself. */
const MAX_DRAWS = 16;

export class ResumeRegistry<S> {
  private readonly sessions = new Map<string, SessionEntry<S>>();
  /** In laying order (Map insertion order): the first is the oldest. */
  private readonly tombstones = new Map<string, Tombstone>();
  private readonly maxTombstones: number;
  private readonly tombstoneMs: number;
  private readonly random: (bytes: number) => Buffer;

  constructor(opts: ResumeRegistryOptions = {}) {
    this.maxTombstones = opts.maxTombstones ?? 10_000;
    this.tombstoneMs = opts.tombstoneMs ?? 3_600_000;
    this.random = opts.random ?? randomBytes;
    if (!(this.maxTombstones >= 0)) throw new RangeError("maxTombstones must be ≥ 0");
    if (!(this.tombstoneMs >= 0)) throw new RangeError("tombstoneMs must be ≥ 0");
  }

  /**
   * A new id for `session` of `account` (a normalised bare JID; compared exactly). Unguessable, and
   * never equal to an id this registry still knows (live, hibernating or tombstone); 144 random bits
   * make a repeat of a forgotten one practically impossible for the process lifetime.
   */
  issue(account: string, session: S): string {
    for (let attempt = 0; attempt < MAX_DRAWS; attempt++) {
      const id = this.random(ID_BYTES).toString("base64url");
      if (id === "" || this.sessions.has(id) || this.tombstones.has(id)) continue;
      this.sessions.set(id, { account, session });
      return id;
    }
    // Only a broken random source gets here (one repeat in 2^144 is already a miracle).
    throw new Error("ResumeRegistry: no fresh id after repeated draws; the random source is broken");
  }

  /** What <resume previd=id/> from `account` finds (XEP-0198 §5). */
  lookup(id: string, account: string): LookupResult<S> {
    const e = this.sessions.get(id);
    if (e !== undefined && e.account === account) return { kind: "live", session: e.session, hibernating: e.deadline !== undefined };
    const t = this.tombstones.get(id);
    if (t !== undefined && t.account === account) return { kind: "failed", h: t.h };
    return { kind: "failed" };
  }

  /** The connection of a resumable session dropped: it hibernates until `now + timeoutMs`. False for an unknown id. */
  hibernate(id: string, now: number, timeoutMs: number): boolean {
    const e = this.sessions.get(id);
    if (e === undefined) return false;
    e.deadline = now + timeoutMs;
    return true;
  }

  /** The session was resumed: no longer hibernating. False for an unknown id. */
  wake(id: string): boolean {
    const e = this.sessions.get(id);
    if (e === undefined) return false;
    delete e.deadline;
    return true;
  }

  /** Is `id` hibernating? */
  isHibernating(id: string): boolean {
    return this.sessions.get(id)?.deadline !== undefined;
  }

  /** The hibernation deadline of `id`, if hibernating. */
  deadline(id: string): number | undefined {
    return this.sessions.get(id)?.deadline;
  }

  /**
   * The session is gone without a clean close (hibernation timed out, queue overflow): the id
   * becomes a tombstone keeping `h` — what the proxy had handled from the client — for <failed h/>.
   * `now` dates the tombstone; without it the next sweep() does. False for an unknown id.
   */
  expire(id: string, h: number, now?: number): boolean {
    const e = this.sessions.get(id);
    if (e === undefined) return false;
    this.sessions.delete(id);
    this.tombstones.set(id, { account: e.account, h, at: now });
    this.trimTombstones();
    return true;
  }

  /** A clean close (</stream:stream>): the id is forgotten, no tombstone (as mod_smacks). */
  remove(id: string): boolean {
    return this.sessions.delete(id);
  }

  /** Ids whose hibernation deadline is at or before `now`: the edge expires each. */
  dueExpiries(now: number): string[] {
    const due: string[] = [];
    for (const [id, e] of this.sessions) if (e.deadline !== undefined && e.deadline <= now) due.push(id);
    return due;
  }

  /** The earliest hibernation deadline, to arm one timer (undefined: nothing hibernates). */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const e of this.sessions.values()) if (e.deadline !== undefined && (min === undefined || e.deadline < min)) min = e.deadline;
    return min;
  }

  /** Drops tombstones older than `tombstoneMs`; dates undated ones with `now`. */
  sweep(now: number): void {
    for (const [id, t] of this.tombstones) {
      if (t.at === undefined) t.at = now;
      else if (now - t.at >= this.tombstoneMs) this.tombstones.delete(id);
    }
  }

  /** Live and hibernating sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Hibernating sessions. */
  get hibernatingCount(): number {
    let n = 0;
    for (const e of this.sessions.values()) if (e.deadline !== undefined) n++;
    return n;
  }

  /** Tombstones held. */
  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  private trimTombstones(): void {
    while (this.tombstones.size > this.maxTombstones) {
      const oldest = this.tombstones.keys().next();
      if (oldest.done === true) break;
      this.tombstones.delete(oldest.value);
    }
  }
}
