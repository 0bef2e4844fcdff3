import { Element } from "ltx";
import { parseStanza } from "../xml/element.js";
import { NS_DELAY, NS_HINTS, NS_MUC, NS_SID } from "../xml/ns.js";
import { attr, isoStamp, copyOf } from "./stanza.js";

/**
 * A session's <history/> request (XEP-0045 §7.2.15). All present limits apply together: the
 * service "MUST send the smallest amount of traffic that meets any combination of the above
 * criteria", so each limit narrows the selection further.
 */
export interface HistoryRequest {
  maxchars?: number; // complete stanzas only; counted over the XML of each stanza as sent
  maxstanzas?: number;
  seconds?: number;
  since?: number; // ms since epoch
}

function nonNegativeInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return undefined;
  return Number.parseInt(v, 10);
}

/** Reads <history/> of a join's <x xmlns='muc'>; undefined when the join asks nothing (room default). */
export function parseHistoryRequest(mucX: Element | undefined): HistoryRequest | undefined {
  const h = mucX?.getChild("history", NS_MUC) ?? mucX?.getChild("history");
  if (!h) return undefined;
  const req: HistoryRequest = {};
  const maxchars = nonNegativeInt(attr(h, "maxchars"));
  const maxstanzas = nonNegativeInt(attr(h, "maxstanzas"));
  const seconds = nonNegativeInt(attr(h, "seconds"));
  const sinceRaw = attr(h, "since");
  const since = sinceRaw === undefined ? Number.NaN : Date.parse(sinceRaw);
  if (maxchars !== undefined) req.maxchars = maxchars;
  if (maxstanzas !== undefined) req.maxstanzas = maxstanzas;
  if (seconds !== undefined) req.seconds = seconds;
  if (!Number.isNaN(since)) req.since = since;
  return req;
}

/**
 * One buffered room message. `time` is when the room says it was sent (its delay stamp) or when we got
 * it. A message kept by the fast path (pushRaw: a live groupchat message routed from its bytes,
 * docs/architecture.md §2.2) holds only its XML; its element and identity are built the first time a
 * join's replay or a rejoin's de-duplication asks for them, which most buffered messages never see.
 */
export class BufferedMessage {
  #stanza: Element | undefined;
  #raw: string | undefined;
  #key: string | undefined;

  constructor(
    source: Element | string,
    readonly time: number,
    readonly arrival: number,
    /** UTF-8 length of its XML, counted against the byte bound. */
    readonly bytes: number,
    private readonly roomBare: string,
  ) {
    if (typeof source === "string") this.#raw = source;
    else this.#stanza = source;
  }

  /** As received from the room (addressed to the account session). */
  get stanza(): Element {
    return (this.#stanza ??= parseStanza(this.#raw!));
  }

  /** Identity across a live delivery and a history replay (messageKey). */
  get key(): string {
    return (this.#key ??= messageKey(this.stanza, this.roomBare));
  }

  /** Whether the identity was computed (it is then counted in the buffer's key index). */
  get keyed(): boolean {
    return this.#key !== undefined;
  }
}

/**
 * XEP-0334 §4: a message with <no-store/> or <no-permanent-store/> is not meant to be kept; MUC
 * services leave such messages out of the history they replay (Prosody's muc history does), so
 * the buffer, which stands in for that history, leaves them out too. They are still fanned out live.
 */
export function isStorable(stanza: Element): boolean {
  return stanza.getChild("no-store", NS_HINTS) === undefined && stanza.getChild("no-permanent-store", NS_HINTS) === undefined;
}

/** UTF-8 byte length of a string (core has no Buffer: pure arithmetic over UTF-16 code units). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4; // surrogate pair: one 4-byte code point
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Identity of a room message across a live delivery and its later history replay (used to drop
 * the overlap of a rejoin's <history since=…>): the room's XEP-0359 stanza-id when it gives one,
 * else sender + id + body.
 */
export function messageKey(stanza: Element, roomBare: string): string {
  for (const sid of stanza.getChildren("stanza-id", NS_SID)) {
    const by = attr(sid, "by");
    const id = attr(sid, "id");
    if (id !== undefined && (by === undefined || by.toLowerCase() === roomBare)) return `sid:${id}`;
  }
  return `m:${attr(stanza, "from") ?? ""}\u0000${attr(stanza, "id") ?? ""}\u0000${stanza.getChildText("body") ?? ""}`;
}

/** The room's send time: the XEP-0203 stamp if any, else our arrival time. */
export function messageTime(stanza: Element, arrival: number): number {
  const delay = stanza.getChild("delay", NS_DELAY);
  const stamp = delay ? attr(delay, "stamp") : undefined;
  const t = stamp === undefined ? Number.NaN : Date.parse(stamp);
  return Number.isNaN(t) ? arrival : t;
}

/**
 * XEP-0203 delay for replayed history (XEP-0045 §7.2.14: history MUST carry a delay with
 * from=room). A delay the room already put there is kept as is. Mutates and returns `el`.
 */
export function ensureDelay(el: Element, roomBare: string, time: number): Element {
  if (el.getChild("delay", NS_DELAY) === undefined) el.c("delay", { xmlns: NS_DELAY, from: roomBare, stamp: isoStamp(time) });
  return el;
}

/**
 * Bounded ring of recent groupchat messages (docs/architecture.md §5.3): at most `limit` messages
 * and `maxBytes` bytes of XML; the oldest go first. A single message larger than `maxBytes` is not kept.
 */
export class HistoryBuffer {
  private readonly entries: BufferedMessage[] = [];
  private readonly keys = new Map<string, number>(); // key → count in buffer, over the keyed entries
  private unkeyed = 0; // entries kept by pushRaw whose key is not computed yet
  private totalBytes = 0;
  private evicted = false;

  constructor(
    private readonly limit: number,
    private readonly roomBare: string,
    private readonly maxBytes: number = Number.POSITIVE_INFINITY,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The buffer no longer holds everything it was given (a bound was hit): older messages are gone. */
  get full(): boolean {
    return this.evicted || this.entries.length >= this.limit;
  }

  oldest(): BufferedMessage | undefined {
    return this.entries[0];
  }

  has(stanza: Element): boolean {
    if (this.unkeyed > 0) {
      // the fast path kept these without their identity: index them now (a rejoin's overlap check)
      for (const m of this.entries) if (!m.keyed) this.countKey(m.key, 1);
      this.unkeyed = 0;
    }
    return this.keys.has(messageKey(stanza, this.roomBare));
  }

  /** Keeps a message (unless XEP-0334 says not to: isStorable); returns whether it was kept. */
  push(stanza: Element, arrival: number): boolean {
    if (this.limit <= 0 || !isStorable(stanza)) return false;
    const bytes = utf8Length(stanza.toString());
    if (!this.fits(bytes)) return false;
    const m = new BufferedMessage(copyOf(stanza), messageTime(stanza, arrival), arrival, bytes, this.roomBare);
    this.countKey(m.key, 1);
    this.keep(m);
    return true;
  }

  /**
   * Keeps a live message the fast path routed from its bytes: the caller has checked that it is
   * storable and has no delay (so its time is its arrival); `bytes` is its UTF-8 length.
   */
  pushRaw(xml: string, bytes: number, arrival: number): boolean {
    if (this.limit <= 0 || !this.fits(bytes)) return false;
    this.unkeyed++;
    this.keep(new BufferedMessage(xml, arrival, arrival, bytes, this.roomBare));
    return true;
  }

  private fits(bytes: number): boolean {
    if (bytes <= this.maxBytes) return true;
    this.evicted = true;
    return false;
  }

  private keep(m: BufferedMessage): void {
    this.entries.push(m);
    this.totalBytes += m.bytes;
    while (this.entries.length > this.limit || this.totalBytes > this.maxBytes) {
      const dropped = this.entries.shift();
      if (!dropped) break;
      this.evicted = true;
      this.totalBytes -= dropped.bytes;
      if (dropped.keyed) this.countKey(dropped.key, -1);
      else this.unkeyed--;
    }
  }

  private countKey(key: string, d: 1 | -1): void {
    const n = (this.keys.get(key) ?? 0) + d;
    if (n <= 0) this.keys.delete(key);
    else this.keys.set(key, n);
  }

  /**
   * The stanzas a session asked for, oldest first, each rendered by `render` (address + delay).
   * `since` is strict (messages after the instant given), so a client quoting the stamp of the
   * last message it saw does not get that message again. `defaultMaxStanzas` applies when the
   * session sent no <history/> (the room's own default, §7.2.15 "service-level defaults").
   */
  select(req: HistoryRequest | undefined, now: number, defaultMaxStanzas: number, render: (m: BufferedMessage) => Element): Element[] {
    const r: HistoryRequest = req ?? { maxstanzas: defaultMaxStanzas };
    let picked = this.entries.filter(
      (m) => (r.since === undefined || m.time > r.since) && (r.seconds === undefined || m.time >= now - r.seconds * 1000),
    );
    if (r.maxstanzas !== undefined) picked = r.maxstanzas === 0 ? [] : picked.slice(-r.maxstanzas);
    const rendered = picked.map(render);
    if (r.maxchars === undefined) return rendered;
    // Largest run of most recent complete stanzas whose XML fits in maxchars (0 → none).
    let total = 0;
    let start = rendered.length;
    for (let i = rendered.length - 1; i >= 0; i--) {
      const el = rendered[i];
      if (el === undefined) break;
      const len = el.toString().length;
      if (total + len > r.maxchars) break;
      total += len;
      start = i;
    }
    return rendered.slice(start);
  }
}
