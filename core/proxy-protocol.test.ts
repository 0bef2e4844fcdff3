import { describe, expect, it } from "vitest";
import { parseProxyHeader } from "./proxy-protocol.js";

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
function v2(cmd: number, famProto: number, block: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x20 | cmd;
  h[1] = famProto;
  h.writeUInt16BE(block.length, 2);
  return Buffer.concat([SIG, h, block]);
}

describe("PROXY protocol v1", () => {
  it("parses TCP4 and TCP6 and reports the bytes consumed", () => {
    const line = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 5222\r\n";
    const r = parseProxyHeader(Buffer.from(line + "<stream:stream"));
    expect(r).toEqual({ kind: "ok", consumed: line.length, version: 1, source: { address: "203.0.113.7", port: 56324 } });
    const r6 = parseProxyHeader(Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 4000 5222\r\n"));
    expect(r6).toMatchObject({ kind: "ok", source: { address: "2001:db8::1", port: 4000 } });
  });
  it("accepts UNKNOWN without an address", () => {
    expect(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n"))).toEqual({ kind: "ok", consumed: 15, version: 1 });
  });
  it("waits for more bytes, and refuses garbage or overlong lines", () => {
    expect(parseProxyHeader(Buffer.from("PRO"))).toEqual({ kind: "incomplete" });
    expect(parseProxyHeader(Buffer.from("PROXY TCP4 1.2.3.4"))).toEqual({ kind: "incomplete" });
    expect(parseProxyHeader(Buffer.from("<stream:stream>")).kind).toBe("error");
    expect(parseProxyHeader(Buffer.from("PROXY " + "x".repeat(120))).kind).toBe("error");
    expect(parseProxyHeader(Buffer.from("PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n")).kind).toBe("error");
    expect(parseProxyHeader(Buffer.from("PROXY TCP4 1.1.1.1 1.1.1.1 99999 2\r\n")).kind).toBe("error");
  });
});

describe("PROXY protocol v2", () => {
  it("parses IPv4 and IPv6 PROXY commands, with TLVs after the addresses", () => {
    const b4 = Buffer.from([203, 0, 113, 7, 192, 0, 2, 1, 0xdc, 0x04, 0x14, 0x66, 0x04, 0x00, 0x01, 0x00]);
    expect(parseProxyHeader(Buffer.concat([v2(1, 0x11, b4), Buffer.from("<")]))).toEqual({
      kind: "ok", consumed: 16 + b4.length, version: 2, source: { address: "203.0.113.7", port: 0xdc04 },
    });
    const b6 = Buffer.alloc(36);
    b6.writeUInt16BE(0x2001, 0);
    b6.writeUInt16BE(0x0db8, 2);
    b6.writeUInt16BE(1, 14);
    b6.writeUInt16BE(4000, 32);
    expect(parseProxyHeader(v2(1, 0x21, b6))).toMatchObject({ kind: "ok", source: { address: "2001:db8:0:0:0:0:0:1", port: 4000 } });
  });
  it("keeps the real endpoints for LOCAL (health checks)", () => {
    expect(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))).toEqual({ kind: "ok", consumed: 16, version: 2 });
  });
  it("waits for the whole block and refuses bad versions, commands and lengths", () => {
    const full = v2(1, 0x11, Buffer.alloc(12));
    for (let n = 1; n < full.length; n++) expect(parseProxyHeader(full.subarray(0, n))).toEqual({ kind: "incomplete" });
    const badVer = Buffer.from(full);
    badVer[12] = 0x11;
    expect(parseProxyHeader(badVer).kind).toBe("error");
    expect(parseProxyHeader(v2(5, 0x11, Buffer.alloc(12))).kind).toBe("error");
    expect(parseProxyHeader(v2(1, 0x11, Buffer.alloc(4))).kind).toBe("error");
    const huge = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    expect(parseProxyHeader(huge).kind).toBe("error");
  });
});
