import { ResumeRegistry, type LookupResult } from "../../core/sm/resume-registry.js";

/** What the registry needs from a session: to end it when its hibernation runs out. */
export interface Resumable {
  /** Hibernated too long (or the proxy stops): the session ends (docs/architecture.md §8.4, expiry). */
  expire(reason: string): void;
}

/**
 * The proxy's XEP-0198 resumption ids (docs/architecture.md §8.4): core's ResumeRegistry for the
 * decisions, plus the one timer that expires hibernating sessions. Ids are bound to the account
 * (a lower-case bare JID) that enabled SM; a lookup by another account finds nothing.
 */
export class Resumption<S extends Resumable> {
  private readonly registry = new ResumeRegistry<S>();
  /** Hibernating sessions by id (the registry answers ids; the timer needs the sessions). */
  private readonly sleeping = new Map<string, S>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;

  issue(account: string, session: S): string {
    return this.registry.issue(account, session);
  }

  lookup(id: string, account: string): LookupResult<S> {
    return this.registry.lookup(id, account);
  }

  /** The session's connection dropped: it may be resumed until `timeoutMs` from now. */
  hibernate(id: string, session: S, timeoutMs: number): void {
    const now = Date.now();
    this.registry.sweep(now);
    if (!this.registry.hibernate(id, now, timeoutMs)) return;
    this.sleeping.set(id, session);
    this.arm();
  }

  /** Resumed on a new connection. */
  wake(id: string): void {
    this.registry.wake(id);
    this.sleeping.delete(id);
    this.arm();
  }

  /** Ended without a clean close: a later <resume/> gets <failed h/> with what was handled (`h`). */
  expire(id: string, h: number): void {
    this.registry.expire(id, h, Date.now());
    this.sleeping.delete(id);
    this.arm();
  }

  /** Ended by the client's own </stream:stream>: the id is forgotten. */
  remove(id: string): void {
    this.registry.remove(id);
    this.sleeping.delete(id);
    this.arm();
  }

  /** Hibernating sessions (status, shutdown). */
  hibernating(): S[] {
    return [...this.sleeping.values()];
  }

  get hibernatingCount(): number {
    return this.sleeping.size;
  }

  /** Proxy shutdown: every hibernating session ends now. */
  shutdown(): void {
    for (const s of this.hibernating()) s.expire("proxy shutdown");
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One timer, for the earliest hibernation deadline. */
  private arm(): void {
    const next = this.registry.nextDeadline();
    if (next === this.timerAt) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === undefined) return;
    // setTimeout's longest delay is 2^31-1 ms (~24.8 days); --sm-resume-timeout is at most a day
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = undefined;
    const now = Date.now();
    for (const id of this.registry.dueExpiries(now)) {
      const s = this.sleeping.get(id);
      if (s) s.expire("hibernated too long");
      // a session that did not take its id out (should not happen): the id goes
      if (this.registry.isHibernating(id)) this.remove(id);
    }
    this.registry.sweep(now);
    this.arm();
  }
}
