import { describe, expect, it } from "vitest";
import { saslprep } from "./saslprep.js";

describe("saslprep (RFC 4013)", () => {
  it("leaves printable ASCII as it is", () => {
    expect(saslprep("user")).toBe("user");
    expect(saslprep("p a=s,s~")).toBe("p a=s,s~");
    expect(saslprep("")).toBe("");
  });

  it("§2.1 maps non-ASCII spaces to U+0020 and B.1 characters to nothing; §2.2 NFKC", () => {
    // the examples of RFC 4013 §3
    expect(saslprep("I\u00ADX")).toBe("IX");
    expect(saslprep("\u00AA")).toBe("a");
    expect(saslprep("\u2168")).toBe("IX");
    expect(saslprep("a\u00A0b\u3000c")).toBe("a b c");
    expect(saslprep("a\u200Bb")).toBe("a b"); // C.1.2 before B.1, as libidn does
    expect(saslprep("a\uFE0Fb")).toBe("ab");
  });

  it("returns null when nothing is left after mapping", () => {
    expect(saslprep("\u00AD")).toBeNull();
  });

  it.each([
    ["C.2.1 ASCII control", "a\u0007b"],
    ["C.2.1 NUL", "us\u0000er"],
    ["C.2.2 non-ASCII control", "a\u0085b"],
    ["C.3 private use", "\uE000"],
    ["C.3 supplementary private use", "a\u{F0000}"],
    ["C.4 non-character", "a\uFDD0"],
    ["C.4 U+FFFF", "a\uFFFF"],
    ["C.5 lone high surrogate", "a\uD800"],
    ["C.5 lone low surrogate", "\uDC00a"],
    ["C.6 replacement character", "a\uFFFD"],
    ["C.7 ideographic description", "a\u2FF0"],
    ["C.8 left-to-right mark", "a\u200E"],
    ["C.8 right-to-left override", "\u202Eab"],
    ["C.9 language tag", "a\u{E0001}"],
  ])("§2.3 prohibits %s", (_what, s) => {
    expect(saslprep(s)).toBeNull();
  });

  it("§2.4 bidi (RFC 3454 §6): RandALCat and LCat must not mix", () => {
    expect(saslprep("\u05D0\u05D1")).toBe("\u05D0\u05D1"); // Hebrew only
    expect(saslprep("\u05D0a\u05D1")).toBeNull(); // Hebrew around a Latin letter
    expect(saslprep("a\u0627b")).toBeNull(); // Latin around an Arabic letter
  });

  it("§2.4 bidi: a string with RandALCat must start and end with RandALCat", () => {
    // RFC 3454 §6's own example: U+0627 U+0031 U+0628 is fine, U+0627 U+0031 is not
    expect(saslprep("\u0627\u0031\u0628")).toBe("\u0627\u0031\u0628");
    expect(saslprep("\u0627\u0031")).toBeNull();
    expect(saslprep("\u0031\u0627")).toBeNull();
    expect(saslprep("\u05D0 \u05D1")).toBe("\u05D0 \u05D1"); // neutral characters inside are fine
  });

  it("allows unassigned code points (prepared as a query: the upstream server decides)", () => {
    expect(saslprep("pass\u{1F642}")).toBe("pass\u{1F642}"); // unassigned in Unicode 3.2
    expect(saslprep("a\u0221")).toBe("a\u0221");
  });
});
