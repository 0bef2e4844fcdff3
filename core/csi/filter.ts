import { parseStanza, type Element } from "../xml/element.js";
import { utf8Length } from "../muc/history.js";
import { classify, supersedeKey } from "./classify.js";
import { stampHeld } from "./delay.js";
import { rawBare } from "../jid.js";

/**
 * XEP-0352 client state indication for the room traffic the proxy fans out to one session
 * (docs/architecture.md §8.5). Pure: stanzas in (serialized, as the session would get them),
 * stanzas to write now out; the caller owns the socket and the clock.
 *
 * While the session is active, `offer` returns the stanza untouched without looking at it. While
 * it is inactive, presences, chat states and other body-less messages are held; a stanza someone
 * waits for or a human reads (see `classify`), anything the client sends, `<active/>` and the
 * caps flush: everything held, in offer order, then the stanza that caused it. While held, a
 * presence is superseded by a later one from the same occupant and a bare chat state by a later
 * one from the same sender: the superseded one is never written, the newer one takes its place at
 * the end. Held stanzas get an XEP-0203 `<delay/>` (`stampHeld`).
 *
 * The caller's side of it (one filter per bound session):
 *  - every room stanza for the session goes through `offer`/`offerAll`; write what they return,
 *    in order (XEP-0198 counts a stanza when it is written, not when it is offered);
 *  - `<inactive/>` → `setInactive()`; `<active/>` → write what `setActive()` returns before handling
 *    anything the client sent after it (XEP-0352 §5.1, in-order processing);
 *  - anything else the client sends → write what `clientSent()` returns (cheap when nothing is held);
 *  - the session ends → `drop()`.
 */

export interface CsiFilterOptions {
  /** At most this many stanzas held; one more flushes them all (Prosody's csi_queue_size is 256). */
  maxHeld?: number;
  /** At most this many bytes (UTF-8, as written, delay included) held; more flushes them all. */
  maxHeldBytes?: number;
  /** Payload namespaces whose messages are delivered at once, on top of the built-in list (`classify`). */
  importantNamespaces?: Iterable<string>;
}

export const CSI_DEFAULTS = Object.freeze({
  maxHeld: 256,
  maxHeldBytes: 256 * 1024,
});

/**
 * Why held stanzas were written (for metrics, like mod_csi_simple's flush reasons): `important`
 * a stanza that must not wait (`classify`), `unparsed` one that could not be judged, `client`
 * the client sent something, `active` `<active/>`, `count-cap` / `byte-cap` the caps.
 */
export type CsiFlushReason = "important" | "unparsed" | "client" | "active" | "count-cap" | "byte-cap";

interface Held {
  readonly xml: string;
  readonly bytes: number;
  readonly key: string | undefined;
  /** The bare JID it came from (its room), lower-cased: what a room-scoped flush takes. */
  readonly room: string;
}

/**
 * What an important stanza flushes: the held stanzas of its own room, or everything. Rooms are
 * independent streams — a body in one room says nothing about presences in another, which can keep
 * being superseded — so a message or presence that must not wait flushes its room only (order
 * within the room is kept); an IQ or an error (which may answer anything the client did) flushes all.
 */
function flushScope(el: Element): string | undefined {
  if (el.name === "iq" || el.attrs.type === "error") return undefined;
  const from = typeof el.attrs.from === "string" ? el.attrs.from : "";
  return from === "" ? undefined : rawBare(from).toLowerCase();
}

/** The answer "write nothing now"; shared, hence frozen. */
const NOTHING: readonly string[] = Object.freeze([]);

function checkLimit(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`CsiFilter: ${name} must be a non-negative integer, got ${v}`);
  return v;
}

export class CsiFilter {
  #active = true; // XEP-0352 §5 (Business Rules): a stream starts active
  /** Held stanzas in offer order, by sequence number; superseding deletes and re-appends. */
  readonly #held = new Map<number, Held>();
  /** Supersede key → sequence number of the held stanza with that key. */
  readonly #byKey = new Map<string, number>();
  #seq = 0;
  #bytes = 0;
  #superseded = 0;
  readonly #flushes: Record<CsiFlushReason, number> = { important: 0, unparsed: 0, client: 0, active: 0, "count-cap": 0, "byte-cap": 0 };
  readonly #maxHeld: number;
  readonly #maxHeldBytes: number;
  readonly #important: ReadonlySet<string>;

  constructor(opts: CsiFilterOptions = {}) {
    this.#maxHeld = checkLimit("maxHeld", opts.maxHeld ?? CSI_DEFAULTS.maxHeld);
    this.#maxHeldBytes = checkLimit("maxHeldBytes", opts.maxHeldBytes ?? CSI_DEFAULTS.maxHeldBytes);
    this.#important = new Set(opts.importantNamespaces ?? []);
  }

  /** False between `<inactive/>` and `<active/>`. */
  get active(): boolean {
    return this.#active;
  }

  /** Number of stanzas held now. */
  get held(): number {
    return this.#held.size;
  }

  /** UTF-8 bytes held now (as they will be written). */
  get heldBytes(): number {
    return this.#bytes;
  }

  /** Held stanzas dropped so far because a newer one from the same occupant/sender replaced them. */
  get superseded(): number {
    return this.#superseded;
  }

  /** Flushes so far that wrote at least one held stanza, by reason (a copy). */
  get flushes(): Readonly<Record<CsiFlushReason, number>> {
    return { ...this.#flushes };
  }

  /** `<inactive/>`: start holding. Idempotent. */
  setInactive(): void {
    this.#active = false;
  }

  /** `<active/>`: stop holding; returns everything held, in order, to write now. */
  setActive(): readonly string[] {
    this.#active = true;
    return this.#take("active");
  }

  /**
   * The client sent something (any stanza or nonza): it is awake, so what is held goes out now
   * (as mod_csi_simple flushes on any input); the session stays inactive.
   */
  clientSent(): readonly string[] {
    return this.#held.size === 0 ? NOTHING : this.#take("client");
  }

  /**
   * A stanza for the session. Returns what to write now, in order: `[stanza]` while active;
   * while inactive either nothing (held) or everything held followed by `stanza` itself, untouched.
   * `nowMs` is only used for the delay stamp of a held stanza. Never throws: a stanza that cannot
   * be parsed is written as it is (after what is held).
   */
  offer(stanza: string, nowMs: number): readonly string[] {
    if (this.#active) return [stanza];
    return this.#offerInactive(stanza, nowMs);
  }

  /** `offer` for several stanzas in a row; while active, returns `stanzas` itself. */
  offerAll(stanzas: readonly string[], nowMs: number): readonly string[] {
    if (this.#active) return stanzas;
    const out: string[] = [];
    for (const s of stanzas) for (const w of this.#offerInactive(s, nowMs)) out.push(w);
    return out;
  }

  /** Forgets what is held (the session ended; room stanzas are still in the room's buffer). */
  drop(): void {
    this.#held.clear();
    this.#byKey.clear();
    this.#bytes = 0;
  }

  #offerInactive(stanza: string, nowMs: number): readonly string[] {
    let key: string | undefined;
    let xml: string;
    let room: string;
    try {
      const el: Element = parseStanza(stanza);
      const cls = classify(el, this.#important);
      if (cls === "flush") return this.#flushWith(stanza, "important", flushScope(el));
      key = supersedeKey(el, cls);
      room = rawBare(typeof el.attrs.from === "string" ? el.attrs.from : "").toLowerCase();
      xml = stampHeld(el, nowMs);
    } catch {
      return this.#flushWith(stanza, "unparsed"); // not parseable: not ours to judge, write it as it came
    }
    if (key !== undefined) {
      const prev = this.#byKey.get(key);
      if (prev !== undefined) {
        this.#remove(prev);
        this.#superseded++;
      }
    }
    const bytes = utf8Length(xml);
    if (this.#held.size + 1 > this.#maxHeld) return this.#flushWith(stanza, "count-cap");
    if (this.#bytes + bytes > this.#maxHeldBytes) return this.#flushWith(stanza, "byte-cap");
    const seq = this.#seq++;
    this.#held.set(seq, { xml, bytes, key, room });
    if (key !== undefined) this.#byKey.set(key, seq);
    this.#bytes += bytes;
    return NOTHING;
  }

  #remove(seq: number): void {
    const h = this.#held.get(seq);
    if (h === undefined) return;
    this.#held.delete(seq);
    if (h.key !== undefined) this.#byKey.delete(h.key);
    this.#bytes -= h.bytes;
  }

  /** Everything held (or, with `room`, what is held from that room), then `stanza`. */
  #flushWith(stanza: string, why: CsiFlushReason, room?: string): readonly string[] {
    const out = room === undefined ? this.#takeMutable(why) : this.#takeRoom(room, why);
    out.push(stanza);
    return out;
  }

  #takeRoom(room: string, why: CsiFlushReason): string[] {
    const out: string[] = [];
    for (const [seq, h] of this.#held) {
      if (h.room !== room) continue;
      out.push(h.xml);
      this.#remove(seq);
    }
    if (out.length > 0) this.#flushes[why]++;
    return out;
  }

  #take(why: CsiFlushReason): readonly string[] {
    return this.#held.size === 0 ? NOTHING : this.#takeMutable(why);
  }

  #takeMutable(why: CsiFlushReason): string[] {
    if (this.#held.size > 0) this.#flushes[why]++;
    const out: string[] = [];
    for (const h of this.#held.values()) out.push(h.xml);
    this.drop();
    return out;
  }
}
