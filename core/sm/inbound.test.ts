import { describe, expect, it } from "vitest";
import { SM_WRAP } from "./counter.js";
import { InboundCounter } from "./inbound.js";

describe("InboundCounter", () => {
  it("starts at 0 and counts only stanzas (XEP-0198 §4)", () => {
    const c = new InboundCounter();
    expect(c.h).toBe(0);
    expect(c.handled("message")).toBe(true);
    expect(c.handled("r")).toBe(false);
    expect(c.handled("a")).toBe(false);
    expect(c.handled("enable")).toBe(false);
    expect(c.handled("iq")).toBe(true);
    expect(c.handled("presence")).toBe(true);
    expect(c.handled("presence", "urn:example")).toBe(false);
    expect(c.h).toBe(3);
  });

  it("wraps from 2^32-1 to 0", () => {
    const c = new InboundCounter(SM_WRAP - 1);
    c.handled("iq");
    expect(c.h).toBe(0);
    c.handled("iq");
    expect(c.h).toBe(1);
  });

  it("refuses a start outside the counter space", () => {
    expect(() => new InboundCounter(SM_WRAP)).toThrow(RangeError);
    expect(() => new InboundCounter(-1)).toThrow(RangeError);
  });
});
