import { describe, expect, it } from "vitest";
import { SM_WRAP } from "./counter.js";
import { OutboundQueue } from "./outbound.js";

const big = { maxStanzas: 1_000_000, maxBytes: 1 << 30 };

describe("OutboundQueue", () => {
  it("counts pushes as sent and keeps them in order until acked", () => {
    const q = new OutboundQueue(big);
    expect([q.sent, q.acked, q.length, q.bytes]).toEqual([0, 0, 0, 0]);
    expect(q.push("<message id='1'/>")).toBe("queued");
    expect(q.push(Buffer.from("<iq id='2'/>"))).toBe("queued");
    q.push("<presence/>");
    expect(q.sent).toBe(3);
    expect(q.length).toBe(3);
    expect(q.unacked().map(String)).toEqual(["<message id='1'/>", "<iq id='2'/>", "<presence/>"]);
    expect(q.ack(2)).toEqual({ ok: true, acked: 2 });
    expect(q.acked).toBe(2);
    expect(q.unacked().map(String)).toEqual(["<presence/>"]);
    expect(q.bytes).toBe("<presence/>".length);
  });

  it("counts bytes as UTF-8 for strings and length for Buffers", () => {
    const q = new OutboundQueue(big);
    q.push("é"); // 2 bytes
    q.push(Buffer.alloc(5));
    expect(q.bytes).toBe(7);
    q.ack(1);
    expect(q.bytes).toBe(5);
    q.ack(2);
    expect(q.bytes).toBe(0);
  });

  it("a repeated h acks nothing", () => {
    const q = new OutboundQueue(big);
    q.push("a");
    q.push("b");
    expect(q.ack(1)).toEqual({ ok: true, acked: 1 });
    expect(q.ack(1)).toEqual({ ok: true, acked: 0 });
    expect(q.length).toBe(1);
  });

  it("a stale h (behind the last ack) is ignored and does not move the ack point", () => {
    const q = new OutboundQueue(big);
    for (const s of ["a", "b", "c"]) q.push(s);
    q.ack(2);
    expect(q.ack(1)).toEqual({ ok: true, acked: 0, stale: true });
    expect(q.acked).toBe(2);
    expect(q.length).toBe(1);
    expect(q.ack(3)).toEqual({ ok: true, acked: 1 });
  });

  it("an h above what was sent is handled-count-too-high and changes nothing (XEP-0198 §6)", () => {
    const q = new OutboundQueue(big);
    q.push("a");
    q.push("b");
    expect(q.ack(3)).toEqual({ ok: false, condition: "handled-count-too-high", sent: 2 });
    expect(q.ack(1000)).toEqual({ ok: false, condition: "handled-count-too-high", sent: 2 });
    expect([q.length, q.acked, q.sent]).toEqual([2, 0, 2]);
    const empty = new OutboundQueue(big);
    expect(empty.ack(1)).toEqual({ ok: false, condition: "handled-count-too-high", sent: 0 });
  });

  it("wraps across 2^32: sent 2^32-2, push 4, ack(1) acks 3", () => {
    const q = new OutboundQueue({ ...big, start: SM_WRAP - 2 });
    for (const s of ["w", "x", "y", "z"]) q.push(s);
    expect(q.sent).toBe(2);
    expect(q.length).toBe(4);
    expect(q.ack(1)).toEqual({ ok: true, acked: 3 });
    expect(q.acked).toBe(1);
    expect(q.unacked()).toEqual(["z"]);
    expect(q.ack(3)).toEqual({ ok: false, condition: "handled-count-too-high", sent: 2 });
    expect(q.ack(SM_WRAP - 1)).toEqual({ ok: true, acked: 0, stale: true });
    expect(q.ack(2)).toEqual({ ok: true, acked: 1 });
    expect(q.length).toBe(0);
  });

  it("answers 'full' once over the stanza bound after adding; the stanza is still queued", () => {
    const q = new OutboundQueue({ maxStanzas: 2, maxBytes: 1000 });
    expect(q.push("a")).toBe("queued");
    expect(q.push("b")).toBe("queued");
    expect(q.push("c")).toBe("full");
    expect(q.length).toBe(3);
    expect(q.sent).toBe(3);
    q.ack(2);
    expect(q.push("d")).toBe("queued");
  });

  it("answers 'full' once over the byte bound after adding", () => {
    const q = new OutboundQueue({ maxStanzas: 100, maxBytes: 10 });
    expect(q.push("12345")).toBe("queued");
    expect(q.push("12345")).toBe("queued");
    expect(q.push("1")).toBe("full");
    const q2 = new OutboundQueue({ maxStanzas: 100, maxBytes: 10 });
    expect(q2.push("x".repeat(11))).toBe("full");
  });

  it("resume(h) acks then returns what is still unacked, in order, and keeps it queued (XEP-0198 §5)", () => {
    const q = new OutboundQueue(big);
    ["1", "2", "3", "4"].forEach((s, i) => q.push(s, 100 + i));
    q.ack(1);
    const r = q.resume(2);
    expect(r).toEqual({ ok: true, acked: 1, resend: ["3", "4"], resendAt: [102, 103] });
    expect(q.length).toBe(2);
    expect(q.sent).toBe(4);
    expect(q.resume(4)).toEqual({ ok: true, acked: 2, resend: [], resendAt: [] });
  });

  it("push times stay with their stanzas across acks and compaction", () => {
    const q = new OutboundQueue(big);
    for (let i = 0; i < 3000; i++) q.push(`s${i}`, i);
    q.ack(2500);
    const r = q.resume(2998);
    expect(r.ok && r.resend).toEqual(["s2998", "s2999"]);
    expect(r.ok && r.resendAt).toEqual([2998, 2999]);
  });

  it("resume with a too-high h is the same error", () => {
    const q = new OutboundQueue(big);
    q.push("1");
    expect(q.resume(2)).toEqual({ ok: false, condition: "handled-count-too-high", sent: 1 });
    expect(q.length).toBe(1);
  });

  it("resume with a stale h re-sends everything unacked", () => {
    const q = new OutboundQueue(big);
    for (const s of ["1", "2", "3"]) q.push(s);
    q.ack(2);
    expect(q.resume(1)).toEqual({ ok: true, acked: 0, stale: true, resend: ["3"], resendAt: [Number.NaN] });
  });

  it("drain() takes everything in order and leaves a spent, empty queue", () => {
    const q = new OutboundQueue(big);
    for (const s of ["1", "2", "3"]) q.push(s);
    q.ack(1);
    expect(q.drain()).toEqual(["2", "3"]);
    expect([q.length, q.bytes, q.sent, q.acked]).toEqual([0, 0, 3, 3]);
    expect(q.drain()).toEqual([]);
    expect(q.ack(3)).toEqual({ ok: true, acked: 0 });
  });

  it("unacked() is a copy", () => {
    const q = new OutboundQueue(big);
    q.push("1");
    const u = q.unacked() as string[];
    u.push("x");
    expect(q.unacked()).toEqual(["1"]);
  });

  it("stays correct through compaction with many stanzas (O(1) amortised, no shift)", () => {
    const q = new OutboundQueue(big);
    let sent = 0;
    let acked = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 3000; i++) q.push(String(sent++));
      acked += 2900;
      expect(q.ack(acked)).toEqual({ ok: true, acked: 2900 });
      expect(q.length).toBe(sent - acked);
      expect(q.unacked()[0]).toBe(String(acked));
    }
    expect(q.unacked()).toEqual(Array.from({ length: sent - acked }, (_, i) => String(acked + i)));
    expect(q.bytes).toBe(q.unacked().reduce((n, s) => n + s.length, 0));
  });

  it("a long run of single acks on a big queue is fast", () => {
    const q = new OutboundQueue(big);
    const n = 200_000;
    for (let i = 0; i < n; i++) q.push("x");
    for (let i = 1; i <= n; i++) q.ack(i);
    expect(q.length).toBe(0);
  });

  it("rejects bad options and bad h values", () => {
    expect(() => new OutboundQueue({ maxStanzas: 0, maxBytes: 1 })).toThrow(RangeError);
    expect(() => new OutboundQueue({ maxStanzas: 1, maxBytes: 0 })).toThrow(RangeError);
    expect(() => new OutboundQueue({ maxStanzas: 2 ** 31, maxBytes: 1 })).toThrow(RangeError);
    expect(() => new OutboundQueue({ ...big, start: SM_WRAP })).toThrow(RangeError);
    expect(() => new OutboundQueue({ ...big, start: -1 })).toThrow(RangeError);
    const q = new OutboundQueue(big);
    expect(() => q.ack(-1)).toThrow(RangeError);
    expect(() => q.ack(SM_WRAP)).toThrow(RangeError);
    expect(() => q.ack(1.5)).toThrow(RangeError);
  });
});
