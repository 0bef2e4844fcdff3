import { describe, expect, it } from "vitest";
import { bare, isBareOf, jidEquals, jidToString, parseJid, rawBare, rawDomain, rawLocal, splitBare, splitJid, splitRaw, toString, withResource } from "./jid.js";

describe("parseJid", () => {
  it("parses the three forms", () => {
    expect(parseJid("example.com")).toEqual({ domain: "example.com" });
    expect(parseJid("juliet@example.com")).toEqual({ local: "juliet", domain: "example.com" });
    expect(parseJid("juliet@example.com/balcony")).toEqual({ local: "juliet", domain: "example.com", resource: "balcony" });
    expect(parseJid("example.com/res")).toEqual({ domain: "example.com", resource: "res" });
  });

  it("omits absent parts instead of setting undefined", () => {
    expect(Object.keys(parseJid("example.com") ?? {})).toEqual(["domain"]);
  });

  it("splits at the first / then the first @ (RFC 7622 §3.1)", () => {
    expect(parseJid("juliet@example.com/foo@bar/baz")).toEqual({ local: "juliet", domain: "example.com", resource: "foo@bar/baz" });
    expect(parseJid("example.com/a@b")).toEqual({ domain: "example.com", resource: "a@b" });
  });

  it("lowercases domain and localpart, preserves resource case", () => {
    expect(parseJid("Juliet@Example.COM/Balcony")).toEqual({ local: "juliet", domain: "example.com", resource: "Balcony" });
    expect(parseJid("ÄÖ@Bücher.DE")).toEqual({ local: "äö", domain: "bücher.de" });
  });

  it("strips one trailing dot of the domain and maps IDNA full stops", () => {
    expect(parseJid("a@example.com.")?.domain).toBe("example.com");
    expect(parseJid("example\u3002com")?.domain).toBe("example.com");
    expect(parseJid("example.com..")).toBeNull();
    expect(parseJid(".")).toBeNull();
  });

  it("NFC-normalises", () => {
    expect(parseJid("u\u0308@example.com/x\u0308")).toEqual({ local: "\u00fc", domain: "example.com", resource: "\u1e8d" });
  });

  it("accepts IPv4 and bracketed IPv6 domains", () => {
    expect(parseJid("u@127.0.0.1")?.domain).toBe("127.0.0.1");
    expect(parseJid("u@[::1]/r")).toEqual({ local: "u", domain: "[::1]", resource: "r" });
    expect(parseJid("u@[2001:DB8::1]")?.domain).toBe("[2001:db8::1]");
    expect(parseJid("u@[nope]")).toBeNull();
    expect(parseJid("u@[::1")).toBeNull();
  });

  it.each([
    "",
    "@example.com",
    "u@",
    "example.com/",
    "u@example.com/",
    "/res",
    "u@@example.com",
    "a@b@example.com",
    "ex ample.com",
    "example..com",
    ".example.com",
    "example.com:5222",
    "exa<mple.com",
    `${"a".repeat(64)}.com`,
  ])("rejects %j", (s) => {
    expect(parseJid(s)).toBeNull();
  });

  it.each(['"', "&", "'", "/", ":", "<", ">", " ", "\t", "\u00a0", "\u0000", "\u007f"])("rejects %j in the localpart", (c) => {
    // "/" would start the resource and "@" the domain, so embed them where they must be local.
    const jid = c === "/" ? "a/b@example.com" : `a${c}b@example.com`;
    const parsed = parseJid(jid);
    if (c === "/") expect(parsed).toEqual({ domain: "a", resource: "b@example.com" });
    else expect(parsed).toBeNull();
  });

  it("rejects control characters in the resource but allows spaces", () => {
    expect(parseJid("u@example.com/a\u0001")).toBeNull();
    expect(parseJid("u@example.com/my phone")?.resource).toBe("my phone");
  });

  it("enforces 1023 octets per part (RFC 7622 §3)", () => {
    expect(parseJid(`${"a".repeat(1023)}@example.com`)).not.toBeNull();
    expect(parseJid(`${"a".repeat(1024)}@example.com`)).toBeNull();
    expect(parseJid(`u@example.com/${"r".repeat(1023)}`)).not.toBeNull();
    expect(parseJid(`u@example.com/${"r".repeat(1024)}`)).toBeNull();
    // octets, not characters: 512 × 2-octet "é" = 1024 octets
    expect(parseJid(`${"é".repeat(511)}@example.com`)).not.toBeNull();
    expect(parseJid(`${"é".repeat(512)}@example.com`)).toBeNull();
    const longDomain = Array.from({ length: 17 }, () => "a".repeat(60)).join(".");
    expect(parseJid(longDomain)).toBeNull(); // 1036 octets
    expect(parseJid("x".repeat(10_000))).toBeNull();
  });
});

describe("bare / toString", () => {
  it("bare drops the resource", () => {
    expect(bare({ local: "a", domain: "b", resource: "c" })).toEqual({ local: "a", domain: "b" });
    expect(bare({ domain: "b", resource: "c" })).toEqual({ domain: "b" });
  });
  it("toString serialises every form and round-trips", () => {
    for (const s of ["example.com", "a@example.com", "a@example.com/r/x@y", "example.com/r"]) {
      const j = parseJid(s);
      expect(j).not.toBeNull();
      if (j) expect(toString(j)).toBe(s);
    }
    expect(jidToString({ local: "a", domain: "b" })).toBe("a@b");
  });
});

describe("jidEquals / isBareOf", () => {
  it("compares normalised forms", () => {
    expect(jidEquals("Juliet@Example.com/r", "juliet@example.com./r")).toBe(true);
    expect(jidEquals("juliet@example.com/R", "juliet@example.com/r")).toBe(false);
    expect(jidEquals("juliet@example.com", "juliet@example.com/r")).toBe(false);
    expect(jidEquals({ local: "JULIET", domain: "EXAMPLE.COM" }, "juliet@example.com")).toBe(true);
    expect(jidEquals("bad jid", "bad jid")).toBe(false);
  });
  it("isBareOf", () => {
    expect(isBareOf("Juliet@example.com/balcony", "juliet@EXAMPLE.com")).toBe(true);
    expect(isBareOf("juliet@example.com", "juliet@example.com")).toBe(true);
    expect(isBareOf("romeo@example.com/x", "juliet@example.com")).toBe(false);
    expect(isBareOf("juliet@example.com/x", "juliet@example.com/x")).toBe(false);
    expect(isBareOf("example.com/x", "example.com")).toBe(true);
    expect(isBareOf("juliet@example.com/x", "example.com")).toBe(false);
    expect(isBareOf("", "example.com")).toBe(false);
  });
});

describe("splitJid (the room machine's per-stanza reading)", () => {
  it("lowercases node and domain, keeps the resource (nick) as is, splits at the first slash", () => {
    expect(splitJid("Room@Conference.Example.ORG/Nick/with@slash")).toEqual({
      local: "room", domain: "conference.example.org", resource: "Nick/with@slash", bare: "room@conference.example.org",
    });
    expect(splitJid("example.org")?.bare).toBe("example.org");
    expect(splitJid("a@b/")).toBeUndefined();
    expect(splitJid("@b")).toBeUndefined();
    expect(splitJid(undefined)).toBeUndefined();
  });

  it("drops one trailing dot of the domain, and does no NFC", () => {
    expect(splitBare("Room@Conference.Example.ORG.")).toBe("room@conference.example.org");
    expect(splitJid("cafe\u0301@x")?.local).toBe("cafe\u0301");
    expect(splitBare("x")).toBe("x");
    expect(withResource("room@conference.example.org", "Nick/2")).toBe("room@conference.example.org/Nick/2");
  });
});

describe("splitRaw and the raw readings (no normalisation)", () => {
  it("split at the first / then the first @, exactly as written", () => {
    expect(splitRaw("A@B/c@d/e")).toEqual({ local: "A", domain: "B", resource: "c@d/e" });
    expect(splitRaw("B")).toEqual({ local: undefined, domain: "B", resource: undefined });
    expect(splitRaw("@B/")).toEqual({ local: "", domain: "B", resource: "" });
    expect(rawBare("Room@Conf/Nick/x")).toBe("Room@Conf");
    expect(rawBare("Room@Conf")).toBe("Room@Conf");
    expect(rawBare("/x")).toBe("");
    expect(rawLocal("Juliet@Example.com")).toBe("Juliet");
    expect(rawLocal("example.com")).toBe("");
    expect(rawDomain("Juliet@Example.com")).toBe("Example.com");
    expect(rawDomain("example.com")).toBe("example.com");
  });
});
