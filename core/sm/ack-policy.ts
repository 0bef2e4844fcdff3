/**
 * When the proxy asks the client for an ack (<r/>, XEP-0198 §4; docs/architecture.md §8.4).
 *
 * Rules:
 * - at most one <r/> outstanding: after one is sent, nothing more is asked until an <a/> arrives
 *   (as Prosody's mod_smacks `awaiting_ack`);
 * - ask at once when `everyStanzas` or more are unacked;
 * - otherwise ask when the oldest output not yet covered by a request is `everyMs` old: the policy
 *   answers `{ armMs }` and the edge arms a one-shot timer, then calls onTimer().
 *
 * Pure: the clock comes in as `now` (milliseconds, any monotonic origin); the edge owns the timer.
 * Protocol for the edge:
 * - after writing counted stanzas: `afterSend(queue.length, now)`;
 * - after an <a/> was applied to the queue: `onAck()`, then `afterSend(queue.length, now)` (stanzas
 *   written while the <r/> was outstanding may now need their own request);
 * - a decision "request": write <r/>, then `onRequestSent(now)`;
 * - `{ armMs }`: arm (or re-arm) the one timer; when it fires: `onTimer(queue.length, now)`;
 * - after <resumed/> and the re-sent queue: `onResumed(queue.length, now)` (the old <r/> died with
 *   its connection; a request right after the re-send tells the client's h early, as mod_smacks does).
 * - while hibernating, call nothing: no request can be answered.
 */

export interface AckPolicyOptions {
  /** Ask once this many stanzas are unacked (≥ 1). */
  everyStanzas: number;
  /** Ask once unacked output is this old, in ms (> 0). */
  everyMs: number;
}

export type AckDecision = "request" | { armMs: number } | "none";

export class AckPolicy {
  private readonly everyStanzas: number;
  private readonly everyMs: number;
  /** An <r/> was sent and no <a/> came since. */
  private outstanding = false;
  /** When the oldest unacked output not covered by a request was written (undefined: none). */
  private since: number | undefined;
  /** While a request is outstanding: when the first stanza after it was written. */
  private sinceAfterRequest: number | undefined;
  /** The time the edge's timer is armed for (undefined: not armed). */
  private armedAt: number | undefined;

  constructor(opts: AckPolicyOptions) {
    if (!(opts.everyStanzas >= 1)) throw new RangeError("everyStanzas must be ≥ 1");
    if (!(opts.everyMs > 0)) throw new RangeError("everyMs must be > 0");
    this.everyStanzas = opts.everyStanzas;
    this.everyMs = opts.everyMs;
  }

  /** An <r/> is outstanding. */
  get awaitingAck(): boolean {
    return this.outstanding;
  }

  /** After writing output; `unacked` is the queue length now. */
  afterSend(unacked: number, now: number): AckDecision {
    if (unacked <= 0) {
      this.since = undefined;
      this.sinceAfterRequest = undefined;
      return "none";
    }
    if (this.outstanding) {
      this.sinceAfterRequest ??= now;
      return "none";
    }
    this.since ??= now;
    if (unacked >= this.everyStanzas) return "request";
    const due = this.since + this.everyMs;
    if (now >= due) return "request";
    // A timer armed for no later than `due` will fire in time (one armed for the past is late or
    // lost: arm again — the edge keeps one timer, so this replaces it).
    if (this.armedAt !== undefined && this.armedAt >= now && this.armedAt <= due) return "none";
    this.armedAt = due;
    return { armMs: due - now };
  }

  /** The edge's timer fired. */
  onTimer(unacked: number, now: number): AckDecision {
    this.armedAt = undefined;
    return this.afterSend(unacked, now);
  }

  /** An <r/> was written. */
  onRequestSent(_now: number): void {
    this.outstanding = true;
    this.since = undefined;
    this.sinceAfterRequest = undefined;
    // A timer still running may fire later: onTimer() then answers from the state at that time.
    this.armedAt = undefined;
  }

  /** An <a/> arrived (and was applied). Call afterSend(queue.length, now) next. */
  onAck(): void {
    if (this.outstanding) {
      this.outstanding = false;
      this.since = this.sinceAfterRequest;
      this.sinceAfterRequest = undefined;
    }
  }

  /** The session was resumed on a new connection and the queue re-sent. */
  onResumed(unacked: number, _now: number): AckDecision {
    this.outstanding = false;
    this.since = undefined;
    this.sinceAfterRequest = undefined;
    this.armedAt = undefined;
    return unacked > 0 ? "request" : "none";
  }
}
