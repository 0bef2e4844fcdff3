import { AckPolicy, type AckDecision } from "../../core/sm/ack-policy.js";
import { InboundCounter } from "../../core/sm/inbound.js";
import { OutboundQueue, type QueuedStanza } from "../../core/sm/outbound.js";
import { SM_HALF, countDiff } from "../../core/sm/counter.js";
import { ack, ackRequest, handledCountTooHigh } from "../../core/sm/elements.js";
import { stampResent } from "../../core/sm/resend.js";

/** Ask for an ack once the oldest unacknowledged stanza is this old (besides --sm-ack-every). */
export const ACK_AFTER_MS = 5000;

export interface ClientSmOptions {
  maxQueue: number;
  maxQueueBytes: number;
  ackEvery: number;
  /** The resumption id, when the client asked for resumption and got it. */
  id?: string | undefined;
  /** How long the session hibernates, when resumable. */
  timeoutMs: number;
}

/**
 * XEP-0198 state of one session on the client leg, for as long as the session lives (it survives
 * hibernation and moves with the session to a resuming connection; docs/architecture.md §8.4). The
 * decisions are core/sm's; this arms the ack-request timer and writes the nonzas through `writeNonza`
 * (to whatever connection the session has; never counted, never queued).
 *
 * What goes in the queue: Buffers are stanzas from the session's own upstream leg, strings are what
 * the account layer delivered (BoundSession.toClient; expiry treats the two differently).
 */
export class ClientSm {
  /** What the proxy handled from the client: the 'h' of <a/>, <resumed/> and a tombstone. */
  readonly inbound = new InboundCounter();
  private readonly queue: OutboundQueue;
  private readonly policy: AckPolicy;
  private timer: NodeJS.Timeout | undefined;
  /** A connection is there to ask for acks (not hibernating, not ended). */
  private connected = true;
  readonly id: string | undefined;
  readonly timeoutMs: number;

  constructor(private readonly writeNonza: (xml: string) => void, opts: ClientSmOptions) {
    this.queue = new OutboundQueue({ maxStanzas: opts.maxQueue, maxBytes: opts.maxQueueBytes });
    this.policy = new AckPolicy({ everyStanzas: opts.ackEvery, everyMs: ACK_AFTER_MS });
    this.id = opts.id;
    this.timeoutMs = opts.timeoutMs;
  }

  /** The client asked for resumption and got an id. */
  get resumable(): boolean {
    return this.id !== undefined;
  }

  get unacked(): number {
    return this.queue.length;
  }

  get unackedBytes(): number {
    return this.queue.bytes;
  }

  /** Counts one stanza written (or, while hibernating, to be written) to the client. False: over --sm-max-queue[-bytes]. */
  push(stanza: QueuedStanza, now = Date.now()): boolean {
    return this.queue.push(stanza, now) === "queued";
  }

  /** After counted stanzas were written to the connected client: maybe ask for an ack. */
  afterSend(): void {
    if (this.connected) this.decide(this.policy.afterSend(this.queue.length, Date.now()));
  }

  /** <r/> from the client: answered at once (Dino sends one after every stanza and stalls without answers). */
  onRequest(): void {
    this.writeNonza(ack(this.inbound.h));
  }

  /**
   * <a h/> from the client. Returns the <handled-count-too-high/> condition when `h` is above what
   * was sent (XEP-0198 §6: the stream ends with <undefined-condition/>), else undefined.
   */
  onAck(h: number): string | undefined {
    const r = this.queue.ack(h);
    if (!r.ok) return handledCountTooHigh(h, r.sent);
    this.policy.onAck();
    this.afterSend();
    return undefined;
  }

  /** Whether <resume h/> acknowledges more than was sent (checked before anything moves). */
  resumeTooHigh(h: number): string | undefined {
    const d = countDiff(h, this.queue.acked);
    return d > this.queue.length && d < SM_HALF ? handledCountTooHigh(h, this.queue.sent) : undefined;
  }

  /**
   * <resume h/>: `h` acknowledges; the rest is to be re-sent, in order (it stays queued until acked),
   * each message and presence with a delay from `server` stamped when it was queued (core/sm/resend.ts).
   */
  resume(h: number, server: string): QueuedStanza[] {
    const r = this.queue.resume(h);
    if (!r.ok) return [];
    return r.resend.map((s, i) => stampResent(s, r.resendAt[i] ?? Number.NaN, server));
  }

  /** After <resumed/> and the re-sent stanzas were written to the new connection. */
  resumed(): void {
    this.connected = true;
    this.decide(this.policy.onResumed(this.queue.length, Date.now()));
  }

  /** The connection dropped: no ack can be asked for until a resume. */
  hibernate(): void {
    this.connected = false;
    this.clearTimer();
  }

  /** The session ends: every unacked stanza, oldest first, for the caller to account for. */
  end(): QueuedStanza[] {
    this.connected = false;
    this.clearTimer();
    return this.queue.drain();
  }

  private decide(d: AckDecision): void {
    if (d === "none") return;
    if (d === "request") {
      this.clearTimer();
      this.writeNonza(ackRequest());
      this.policy.onRequestSent(Date.now());
      return;
    }
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.connected) this.decide(this.policy.onTimer(this.queue.length, Date.now()));
    }, d.armMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
