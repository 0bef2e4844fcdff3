import { describe, expect, it } from "vitest";
import { SM_HALF, SM_WRAP, addCount, countDiff, isCounted, nextCount, parseH } from "./counter.js";

describe("counters mod 2^32 (XEP-0198 §4)", () => {
  it("nextCount wraps from 2^32-1 to 0", () => {
    expect(SM_WRAP).toBe(4294967296);
    expect(nextCount(0)).toBe(1);
    expect(nextCount(SM_WRAP - 2)).toBe(SM_WRAP - 1);
    expect(nextCount(SM_WRAP - 1)).toBe(0);
  });

  it("addCount wraps", () => {
    expect(addCount(SM_WRAP - 2, 4)).toBe(2);
    expect(addCount(5, 0)).toBe(5);
    expect(addCount(1, SM_WRAP)).toBe(1);
  });

  it("countDiff is the forward distance mod 2^32", () => {
    expect(countDiff(5, 2)).toBe(3);
    expect(countDiff(1, SM_WRAP - 2)).toBe(3);
    expect(countDiff(7, 7)).toBe(0);
    expect(countDiff(2, 5)).toBe(SM_WRAP - 3);
    expect(countDiff(2, 5) >= SM_HALF).toBe(true);
    expect(countDiff(0, SM_WRAP - 1)).toBe(1);
  });
});

describe("isCounted", () => {
  it("counts only iq, message, presence", () => {
    for (const n of ["iq", "message", "presence"]) expect(isCounted(n)).toBe(true);
    for (const n of ["r", "a", "enable", "resume", "stream:features", "starttls", "auth", "active", "Message", ""]) expect(isCounted(n)).toBe(false);
  });

  it("honours the namespace when given (jabber:client only)", () => {
    expect(isCounted("message", "jabber:client")).toBe(true);
    expect(isCounted("message", "urn:xmpp:sm:3")).toBe(false);
    expect(isCounted("iq", "jabber:server")).toBe(false);
  });
});

describe("parseH (strict xs:unsignedInt)", () => {
  it("accepts decimal digits 0..2^32-1", () => {
    expect(parseH("0")).toBe(0);
    expect(parseH("42")).toBe(42);
    expect(parseH("4294967295")).toBe(SM_WRAP - 1);
    expect(parseH("007")).toBe(7);
    expect(parseH("0000000000004294967295")).toBe(SM_WRAP - 1);
  });

  it("refuses everything else", () => {
    for (const bad of [undefined, "", " 1", "1 ", "+1", "-1", "1.0", "1e3", "0x10", "4294967296", "99999999999", "abc", "١٢", "1_000", "Infinity", "NaN"]) {
      expect(parseH(bad), String(bad)).toBeUndefined();
    }
  });
});
