import { describe, expect, it } from "vitest";
import { BufferBudget } from "./buffer-budget.js";

/** Holders are names; `queued` is what each really has queued (the sockets' truth). */
function budget(cap: number): { b: BufferBudget<string>; queued: Map<string, number> } {
  const queued = new Map<string, number>();
  return { b: new BufferBudget(cap, (h) => queued.get(h) ?? 0), queued };
}

describe("BufferBudget (--max-buffered-bytes)", () => {
  it("under the cap: counts, cuts nobody; forget and 0 remove a holder", () => {
    const { b, queued } = budget(1000);
    queued.set("a", 400).set("b", 500);
    expect(b.note("a", 400)).toBeUndefined();
    expect(b.note("b", 500)).toBeUndefined();
    expect(b.total).toBe(900);
    expect(b.note("a", 0)).toBeUndefined();
    expect(b.total).toBe(500);
    b.forget("b");
    b.forget("b"); // twice is harmless
    expect(b.total).toBe(0);
    expect(b.size).toBe(0);
  });

  it("over the cap: the holders with the most queued are cut first, only as many as needed", () => {
    const { b, queued } = budget(1000);
    for (const [h, n] of [["small", 100], ["big", 600], ["mid", 300]] as const) {
      queued.set(h, n);
      expect(b.note(h, n)).toBeUndefined();
    }
    queued.set("small", 250);
    const v = b.note("small", 250);
    expect(v?.total).toBe(1150);
    expect(v?.victims).toEqual([{ holder: "big", bytes: 600 }]);
    expect(b.total).toBe(550);
    expect(b.size).toBe(2);
  });

  it("cuts several when one is not enough (the recount finds more than was reported)", () => {
    const { b, queued } = budget(100);
    b.note("a", 10);
    b.note("b", 10);
    queued.set("a", 90).set("b", 80).set("c", 95);
    const v = b.note("c", 95);
    expect(v?.total).toBe(265);
    expect(v?.victims).toEqual([{ holder: "c", bytes: 95 }, { holder: "a", bytes: 90 }]);
    expect(b.total).toBe(80);
    // a single holder over the cap on its own is cut, alone
    queued.set("e", 200);
    expect(b.note("e", 200)?.victims.map((x) => x.holder)).toEqual(["e"]);
    expect(b.total).toBe(80);
  });

  it("stale reports are recounted before anyone is cut: drained sockets are not blamed", () => {
    const { b, queued } = budget(1000);
    queued.set("a", 900);
    b.note("a", 900);
    queued.set("a", 10); // drained since, without a new report
    queued.set("b", 500);
    expect(b.note("b", 500)).toBeUndefined();
    expect(b.total).toBe(510);
    // a holder found empty at the recount is no longer tracked
    queued.set("a", 0);
    queued.set("b", 995);
    expect(b.note("b", 995)).toBeUndefined();
    expect(b.size).toBe(1);
  });
});
