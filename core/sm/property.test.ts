/**
 * XEP-0198 end to end, in the pure parts only (docs/architecture.md §8.4): a model server session
 * (OutboundQueue, InboundCounter, AckPolicy, ResumeRegistry) and a model client (its own h and an
 * OutboundQueue for what it sent) talk over a lossy connection. fast-check interleaves server and
 * client sends, partial deliveries, <r/> and <a/>, connection drops that lose whatever was in flight,
 * resumes with each side's true h, clock ticks, and expiry (hibernation timeout or a full queue).
 *
 * Checked:
 * - each side receives the other's stanzas exactly once and in order, across any number of resumes;
 * - no ack is ever refused or stale (a correct peer's h never exceeds what was sent, never goes back);
 * - at an expiry, drain() returns exactly the stanzas after the client's last ack: together with what
 *   the client received, every stanza sent is accounted for; a later <resume/> gets <failed h/> with
 *   the server's h at expiry, which the client can apply to its own queue;
 * - at the end (resume if needed, deliver everything, ack), nothing sent is lost;
 * - all of it also when the counters start just below 2^32 and wrap mid-run.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AckPolicy } from "./ack-policy.js";
import { SM_WRAP, addCount, countDiff, nextCount } from "./counter.js";
import { InboundCounter } from "./inbound.js";
import { OutboundQueue } from "./outbound.js";
import { ResumeRegistry } from "./resume-registry.js";

type Wire = { t: "stanza"; n: number } | { t: "r" } | { t: "a"; h: number };

type Op =
  | { op: "serverSend" }
  | { op: "clientSend" }
  | { op: "toClient"; k: number }
  | { op: "toServer"; k: number }
  | { op: "clientAck" }
  | { op: "clientRequest" }
  | { op: "serverRequest" }
  | { op: "tick"; ms: number }
  | { op: "drop" }
  | { op: "resume" }
  | { op: "takeover" }
  | { op: "expireNow" };

const ACCOUNT = "alice@example.org";
const OTHER = "mallory@example.org";
const RESUME_MS = 10_000;

interface Params {
  start: number;
  maxStanzas: number;
  everyStanzas: number;
  everyMs: number;
}

/** One SM session of the server side, from <enabled/> to expiry. */
interface ServerSession {
  queue: OutboundQueue;
  inbound: InboundCounter;
  policy: AckPolicy;
  timerAt: number | undefined;
  id: string;
}

class World {
  now = 0;
  readonly registry = new ResumeRegistry<ServerSession>({ tombstoneMs: 60_000 });
  server!: ServerSession;
  connected = true;
  s2c: Wire[] = [];
  c2s: Wire[] = [];
  /** Per session epoch: stanza numbers 1, 2, … sent by the server / client. */
  serverSent = 0;
  clientSent = 0;
  /** What the client received from the server, and the server from the client (numbers, in arrival order). */
  clientGot: number[] = [];
  serverGot: number[] = [];
  /** The client's SM state: h of what it handled, and its own unacked queue. */
  clientH = 0;
  clientQueue!: OutboundQueue;
  expiries = 0;
  resumes = 0;
  /** Some counter went from 2^32-1 to 0 during the run. */
  wrapped = false;

  constructor(readonly p: Params) {
    this.enable();
  }

  /** <enable resume='true'/> → <enabled id resume='true'/>: fresh counters on both sides (XEP-0198 §4). */
  enable(): void {
    const queue = new OutboundQueue({ maxStanzas: this.p.maxStanzas, maxBytes: 1 << 20, start: this.p.start });
    const session: ServerSession = {
      queue,
      inbound: new InboundCounter(this.p.start),
      policy: new AckPolicy({ everyStanzas: this.p.everyStanzas, everyMs: this.p.everyMs }),
      timerAt: undefined,
      id: "",
    };
    session.id = this.registry.issue(ACCOUNT, session);
    this.server = session;
    this.clientQueue = new OutboundQueue({ maxStanzas: 1 << 30, maxBytes: 1 << 30, start: this.p.start });
    this.clientH = this.p.start;
    this.serverSent = 0;
    this.clientSent = 0;
    this.clientGot = [];
    this.serverGot = [];
    this.connected = true;
    this.s2c = [];
    this.c2s = [];
  }

  private hibernating(): boolean {
    return this.registry.isHibernating(this.server.id);
  }

  private decide(d: ReturnType<AckPolicy["afterSend"]>): void {
    if (d === "request") {
      this.s2c.push({ t: "r" });
      this.server.policy.onRequestSent(this.now);
    } else if (d !== "none") {
      this.server.timerAt = this.now + d.armMs;
    }
  }

  serverSend(): void {
    const n = ++this.serverSent;
    const s = this.server;
    const r = s.queue.push(`s${n}`);
    if (this.connected) this.s2c.push({ t: "stanza", n });
    if (r === "full") {
      this.expire();
      return;
    }
    if (this.connected) this.decide(s.policy.afterSend(s.queue.length, this.now));
  }

  clientSend(): void {
    if (!this.connected) return; // a client writes only on a live stream
    const n = ++this.clientSent;
    this.clientQueue.push(`c${n}`);
    this.c2s.push({ t: "stanza", n });
  }

  toClient(k: number): void {
    for (let i = 0; i < k && this.s2c.length > 0; i++) {
      const w = this.s2c.shift()!;
      if (w.t === "stanza") {
        // Exactly once, in order: the next stanza is always the one after the last.
        expect(w.n).toBe((this.clientGot.at(-1) ?? 0) + 1);
        this.clientGot.push(w.n);
        this.clientH = nextCount(this.clientH);
        if (this.clientH === 0) this.wrapped = true;
      } else if (w.t === "r") {
        this.c2s.push({ t: "a", h: this.clientH });
      } else {
        const r = this.clientQueue.ack(w.h);
        expect(r).toEqual({ ok: true, acked: expect.any(Number) });
      }
    }
  }

  toServer(k: number): void {
    const s = this.server;
    for (let i = 0; i < k && this.c2s.length > 0; i++) {
      const w = this.c2s.shift()!;
      if (w.t === "stanza") {
        expect(w.n).toBe((this.serverGot.at(-1) ?? 0) + 1);
        this.serverGot.push(w.n);
        expect(s.inbound.handled("message")).toBe(true);
      } else if (w.t === "r") {
        this.s2c.push({ t: "a", h: s.inbound.h });
      } else {
        const r = s.queue.ack(w.h);
        expect(r).toEqual({ ok: true, acked: expect.any(Number) });
        s.policy.onAck();
        this.decide(s.policy.afterSend(s.queue.length, this.now));
      }
    }
  }

  clientAck(): void {
    if (this.connected) this.c2s.push({ t: "a", h: this.clientH });
  }

  clientRequest(): void {
    if (this.connected) this.c2s.push({ t: "r" });
  }

  serverRequest(): void {
    if (this.connected && !this.server.policy.awaitingAck) {
      this.s2c.push({ t: "r" });
      this.server.policy.onRequestSent(this.now);
    }
  }

  tick(ms: number): void {
    this.now += ms;
    const s = this.server;
    if (this.connected && s.timerAt !== undefined && s.timerAt <= this.now) {
      s.timerAt = undefined;
      this.decide(s.policy.onTimer(s.queue.length, this.now));
    }
    this.registry.sweep(this.now);
    for (const id of this.registry.dueExpiries(this.now)) {
      expect(id).toBe(this.server.id);
      this.expire();
    }
  }

  /** The TCP connection dies: whatever was in flight is lost; the server session hibernates. */
  drop(): void {
    if (!this.connected) return;
    this.connected = false;
    this.s2c = [];
    this.c2s = [];
    this.server.timerAt = undefined;
    expect(this.registry.hibernate(this.server.id, this.now, RESUME_MS)).toBe(true);
  }

  /**
   * The client's connection died without the server noticing (a phone changing networks): it
   * resumes on a new connection while the server still holds the old one live; the server closes
   * the old one first (XEP-0198 §5), losing whatever was still unread on it.
   */
  takeover(): void {
    if (!this.connected) return;
    this.s2c = [];
    this.c2s = [];
    this.server.timerAt = undefined;
    this.resume(true);
  }

  /** <resume previd h/> with the client's true h; <resumed h/> with the server's; both re-send (XEP-0198 §5). */
  resume(takeover = false): void {
    if (this.connected && !takeover) return;
    const id = this.server.id;
    expect(this.registry.lookup(id, OTHER)).toEqual({ kind: "failed" });
    const found = this.registry.lookup(id, ACCOUNT);
    if (found.kind !== "live") throw new Error("a hibernating or live session must be found");
    expect(found.session).toBe(this.server);
    expect(found.hibernating).toBe(!takeover);
    this.registry.wake(id);
    this.connected = true;
    this.resumes++;
    const s = this.server;
    const r = s.queue.resume(this.clientH);
    if (!r.ok) throw new Error("a true h is never too high");
    expect(r.stale).toBeUndefined();
    // <resumed h/>: the client applies the server's h to its own queue and re-sends the rest.
    const c = this.clientQueue.resume(s.inbound.h);
    if (!c.ok) throw new Error("the server's true h is never too high");
    const firstServer = this.serverSent - r.resend.length + 1;
    r.resend.forEach((payload, i) => {
      expect(payload).toBe(`s${firstServer + i}`);
      this.s2c.push({ t: "stanza", n: firstServer + i });
    });
    const firstClient = this.clientSent - c.resend.length + 1;
    c.resend.forEach((payload, i) => {
      expect(payload).toBe(`c${firstClient + i}`);
      this.c2s.push({ t: "stanza", n: firstClient + i });
    });
    this.decide(s.policy.onResumed(s.queue.length, this.now));
  }

  /** Expiry: everything unacked is drained and accounted for; the id becomes a tombstone with h. */
  expire(): void {
    const s = this.server;
    const acked = s.queue.acked;
    const sent = s.queue.sent;
    const drained = s.queue.drain();
    // drain() hands over exactly the stanzas after the last ack, in order…
    const firstUnacked = this.serverSent - countDiff(sent, acked) + 1;
    expect(drained).toEqual(Array.from({ length: drained.length }, (_, i) => `s${firstUnacked + i}`));
    expect(firstUnacked + drained.length - 1).toBe(this.serverSent);
    // …and with what the client received, every stanza sent is accounted for.
    expect(this.clientGot.length).toBeGreaterThanOrEqual(firstUnacked - 1);
    expect(this.clientGot).toEqual(Array.from({ length: this.clientGot.length }, (_, i) => i + 1));
    const h = s.inbound.h;
    expect(this.registry.expire(s.id, h, this.now)).toBe(true);
    this.expiries++;
    // The client comes back later: <failed h/> tells it what the server handled.
    const back = this.registry.lookup(s.id, ACCOUNT);
    expect(back).toEqual({ kind: "failed", h });
    expect(this.registry.lookup(s.id, OTHER)).toEqual({ kind: "failed" });
    const c = this.clientQueue.ack(h);
    expect(c.ok).toBe(true);
    // What the client still holds is exactly what the server never handled.
    expect(this.clientQueue.length).toBe(this.clientSent - this.serverGot.length);
    this.enable();
  }

  /** Bring everything home: resume if needed, deliver until quiet, ack both ways; nothing sent may be lost. */
  finish(): void {
    if (!this.connected) this.resume();
    for (let guard = 0; guard < 1000 && (this.s2c.length > 0 || this.c2s.length > 0); guard++) {
      this.toClient(this.s2c.length);
      this.toServer(this.c2s.length);
    }
    this.c2s.push({ t: "a", h: this.clientH });
    this.s2c.push({ t: "a", h: this.server.inbound.h });
    this.toServer(1);
    this.toClient(this.s2c.length);
    this.toServer(this.c2s.length);
    expect(this.clientGot).toEqual(Array.from({ length: this.serverSent }, (_, i) => i + 1));
    expect(this.serverGot).toEqual(Array.from({ length: this.clientSent }, (_, i) => i + 1));
    expect(this.server.queue.length).toBe(0);
    expect(this.clientQueue.length).toBe(0);
    expect(this.server.queue.sent).toBe(addCount(this.p.start, this.serverSent));
    expect(this.server.inbound.h).toBe(addCount(this.p.start, this.clientSent));
    expect(this.clientH).toBe(addCount(this.p.start, this.serverSent));
  }

  run(op: Op): void {
    switch (op.op) {
      case "serverSend": return this.serverSend();
      case "clientSend": return this.clientSend();
      case "toClient": return this.toClient(op.k);
      case "toServer": return this.toServer(op.k);
      case "clientAck": return this.clientAck();
      case "clientRequest": return this.clientRequest();
      case "serverRequest": return this.serverRequest();
      case "tick": return this.tick(op.ms);
      case "drop": return this.drop();
      case "resume": return this.resume();
      case "takeover": return this.takeover();
      case "expireNow": if (!this.connected) this.expire(); return;
    }
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Op>({ op: "serverSend" }) },
  { weight: 3, arbitrary: fc.constant<Op>({ op: "clientSend" }) },
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 6 }).map<Op>((k) => ({ op: "toClient", k })) },
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 6 }).map<Op>((k) => ({ op: "toServer", k })) },
  { weight: 2, arbitrary: fc.constant<Op>({ op: "clientAck" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: "clientRequest" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: "serverRequest" }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 4000 }).map<Op>((ms) => ({ op: "tick", ms })) },
  { weight: 2, arbitrary: fc.constant<Op>({ op: "drop" }) },
  { weight: 2, arbitrary: fc.constant<Op>({ op: "resume" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: "takeover" }) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: "expireNow" }) },
);

const paramsArb: fc.Arbitrary<Params> = fc.record({
  start: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }).map((k) => SM_WRAP - k)),
  maxStanzas: fc.integer({ min: 1, max: 60 }),
  everyStanzas: fc.integer({ min: 1, max: 8 }),
  everyMs: fc.integer({ min: 1, max: 5000 }),
});

describe("XEP-0198 over a lossy connection (property)", () => {
  it("every stanza arrives exactly once and in order across resumes; expiry accounts for the rest", () => {
    let resumes = 0;
    let expiries = 0;
    let wrapped = 0;
    fc.assert(
      fc.property(paramsArb, fc.array(opArb, { maxLength: 200, size: "max" }), (p, ops) => {
        const w = new World(p);
        for (const op of ops) w.run(op);
        w.finish();
        resumes += w.resumes;
        expiries += w.expiries;
        if (w.wrapped) wrapped++;
      }),
      { numRuns: 400 },
    );
    // The generator reaches the interesting paths, not only the happy one.
    expect(resumes).toBeGreaterThan(400);
    expect(expiries).toBeGreaterThan(300);
    expect(wrapped).toBeGreaterThan(20);
  });

  it("wraps mid-run when the counters start just below 2^32", () => {
    const w = new World({ start: SM_WRAP - 3, maxStanzas: 100, everyStanzas: 4, everyMs: 1000 });
    for (let i = 0; i < 10; i++) w.run({ op: "serverSend" });
    w.run({ op: "toClient", k: 4 });
    w.run({ op: "drop" });
    w.run({ op: "resume" });
    w.run({ op: "clientSend" });
    w.finish();
    expect(w.server.queue.sent).toBe(7);
    expect(w.clientH).toBe(7);
    expect(w.server.inbound.h).toBe(SM_WRAP - 2);
  });
});
