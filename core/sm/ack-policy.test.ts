import { describe, expect, it } from "vitest";
import { AckPolicy } from "./ack-policy.js";

const policy = (): AckPolicy => new AckPolicy({ everyStanzas: 5, everyMs: 1000 });

describe("AckPolicy", () => {
  it("nothing unacked: nothing to do", () => {
    expect(policy().afterSend(0, 0)).toBe("none");
  });

  it("few stanzas: arms a timer for the oldest one's age limit, once", () => {
    const p = policy();
    expect(p.afterSend(1, 100)).toEqual({ armMs: 1000 });
    expect(p.afterSend(2, 300)).toBe("none"); // already armed for 1100
    expect(p.onTimer(2, 1100)).toBe("request");
    p.onRequestSent(1100);
    expect(p.awaitingAck).toBe(true);
  });

  it("asks at once at everyStanzas unacked", () => {
    const p = policy();
    for (let n = 1; n < 5; n++) expect(p.afterSend(n, n)).not.toBe("request");
    expect(p.afterSend(5, 5)).toBe("request");
  });

  it("asks when the oldest output is already everyMs old", () => {
    const p = policy();
    p.afterSend(1, 0);
    expect(p.afterSend(2, 1000)).toBe("request");
  });

  it("at most one <r/> outstanding, whatever is sent meanwhile", () => {
    const p = policy();
    expect(p.afterSend(5, 0)).toBe("request");
    p.onRequestSent(0);
    for (let n = 6; n < 100; n++) expect(p.afterSend(n, n * 100)).toBe("none");
    expect(p.onTimer(100, 1_000_000)).toBe("none");
  });

  it("after the <a/>, output written while waiting keeps its age", () => {
    const p = policy();
    p.afterSend(5, 0);
    p.onRequestSent(0);
    p.afterSend(6, 200); // first stanza after the request, at 200
    p.afterSend(7, 300);
    p.onAck();
    expect(p.awaitingAck).toBe(false);
    expect(p.afterSend(2, 500)).toEqual({ armMs: 700 }); // due at 200 + 1000
    expect(p.onTimer(2, 1200)).toBe("request");
  });

  it("after the <a/>, a full window asks again at once", () => {
    const p = policy();
    p.afterSend(5, 0);
    p.onRequestSent(0);
    p.afterSend(12, 10);
    p.onAck();
    expect(p.afterSend(7, 20)).toBe("request");
  });

  it("an <a/> that clears the queue clears the pending age", () => {
    const p = policy();
    p.afterSend(1, 0);
    p.onAck();
    expect(p.afterSend(0, 10)).toBe("none");
    expect(p.afterSend(1, 5000)).toEqual({ armMs: 1000 });
  });

  it("re-arms after the timer fired with nothing to ask yet", () => {
    const p = policy();
    expect(p.afterSend(1, 0)).toEqual({ armMs: 1000 });
    p.onAck(); // unsolicited <a/> acking everything
    expect(p.afterSend(0, 10)).toBe("none");
    expect(p.onTimer(0, 1000)).toBe("none");
    expect(p.afterSend(1, 1500)).toEqual({ armMs: 1000 });
  });

  it("a request sent clears the armed timer so the next output arms a new one", () => {
    const p = policy();
    expect(p.afterSend(1, 0)).toEqual({ armMs: 1000 });
    expect(p.afterSend(5, 10)).toBe("request");
    p.onRequestSent(10);
    p.onAck();
    expect(p.afterSend(1, 20)).toEqual({ armMs: 1000 });
  });

  it("after a resume: ask at once when anything was re-sent; the old request is forgotten", () => {
    const p = policy();
    p.afterSend(5, 0);
    p.onRequestSent(0);
    expect(p.onResumed(3, 50)).toBe("request");
    expect(p.awaitingAck).toBe(false);
    const q = policy();
    expect(q.onResumed(0, 0)).toBe("none");
  });

  it("refuses bad options", () => {
    expect(() => new AckPolicy({ everyStanzas: 0, everyMs: 1 })).toThrow(RangeError);
    expect(() => new AckPolicy({ everyStanzas: 1, everyMs: 0 })).toThrow(RangeError);
  });
});
