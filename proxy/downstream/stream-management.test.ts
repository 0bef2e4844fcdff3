import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ACK_AFTER_MS, ClientSm } from "./stream-management.js";

const R = "<r xmlns='urn:xmpp:sm:3'/>";

function sm(opts: Partial<{ maxQueue: number; maxQueueBytes: number; ackEvery: number }> = {}): { sm: ClientSm; out: string[] } {
  const out: string[] = [];
  const s = new ClientSm((x) => out.push(x), { maxQueue: 100, maxQueueBytes: 1 << 20, ackEvery: 3, id: "id1", timeoutMs: 300_000, ...opts });
  return { sm: s, out };
}

describe("ClientSm (the proxy side of one XEP-0198 session)", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("answers <r/> with the count of stanzas handled from the client", () => {
    const { sm: s, out } = sm();
    s.inbound.handled("message");
    s.inbound.handled("iq");
    s.inbound.handled("r"); // a nonza is not counted
    s.onRequest();
    expect(out).toEqual(["<a xmlns='urn:xmpp:sm:3' h='2'/>"]);
  });

  it("asks for an ack after --sm-ack-every stanzas, one request at a time, and again after the <a/>", () => {
    const { sm: s, out } = sm({ ackEvery: 3 });
    for (let i = 0; i < 2; i++) (s.push(`<message id='${i}'/>`), s.afterSend());
    expect(out).toEqual([]);
    s.push("<message id='2'/>");
    s.afterSend();
    expect(out).toEqual([R]);
    for (let i = 3; i < 8; i++) (s.push(`<message id='${i}'/>`), s.afterSend());
    expect(out).toEqual([R]); // still waiting for the answer to the first
    expect(s.onAck(3)).toBeUndefined();
    expect(out).toEqual([R, R]); // five more were written meanwhile
    expect(s.unacked).toBe(5);
  });

  it("asks after ACK_AFTER_MS when fewer stanzas wait; a hibernating session asks nothing", () => {
    const { sm: s, out } = sm({ ackEvery: 100 });
    s.push("<message/>");
    s.afterSend();
    vi.advanceTimersByTime(ACK_AFTER_MS - 1);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual([R]);

    const b = sm({ ackEvery: 100 });
    b.sm.push("<message/>");
    b.sm.afterSend();
    b.sm.hibernate();
    b.sm.push("<message/>");
    b.sm.afterSend();
    vi.advanceTimersByTime(ACK_AFTER_MS * 3);
    expect(b.out).toEqual([]);
  });

  it("an h above what was sent is the <handled-count-too-high/> condition; nothing is released", () => {
    const { sm: s } = sm();
    s.push("<message/>");
    expect(s.onAck(2)).toBe("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='2' send-count='1'/>");
    expect(s.unacked).toBe(1);
    expect(s.resumeTooHigh(2)).toBe("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='2' send-count='1'/>");
    expect(s.resumeTooHigh(1)).toBeUndefined();
  });

  it("a resume releases what the client handled and hands back the rest, in order, still queued; then asks for an ack", () => {
    const { sm: s, out } = sm();
    const T = Date.UTC(2026, 11, 1, 9, 0, 0);
    s.push("<message id='a'/>", T);
    s.push(Buffer.from("<message id='own'/>"), T + 1000);
    s.push("<iq id='c' type='result'/>", T + 2000);
    s.hibernate();
    // re-sent in order, each message/presence stamped with when it was queued (XEP-0203, from the server)
    expect(s.resume(1, "example.org").map(String)).toEqual([
      `<message id="own"><delay xmlns="urn:xmpp:delay" from="example.org" stamp="2026-12-01T09:00:01.000Z"/></message>`,
      "<iq id='c' type='result'/>",
    ]);
    expect(s.unacked).toBe(2);
    s.resumed();
    expect(out).toEqual([R]);
  });

  it("push reports the bound (count or bytes); end drains everything, oldest first", () => {
    const { sm: s } = sm({ maxQueue: 2 });
    expect(s.push("<message id='1'/>")).toBe(true);
    expect(s.push("<message id='2'/>")).toBe(true);
    expect(s.push("<message id='3'/>")).toBe(false);
    expect(s.end()).toEqual(["<message id='1'/>", "<message id='2'/>", "<message id='3'/>"]);
    expect(s.unacked).toBe(0);
    const bytes = sm({ maxQueueBytes: 20 });
    expect(bytes.sm.push("<message id='1'/>")).toBe(true);
    expect(bytes.sm.push("<message id='2'/>")).toBe(false);
  });
});
