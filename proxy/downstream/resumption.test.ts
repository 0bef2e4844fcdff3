import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Resumption, type Resumable } from "./resumption.js";

class Session implements Resumable {
  expired: string[] = [];
  constructor(private readonly r: Resumption<Session>, public id = "") {}
  expire(reason: string): void {
    this.expired.push(reason);
    this.r.expire(this.id, 7);
  }
}

describe("Resumption (ids and the hibernation timer)", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a hibernating session expires at its deadline; the id then answers with its h", () => {
    const r = new Resumption<Session>();
    const s = new Session(r);
    s.id = r.issue("alice@example.org", s);
    r.hibernate(s.id, s, 2000);
    expect(r.hibernatingCount).toBe(1);
    vi.advanceTimersByTime(1999);
    expect(s.expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(s.expired).toEqual(["hibernated too long"]);
    expect(r.hibernatingCount).toBe(0);
    expect(r.lookup(s.id, "alice@example.org")).toEqual({ kind: "failed", h: 7 });
  });

  it("a session woken before its deadline does not expire; one timer serves several sessions", () => {
    const r = new Resumption<Session>();
    const a = new Session(r);
    const b = new Session(r);
    a.id = r.issue("alice@example.org", a);
    b.id = r.issue("alice@example.org", b);
    r.hibernate(a.id, a, 1000);
    r.hibernate(b.id, b, 3000);
    r.wake(a.id);
    vi.advanceTimersByTime(2000);
    expect(a.expired).toEqual([]);
    expect(r.lookup(a.id, "alice@example.org")).toMatchObject({ kind: "live", hibernating: false });
    vi.advanceTimersByTime(1000);
    expect(b.expired).toEqual(["hibernated too long"]);
  });

  it("ids are bound to their account; a clean close forgets the id (no h)", () => {
    const r = new Resumption<Session>();
    const s = new Session(r);
    s.id = r.issue("alice@example.org", s);
    expect(r.lookup(s.id, "bob@example.org")).toEqual({ kind: "failed" });
    r.remove(s.id);
    expect(r.lookup(s.id, "alice@example.org")).toEqual({ kind: "failed" });
  });

  it("shutdown ends every hibernating session at once", () => {
    const r = new Resumption<Session>();
    const s = new Session(r);
    s.id = r.issue("alice@example.org", s);
    r.hibernate(s.id, s, 300_000);
    r.shutdown();
    expect(s.expired).toEqual(["proxy shutdown"]);
    expect(r.hibernatingCount).toBe(0);
  });
});
