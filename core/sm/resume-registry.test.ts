import { describe, expect, it } from "vitest";
import { ResumeRegistry } from "./resume-registry.js";

interface Sess { name: string }
const A = "alice@example.org";
const B = "bob@example.org";

describe("ResumeRegistry", () => {
  it("issues opaque base64url ids of ≥ 16 random bytes, distinct", () => {
    const r = new ResumeRegistry<Sess>();
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = r.issue(A, { name: String(i) });
      expect(id).toMatch(/^[A-Za-z0-9_-]{22,}$/);
      expect(Buffer.from(id, "base64url").length).toBeGreaterThanOrEqual(16);
      ids.add(id);
    }
    expect(ids.size).toBe(1000);
    expect(r.size).toBe(1000);
  });

  it("draws again on a collision with a live id or a tombstone", () => {
    const seq = [Buffer.alloc(18, 1), Buffer.alloc(18, 1), Buffer.alloc(18, 2), Buffer.alloc(18, 2), Buffer.alloc(18, 2), Buffer.alloc(18, 3)];
    let i = 0;
    const r = new ResumeRegistry<Sess>({ random: () => seq[i++]! });
    const first = r.issue(A, { name: "1" });
    const second = r.issue(A, { name: "2" });
    expect(second).not.toBe(first);
    expect(second).toBe(Buffer.alloc(18, 2).toString("base64url"));
    r.expire(second, 4, 0);
    const third = r.issue(B, { name: "3" });
    expect(third).toBe(Buffer.alloc(18, 3).toString("base64url"));
    expect(i).toBe(6);
  });

  it("finds a live session only for its own account; another account's id looks unknown", () => {
    const r = new ResumeRegistry<Sess>();
    const s = { name: "phone" };
    const id = r.issue(A, s);
    expect(r.lookup(id, A)).toEqual({ kind: "live", session: s, hibernating: false });
    expect(r.lookup(id, B)).toEqual(r.lookup("no-such-id", B));
    expect(r.lookup(id, B)).toEqual({ kind: "failed" });
    expect(r.lookup(id, "ALICE@example.org")).toEqual({ kind: "failed" });
  });

  it("hibernates and wakes", () => {
    const r = new ResumeRegistry<Sess>();
    const s = { name: "phone" };
    const id = r.issue(A, s);
    expect(r.hibernate(id, 1000, 300_000)).toBe(true);
    expect(r.isHibernating(id)).toBe(true);
    expect(r.deadline(id)).toBe(301_000);
    expect(r.lookup(id, A)).toEqual({ kind: "live", session: s, hibernating: true });
    expect(r.hibernatingCount).toBe(1);
    expect(r.wake(id)).toBe(true);
    expect(r.isHibernating(id)).toBe(false);
    expect(r.deadline(id)).toBeUndefined();
    expect(r.lookup(id, A)).toEqual({ kind: "live", session: s, hibernating: false });
    expect(r.hibernate("nope", 0, 1)).toBe(false);
    expect(r.wake("nope")).toBe(false);
  });

  it("reports due expiries and the next deadline; the core reads no clock", () => {
    const r = new ResumeRegistry<Sess>();
    const a = r.issue(A, { name: "a" });
    const b = r.issue(A, { name: "b" });
    const c = r.issue(B, { name: "c" });
    expect(r.nextDeadline()).toBeUndefined();
    r.hibernate(a, 0, 100);
    r.hibernate(b, 50, 20);
    expect(r.nextDeadline()).toBe(70);
    expect(r.dueExpiries(69)).toEqual([]);
    expect(r.dueExpiries(70)).toEqual([b]);
    expect(r.dueExpiries(100).sort()).toEqual([a, b].sort());
    r.expire(b, 3, 70);
    expect(r.nextDeadline()).toBe(100);
    expect(r.dueExpiries(1000)).toEqual([a]);
    expect(r.dueExpiries(1000)).not.toContain(c);
  });

  it("expire leaves a tombstone with h, for its own account only", () => {
    const r = new ResumeRegistry<Sess>();
    const id = r.issue(A, { name: "phone" });
    r.hibernate(id, 0, 10);
    expect(r.expire(id, 42, 10)).toBe(true);
    expect(r.size).toBe(0);
    expect(r.tombstoneCount).toBe(1);
    expect(r.lookup(id, A)).toEqual({ kind: "failed", h: 42 });
    expect(r.lookup(id, A)).toEqual({ kind: "failed", h: 42 }); // not consumed
    expect(r.lookup(id, B)).toEqual({ kind: "failed" });
    expect(r.expire(id, 1, 10)).toBe(false);
    expect(r.wake(id)).toBe(false);
    expect(r.hibernate(id, 0, 1)).toBe(false);
  });

  it("expire works on a live (not hibernating) session too (queue overflow)", () => {
    const r = new ResumeRegistry<Sess>();
    const id = r.issue(A, { name: "x" });
    expect(r.expire(id, 0, 5)).toBe(true);
    expect(r.lookup(id, A)).toEqual({ kind: "failed", h: 0 });
  });

  it("remove (clean close) forgets the id without a tombstone", () => {
    const r = new ResumeRegistry<Sess>();
    const id = r.issue(A, { name: "x" });
    expect(r.remove(id)).toBe(true);
    expect(r.lookup(id, A)).toEqual({ kind: "failed" });
    expect(r.tombstoneCount).toBe(0);
    expect(r.remove(id)).toBe(false);
  });

  it("bounds tombstones by count, oldest first", () => {
    const r = new ResumeRegistry<Sess>({ maxTombstones: 3 });
    const ids = Array.from({ length: 5 }, (_, i) => r.issue(A, { name: String(i) }));
    ids.forEach((id, i) => r.expire(id, i, i));
    expect(r.tombstoneCount).toBe(3);
    expect(r.lookup(ids[0]!, A)).toEqual({ kind: "failed" });
    expect(r.lookup(ids[1]!, A)).toEqual({ kind: "failed" });
    expect(r.lookup(ids[2]!, A)).toEqual({ kind: "failed", h: 2 });
    expect(r.lookup(ids[4]!, A)).toEqual({ kind: "failed", h: 4 });
  });

  it("sweep drops tombstones older than tombstoneMs; an undated one is dated by the first sweep", () => {
    const r = new ResumeRegistry<Sess>({ tombstoneMs: 1000 });
    const old = r.issue(A, { name: "old" });
    const undated = r.issue(A, { name: "undated" });
    const young = r.issue(A, { name: "young" });
    r.expire(old, 1, 0);
    r.expire(undated, 2);
    r.expire(young, 3, 900);
    r.sweep(999);
    expect(r.tombstoneCount).toBe(3);
    r.sweep(1000);
    expect(r.lookup(old, A)).toEqual({ kind: "failed" });
    expect(r.lookup(undated, A)).toEqual({ kind: "failed", h: 2 });
    expect(r.lookup(young, A)).toEqual({ kind: "failed", h: 3 });
    r.sweep(1900);
    expect(r.lookup(young, A)).toEqual({ kind: "failed" });
    expect(r.lookup(undated, A)).toEqual({ kind: "failed", h: 2 });
    r.sweep(1999);
    expect(r.tombstoneCount).toBe(0);
  });

  it("sweep leaves live and hibernating sessions alone", () => {
    const r = new ResumeRegistry<Sess>({ tombstoneMs: 1 });
    const id = r.issue(A, { name: "x" });
    r.hibernate(id, 0, 10);
    r.sweep(1_000_000);
    expect(r.lookup(id, A)).toMatchObject({ kind: "live" });
  });

  it("refuses bad options", () => {
    expect(() => new ResumeRegistry({ maxTombstones: -1 })).toThrow(RangeError);
    expect(() => new ResumeRegistry({ tombstoneMs: -1 })).toThrow(RangeError);
  });
});

describe("ResumeRegistry with a broken random source", () => {
  it("throws instead of spinning when every draw repeats a known id", () => {
    const r = new ResumeRegistry<string>({ random: () => Buffer.alloc(18, 7) });
    r.issue(A, "first");
    expect(() => r.issue(A, "second")).toThrow(/random source/);
    expect(r.size).toBe(1);
  });
});
