/**
 * The account leases this node holds (docs/architecture.md §8.7): acquiring, renewing on a timer,
 * noticing loss, releasing. The bookkeeping rules are core/cluster/lease.ts; Redis is behind
 * LeaseBackend (proxy/cluster/redis.ts). Time is the monotonic clock (performance.now()), never the
 * wall clock, so that a stopped process finds its leases lost when it wakes.
 */
import { performance } from "node:perf_hooks";
import { granted, isValid, leaseTiming, renewDue, renewed, retryAfter, type HeldLease, type LeaseTiming } from "../../core/cluster/lease.js";
import type { Logger } from "../log.js";
import type { LeaseBackend, NodeInfo } from "./redis.js";
import type { ClientAddress } from "../../core/cluster/redirect.js";

/** One held lease, as the account layer sees it. */
export interface AccountLease {
  readonly token: number;
  /** May this node act on the account now? False once the local deadline passed or the lease was lost. */
  valid(): boolean;
}

export type AcquireResult =
  /**
   * `takeover`: the previous owner never released the account (it died, was paused or cut off): its
   * upstream session may still be at the server, to be replaced by this node's bind (§8.7).
   */
  | { kind: "held"; lease: AccountLease; takeover: boolean }
  /** Another node owns the account; try again in `retryMs` (its lease may expire). */
  | { kind: "elsewhere"; owner: string; retryMs: number }
  /** Redis did not answer: nothing may be decided; try again in `retryMs`. */
  | { kind: "unavailable"; reason: string; retryMs: number };

export interface LeaseKeeperOptions {
  nodeId: string;
  advertise?: string;
  ttlMs: number;
  log: Logger;
  /** Monotonic milliseconds; tests pass their own. */
  now?: () => number;
  /**
   * Is the account still in use here (sessions, rooms)? A lease claimed at a login (claim()) whose
   * account is not in use for CLAIM_GRACE_MS is released (the login failed, the client left).
   */
  inUse?: (account: string) => boolean;
}

/** How long a claimed lease may go unused before it is released. */
export const CLAIM_GRACE_MS = 30_000;

interface Entry {
  /** Since when the account has not been in use here (undefined: in use). */
  unusedSince?: number | undefined;
  lease: HeldLease;
  handle: AccountLease;
  onLost: (why: string) => void;
}

export class LeaseKeeper {
  readonly timing: LeaseTiming;
  private readonly held = new Map<string, Entry>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private redisUp = true;
  private lastHeartbeat = -Infinity;
  /** The node left the cluster's list of live nodes (stopping): no more heartbeats; leases still renewed. */
  private withdrawn = false;
  /** --cluster-client-address with the ports bound, once the listeners are up; published with the heartbeat. */
  private clientAddress: ClientAddress | undefined;
  /** The live nodes as last read from Redis (refreshed with each heartbeat), for status and metrics. */
  knownNodes: NodeInfo[] = [];
  /** For metrics and status. */
  readonly stats = { acquired: 0, lost: 0, released: 0, refused: 0, redisErrors: 0 };

  constructor(private readonly backend: LeaseBackend, private readonly opts: LeaseKeeperOptions) {
    this.timing = leaseTiming(opts.ttlMs);
    this.now = opts.now ?? (() => performance.now());
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  get redisReachable(): boolean {
    return this.redisUp;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Accounts whose lease this node holds. */
  accounts(): string[] {
    return [...this.held.keys()];
  }

  /** Starts renewing and the node heartbeat; one timer for all leases. */
  start(): void {
    const every = Math.max(100, Math.floor(this.timing.renewEveryMs / 4));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    void this.tick();
  }

  /**
   * The lease of `account` for this node. A lease already held is confirmed with Redis first
   * (compare-and-extend), so a node that was fenced off by the server (its stream replaced) learns
   * whether it is still the owner before connecting again. `onLost` is called once when the lease
   * is lost afterwards (taken over, or expired without a renewal).
   */
  async acquire(account: string, onLost: (why: string) => void): Promise<AcquireResult> {
    const mine = this.held.get(account);
    if (mine) {
      const v = await this.renewOne(account, mine);
      if (v === "held") {
        mine.onLost = onLost;
        return { kind: "held", lease: mine.handle, takeover: false };
      }
      if (v === "unanswered") return { kind: "unavailable", reason: "Redis did not answer", retryMs: 1000 };
    }
    const sentAt = this.now();
    let answer;
    try {
      answer = await this.backend.acquire(account, this.opts.nodeId, this.timing.ttlMs);
      this.reachable(true);
    } catch (err) {
      this.reachable(false, err);
      return { kind: "unavailable", reason: (err as Error).message, retryMs: 1000 };
    }
    if (answer.kind === "held") {
      this.stats.refused++;
      const owner = answer.value.slice(0, answer.value.lastIndexOf(":"));
      return { kind: "elsewhere", owner, retryMs: retryAfter(answer.remainingMs, this.timing) };
    }
    const lease = granted(answer.token, answer.value, sentAt, this.timing);
    const entry: Entry = {
      lease,
      onLost,
      handle: { token: answer.token, valid: () => this.held.get(account) === entry && isValid(lease, this.now()) },
    };
    this.held.set(account, entry);
    this.stats.acquired++;
    const previous = answer.previous === undefined ? undefined : answer.previous.slice(0, answer.previous.lastIndexOf(":"));
    this.opts.log.info({ account, token: answer.token, ...(previous !== undefined ? { previous } : {}), code: "LEASE_ACQUIRED" },
      previous !== undefined ? "cluster: account lease acquired: taken over from a node that did not release it" : "cluster: account lease acquired");
    return { kind: "held", lease: entry.handle, takeover: previous !== undefined };
  }

  /**
   * At a login on a node with forwarding: take the account's lease now if it is free, so that the
   * account's later sessions on other nodes are forwarded here rather than served where they land.
   * Returns the owner to forward to when another node won, undefined otherwise (claimed, or unknown).
   */
  async claim(account: string): Promise<NodeInfo | undefined> {
    const r = await this.acquire(account, () => undefined);
    if (r.kind !== "elsewhere") return undefined;
    return this.ownerElsewhere(account);
  }

  /** Gives the lease back (compare-and-delete), so another node may take the account at once. */
  async release(account: string): Promise<void> {
    const e = this.held.get(account);
    if (!e) return;
    this.held.delete(account);
    this.stats.released++;
    try {
      await this.backend.release(account, e.lease.value);
      this.opts.log.debug({ account }, "cluster: account lease released");
    } catch (err) {
      // it expires by itself within the TTL
      this.reachable(false, err);
    }
  }

  /** Releases every lease (SIGTERM: the accounts go to other nodes at once) and stops the timer. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.accounts().map((a) => this.release(a)));
    await this.backend.leave(this.opts.nodeId).catch(() => undefined);
  }

  /**
   * SIGTERM: removes this node's heartbeat at once, so that no other node sends clients or forwards
   * sessions here any more, while the leases are kept (and renewed) until their accounts are closed.
   */
  async withdraw(): Promise<void> {
    this.withdrawn = true;
    await this.backend.leave(this.opts.nodeId).catch(() => undefined);
  }

  /** Publishes where clients reach this node (at once: a heartbeat now). */
  publishClientAddress(a: ClientAddress): void {
    this.clientAddress = a;
    this.lastHeartbeat = -Infinity;
    if (this.timer !== undefined) void this.tick();
  }

  /** The live nodes, from their heartbeats (status). */
  nodes(): Promise<NodeInfo[]> {
    return this.backend.nodes();
  }

  /** Does this node hold a valid lease of `account` right now? (A forwarded session is accepted only then.) */
  holds(account: string): boolean {
    return this.held.get(account)?.handle.valid() === true;
  }

  /**
   * The live node that owns `account`, when it is another one: its id and advertised address (from its
   * heartbeat). Undefined when the account is free, ours, or its owner is not reachable as far as
   * Redis knows. Rejects when Redis does not answer.
   */
  async ownerElsewhere(account: string): Promise<NodeInfo | undefined> {
    if (this.holds(account)) return undefined;
    const v = await this.backend.holder(account);
    if (v === undefined) return undefined;
    const id = v.slice(0, v.lastIndexOf(":"));
    if (id === this.opts.nodeId) return undefined;
    let node = this.knownNodes.find((n) => n.id === id);
    if (!node) {
      this.knownNodes = await this.backend.nodes();
      node = this.knownNodes.find((n) => n.id === id);
    }
    return node?.advertise !== undefined ? node : undefined;
  }

  /** Marks a lease found invalid by its holder (a write refused) as lost: `onLost` is not called for it. */
  forget(account: string, handle: AccountLease): void {
    const e = this.held.get(account);
    if (e?.handle !== handle) return;
    this.held.delete(account);
    this.stats.lost++;
  }

  private async tick(): Promise<void> {
    const now = this.now();
    for (const [account, e] of this.held) {
      if (!isValid(e.lease, now)) this.lose(account, e, "expired");
      else if (this.opts.inUse && !this.opts.inUse(account)) {
        e.unusedSince ??= now;
        if (now - e.unusedSince >= CLAIM_GRACE_MS) {
          this.opts.log.debug({ account }, "cluster: lease of an account no longer used here released");
          void this.release(account);
        } else if (renewDue(e.lease, now, this.timing)) void this.renewOne(account, e);
      } else {
        e.unusedSince = undefined;
        if (renewDue(e.lease, now, this.timing)) void this.renewOne(account, e);
      }
    }
    if (!this.withdrawn && now - this.lastHeartbeat >= this.timing.renewEveryMs) {
      this.lastHeartbeat = now;
      try {
        await this.backend.heartbeat({ id: this.opts.nodeId, advertise: this.opts.advertise, client: this.clientAddress }, this.timing.ttlMs);
        this.knownNodes = await this.backend.nodes();
        this.reachable(true);
      } catch (err) {
        this.reachable(false, err);
      }
    }
  }

  private async renewOne(account: string, e: Entry): Promise<"held" | "lost" | "unanswered"> {
    const sentAt = this.now();
    e.lease.renewingSince = sentAt;
    let outcome: "extended" | "taken" | "unanswered";
    try {
      outcome = (await this.backend.renew(account, e.lease.value, this.timing.ttlMs)) ? "extended" : "taken";
      this.reachable(true);
    } catch (err) {
      this.reachable(false, err);
      outcome = "unanswered";
    }
    if (this.held.get(account) !== e) return "lost";
    const v = renewed(e.lease, sentAt, outcome, this.now(), this.timing);
    if (v.kind === "lost") {
      this.lose(account, e, v.why);
      return "lost";
    }
    return outcome === "unanswered" ? "unanswered" : "held";
  }

  private lose(account: string, e: Entry, why: string): void {
    if (this.held.get(account) !== e) return;
    this.held.delete(account);
    this.stats.lost++;
    this.opts.log.warn({ account, token: e.lease.token, why, code: "LEASE_LOST" }, "cluster: account lease lost");
    e.onLost(why);
  }

  private reachable(up: boolean, err?: unknown): void {
    if (!up) this.stats.redisErrors++;
    if (up === this.redisUp) return;
    this.redisUp = up;
    if (up) this.opts.log.info({ code: "REDIS_BACK" }, "cluster: Redis reachable again");
    else this.opts.log.error({ code: "REDIS_DOWN", reason: (err as Error | undefined)?.message },
      "cluster: Redis unreachable: held leases are kept until their deadline, no account session can be opened meanwhile");
  }
}
