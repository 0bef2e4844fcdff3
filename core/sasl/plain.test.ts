import { describe, expect, it } from "vitest";
import { decodeSaslBase64, encodeSaslBase64 } from "./base64.js";
import { SaslError } from "./errors.js";
import { encodePlain, parsePlainResponse } from "./plain.js";

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

function expectSasl(fn: () => unknown, condition: string, code?: string): SaslError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SaslError);
    const e = err as SaslError;
    expect(e.condition).toBe(condition);
    if (code !== undefined) expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected SaslError ${condition}`);
}

describe("parsePlainResponse", () => {
  it("parses without authzid (RFC 4616 §4 example shape)", () => {
    expect(parsePlainResponse(b64("\0tim\0tanstaaftanstaaf"))).toEqual({ authzid: "", authcid: "tim", password: "tanstaaftanstaaf" });
  });

  it("parses with authzid", () => {
    expect(parsePlainResponse(b64("Kurt@example.com\0kurt\0xipj3plmq"))).toEqual({
      authzid: "Kurt@example.com",
      authcid: "kurt",
      password: "xipj3plmq",
    });
  });

  it("keeps UTF-8 and spaces in the password as-is", () => {
    expect(parsePlainResponse(b64("\0jürgen\0pä ss wörd ")).password).toBe("pä ss wörd ");
  });

  it("tolerates surrounding XML whitespace", () => {
    expect(parsePlainResponse(`\n  ${b64("\0u\0p")}\n`).authcid).toBe("u");
  });

  it.each([
    ["\"=\" (empty response, RFC 6120 §6.4.2)", "="],
    ["no content", ""],
  ])("rejects %s as malformed-request", (_n, input) => {
    expectSasl(() => parsePlainResponse(input), "malformed-request", "SASL_MALFORMED");
  });

  it.each([
    ["invalid characters", "AHUAcA==!"],
    ["URL-safe alphabet", b64("\0u\0p??>").replace(/\+/g, "-").replace(/\//g, "_") + "_"],
    ["missing padding", "AHUAcA"],
    ["internal whitespace", "AHUA cA=="],
    ["non-canonical trailing bits", "AHUAcB=="],
    ["data after padding", "AHUAcA==AHUAcA=="],
  ])("rejects bad base64 (%s) as incorrect-encoding", (_n, input) => {
    expectSasl(() => parsePlainResponse(input), "incorrect-encoding", "SASL_INCORRECT_ENCODING");
  });

  it.each([
    ["one NUL", "u\0p"],
    ["no NUL", "up"],
    ["three NULs", "\0u\0p\0"],
    ["empty authcid", "z\0\0p"],
    ["empty password", "\0u\0"],
    ["only separators", "\0\0"],
  ])("rejects %s", (_n, raw) => {
    expectSasl(() => parsePlainResponse(b64(raw)), "malformed-request");
  });

  it("rejects invalid UTF-8 in any field", () => {
    for (const raw of [
      Buffer.from([0x00, 0x75, 0x00, 0xff]),
      Buffer.from([0x00, 0xc3, 0x28, 0x00, 0x70]),
      Buffer.from([0xe2, 0x82, 0x00, 0x75, 0x00, 0x70]),
      Buffer.from([0x00, 0xed, 0xa0, 0x80, 0x00, 0x70]), // encoded surrogate
    ]) {
      expectSasl(() => parsePlainResponse(raw.toString("base64")), "malformed-request");
    }
  });

  it("rejects an authzid that is not a JID", () => {
    expectSasl(() => parsePlainResponse(b64("a b@example.com\0u\0p")), "invalid-authzid", "SASL_INVALID_AUTHZID");
    expectSasl(() => parsePlainResponse(b64("@example.com\0u\0p")), "invalid-authzid");
  });

  it("enforces size limits", () => {
    expect(parsePlainResponse(b64(`\0${"a".repeat(1023)}\0${"p".repeat(1024)}`)).authcid).toHaveLength(1023);
    expectSasl(() => parsePlainResponse(b64(`\0${"a".repeat(1024)}\0p`)), "malformed-request");
    expectSasl(() => parsePlainResponse(b64(`\0u\0${"p".repeat(1025)}`)), "malformed-request");
    expectSasl(() => parsePlainResponse(b64(`${"a".repeat(3072)}\0u\0p`)), "invalid-authzid");
    expectSasl(() => parsePlainResponse("A".repeat(100_000)), "malformed-request");
  });

  it("never puts the payload into the error message", () => {
    const e = expectSasl(() => parsePlainResponse(b64("\0user\0hunter2\0x")), "malformed-request");
    expect(e.message).not.toContain("hunter2");
    expect(e.message).not.toContain(b64("\0user\0hunter2\0x"));
    const e2 = expectSasl(() => parsePlainResponse(b64("\0user\0hunter2") + "!"), "incorrect-encoding");
    expect(e2.message).not.toContain("hunter2");
  });
});

describe("encodePlain", () => {
  it("round-trips", () => {
    expect(encodePlain("tim", "tanstaaftanstaaf")).toBe(b64("\0tim\0tanstaaftanstaaf"));
    expect(parsePlainResponse(encodePlain("kurt", "pw", "kurt@example.com"))).toEqual({
      authzid: "kurt@example.com",
      authcid: "kurt",
      password: "pw",
    });
    expect(parsePlainResponse(encodePlain("ü", "ö")).authcid).toBe("ü");
  });

  it("rejects NUL and empty fields without echoing them", () => {
    const e = expectSasl(() => encodePlain("u", "hunt\0er2"), "malformed-request");
    expect(e.message).not.toContain("hunt");
    expectSasl(() => encodePlain("", "p"), "malformed-request");
    expectSasl(() => encodePlain("u", ""), "malformed-request");
    expectSasl(() => encodePlain("u", "p", "a\0b"), "malformed-request");
  });
});

describe("SASL base64", () => {
  it("= and empty are the zero-length payload; encode gives =", () => {
    expect(decodeSaslBase64("=")).toHaveLength(0);
    expect(decodeSaslBase64("")).toHaveLength(0);
    expect(encodeSaslBase64("")).toBe("=");
    expect(encodeSaslBase64(Buffer.from([1, 2]))).toBe("AQI=");
  });
  it("rejects == alone", () => {
    expectSasl(() => decodeSaslBase64("=="), "incorrect-encoding");
  });
});
