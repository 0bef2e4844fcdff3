/**
 * Account leases in a cluster (docs/architecture.md §8.7): the bookkeeping of one held lease, pure.
 * Times are the node's own monotonic milliseconds (performance.now()), passed in; Redis keeps the
 * lease for `ttlMs` from when it handled our command, which is never earlier than when we sent it.
 * So a lease counts as ours until `sentAt + ttlMs − safetyMs` of the last successful acquire or renew,
 * measured from the moment the command was SENT: a node paused (SIGSTOP, a long GC, a frozen VM) past
 * that instant finds the lease lost by its own clock when it wakes, before it writes anything, even if
 * it never heard from Redis meanwhile. The safety margin covers clock-rate drift between the node and
 * Redis and the time from the check to the write reaching the server.
 */

export interface LeaseTiming {
  /** The lease's time to live in Redis (PX). */
  ttlMs: number;
  /** Renew this long after the last renewal was sent. */
  renewEveryMs: number;
  /** Subtracted from the deadline: the lease is given up locally this long before Redis lets it go. */
  safetyMs: number;
}

/** A renewal every third of the TTL (two may fail before the lease runs out), a fifth of it as margin (≥ 200 ms). */
export function leaseTiming(ttlMs: number): LeaseTiming {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000) throw new RangeError(`lease TTL must be at least 1000 ms, got ${ttlMs}`);
  return { ttlMs, renewEveryMs: Math.floor(ttlMs / 3), safetyMs: Math.max(200, Math.floor(ttlMs / 5)) };
}

export interface HeldLease {
  /** The fencing token Redis handed out (INCR): larger for every later owner of any account. */
  readonly token: number;
  /** The value stored under the lease key: `<node id>:<token>`; renewals and releases compare it. */
  readonly value: string;
  /** Local monotonic time after which the lease must be considered lost. */
  validUntil: number;
  /** When the last successful acquire or renew was sent. */
  lastSentAt: number;
  /** A renewal is in flight since this time (undefined: none). */
  renewingSince: number | undefined;
}

/** Redis granted the lease to a command sent at `sentAt`. */
export function granted(token: number, value: string, sentAt: number, t: LeaseTiming): HeldLease {
  return { token, value, validUntil: sentAt + t.ttlMs - t.safetyMs, lastSentAt: sentAt, renewingSince: undefined };
}

/** May the holder still act on the account at `now`? */
export function isValid(l: HeldLease, now: number): boolean {
  return now < l.validUntil;
}

/** Should a renewal be sent at `now`? Not while one is in flight, and never for a lease already lost. */
export function renewDue(l: HeldLease, now: number, t: LeaseTiming): boolean {
  return l.renewingSince === undefined && isValid(l, now) && now - l.lastSentAt >= t.renewEveryMs;
}

export type RenewOutcome =
  /** Redis extended it (the stored value was still ours). */
  | "extended"
  /** Redis answered and the key holds another value, or none: someone else owns it, or it expired. */
  | "taken"
  /** No answer (Redis unreachable, timeout): the lease is kept until its local deadline, then lost. */
  | "unanswered";

export type LeaseVerdict = { kind: "held" } | { kind: "lost"; why: "taken" | "expired" };

/**
 * The result of a renewal sent at `sentAt`, now known at `now`. An extension counts from when it was
 * sent; an unanswered renewal changes nothing (the next is due at once); the lease is lost when Redis
 * says so or when its local deadline has passed.
 */
export function renewed(l: HeldLease, sentAt: number, outcome: RenewOutcome, now: number, t: LeaseTiming): LeaseVerdict {
  l.renewingSince = undefined;
  if (outcome === "taken") return { kind: "lost", why: "taken" };
  if (outcome === "extended" && sentAt + t.ttlMs - t.safetyMs > l.validUntil) {
    l.validUntil = sentAt + t.ttlMs - t.safetyMs;
    l.lastSentAt = sentAt;
  }
  return isValid(l, now) ? { kind: "held" } : { kind: "lost", why: "expired" };
}

/** How long a node that found the lease held elsewhere waits before trying again: until it expires, bounded. */
export function retryAfter(remainingMs: number, t: LeaseTiming): number {
  if (!Number.isFinite(remainingMs) || remainingMs <= 0) return 100;
  return Math.min(remainingMs + 50, t.renewEveryMs);
}

/**
 * The resource every node binds for an account's account session (docs/architecture.md §8.7): the same
 * on every node, so that a new owner's bind makes the server end the previous owner's stream
 * (RFC 6120 §7.7.2.2, Prosody's and ejabberd's default: the old session gets <conflict/>).
 * `digest` is a hex hash of the lower-case bare JID; 12 hex digits keep it short and unguessable enough
 * not to collide with a client's resource by accident.
 */
export function clusterResource(prefix: string, digestHex: string): string {
  return `${prefix}${digestHex.slice(0, 12)}`;
}
