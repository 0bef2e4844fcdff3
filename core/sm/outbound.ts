/**
 * The server→client side of one XEP-0198 session (docs/architecture.md §8.4): every counted stanza
 * written to the client is pushed here and kept until the client's 'h' covers it.
 *
 * Counts are mod 2^32 (./counter.ts). The queue holds exactly the stanzas numbered acked+1 … sent,
 * so `length === countDiff(sent, acked)` always. Storage is an array with a head index, compacted
 * when the dead prefix outgrows the live part: push and ack are O(1) amortised (no Array#shift).
 */
import { SM_HALF, addCount, countDiff } from "./counter.js";

export type QueuedStanza = string | Buffer;

export interface OutboundQueueOptions {
  /** Most unacked stanzas kept; one more and push() answers "full". */
  maxStanzas: number;
  /** Most unacked bytes kept (UTF-8 length of strings, length of Buffers). */
  maxBytes: number;
  /** Starting value of both counters (XEP-0198 §4: 0). Only tests start elsewhere, e.g. near 2^32. */
  start?: number;
}

export type AckResult =
  | {
      ok: true;
      /** Stanzas newly acknowledged by this h (0 for a repeated or stale h). */
      acked: number;
      /** Set when h was behind the last ack: ignored, nothing acked (a confused client, never an error). */
      stale?: true;
    }
  | {
      ok: false;
      /** XEP-0198 §6: the peer acknowledged more than was sent → <undefined-condition/> stream error. */
      condition: "handled-count-too-high";
      /** Our send count, for the send-count attribute of <handled-count-too-high/>. */
      sent: number;
    };

export type ResumeResult =
  | {
      ok: true;
      acked: number;
      stale?: true;
      /** Stanzas still unacked after h, in order: re-send them after <resumed/> (XEP-0198 §5). They stay queued. */
      resend: readonly QueuedStanza[];
      /** When each of `resend` was pushed (the `at` given to push; NaN when none was). */
      resendAt: readonly number[];
    }
  | { ok: false; condition: "handled-count-too-high"; sent: number };

/** Compact once at least this many dead slots lead the array and they outnumber the live ones. */
const COMPACT_MIN = 1024;

function sizeOf(s: QueuedStanza): number {
  return typeof s === "string" ? Buffer.byteLength(s, "utf8") : s.length;
}

export class OutboundQueue {
  private readonly maxStanzas: number;
  private readonly maxBytes: number;
  /** Slots before `head` are released (undefined, so a large acked stanza is collectable at once). */
  private items: (QueuedStanza | undefined)[] = [];
  private sizes: number[] = [];
  /** The `at` of each push (the caller's clock: core reads none), aligned with `items`. */
  private times: number[] = [];
  private head = 0;
  private sentCount: number;
  private ackedCount: number;
  private byteCount = 0;

  constructor(opts: OutboundQueueOptions) {
    if (!(opts.maxStanzas >= 1) || !(opts.maxBytes >= 1)) throw new RangeError("OutboundQueue bounds must be ≥ 1");
    // The serial-number reading of h (RFC 1982) needs the window well inside half the counter space.
    if (opts.maxStanzas >= SM_HALF) throw new RangeError("maxStanzas must be < 2^31");
    this.maxStanzas = opts.maxStanzas;
    this.maxBytes = opts.maxBytes;
    const start = opts.start ?? 0;
    if (!Number.isInteger(start) || start < 0 || start >= 2 ** 32) throw new RangeError("start must be a count in [0, 2^32)");
    this.sentCount = start;
    this.ackedCount = start;
  }

  /** Stanzas sent so far, mod 2^32 (the send-count of XEP-0198 §6). */
  get sent(): number {
    return this.sentCount;
  }

  /** The last h the client acknowledged, mod 2^32. */
  get acked(): number {
    return this.ackedCount;
  }

  /** Unacked stanzas held. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Unacked bytes held. */
  get bytes(): number {
    return this.byteCount;
  }

  /**
   * Counts `stanza` as sent and keeps it until acked. "full" means the queue is over one of its
   * bounds after adding it: the stanza IS queued and counted, and the caller ends the session
   * (expiry; drain() then hands everything over, this stanza included). `at` is when it was sent,
   * in the caller's clock, handed back with it by resume() (for a re-send's delay stamp).
   */
  push(stanza: QueuedStanza, at = Number.NaN): "queued" | "full" {
    const size = sizeOf(stanza);
    this.items.push(stanza);
    this.sizes.push(size);
    this.times.push(at);
    this.byteCount += size;
    this.sentCount = addCount(this.sentCount, 1);
    return this.length > this.maxStanzas || this.byteCount > this.maxBytes ? "full" : "queued";
  }

  /**
   * The client handled every stanza up to `h` (XEP-0198 §4). With d = h - acked (mod 2^32):
   * - d ≤ length: the first d stanzas are released;
   * - d ≥ 2^31 (h is behind the last ack): stale, ignored — 'h' never goes back, so this is a
   *   confused client; nothing is released and the ack point does not move;
   * - otherwise h is beyond what was sent: `handled-count-too-high` (§6), nothing changes.
   */
  ack(h: number): AckResult {
    if (!Number.isInteger(h) || h < 0 || h >= 2 ** 32) throw new RangeError("h must be a count in [0, 2^32)");
    const d = countDiff(h, this.ackedCount);
    const n = this.length;
    if (d <= n) {
      this.release(d);
      this.ackedCount = h;
      return { ok: true, acked: d };
    }
    if (d >= SM_HALF) return { ok: true, acked: 0, stale: true };
    return { ok: false, condition: "handled-count-too-high", sent: this.sentCount };
  }

  /** XEP-0198 §5: handle `h` of <resume/> as an ack, then what is still unacked is to be re-sent, in order. */
  resume(h: number): ResumeResult {
    const r = this.ack(h);
    if (!r.ok) return r;
    return { ...r, resend: this.unacked(), resendAt: this.times.slice(this.head) };
  }

  /** The unacked stanzas, oldest first (a copy). */
  unacked(): readonly QueuedStanza[] {
    return this.live();
  }

  /**
   * Takes every unacked stanza, oldest first, and empties the queue (expiry: the caller accounts for
   * each one, docs/architecture.md §8.4). The queue is spent afterwards: `acked` jumps to `sent`,
   * as if those stanzas had been handled — by the caller.
   */
  drain(): QueuedStanza[] {
    const out = this.live();
    this.items = [];
    this.sizes = [];
    this.times = [];
    this.head = 0;
    this.byteCount = 0;
    this.ackedCount = this.sentCount;
    return out;
  }

  private live(): QueuedStanza[] {
    const out: QueuedStanza[] = [];
    for (let i = this.head; i < this.items.length; i++) out.push(this.items[i]!);
    return out;
  }

  private release(n: number): void {
    if (n === 0) return;
    const end = this.head + n;
    for (let i = this.head; i < end; i++) {
      this.byteCount -= this.sizes[i]!;
      this.items[i] = undefined;
    }
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.sizes = [];
      this.times = [];
      this.head = 0;
    } else if (this.head >= COMPACT_MIN && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}
