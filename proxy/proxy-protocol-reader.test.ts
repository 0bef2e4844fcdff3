import { describe, expect, it } from "vitest";
import { parseCidr, type Cidr } from "./cli-args.js";
import { sourceFilter } from "./proxy-protocol-reader.js";

const cidrs = (...v: string[]): Cidr[] => v.map((x) => parseCidr(x) as Cidr);

describe("sourceFilter (--proxy-protocol-from)", () => {
  it("matches IPv4 and IPv6 blocks and single addresses", () => {
    const ok = sourceFilter(cidrs("10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"));
    expect(ok("10.200.3.4")).toBe(true);
    expect(ok("192.0.2.7")).toBe(true);
    expect(ok("192.0.2.8")).toBe(false);
    expect(ok("11.0.0.1")).toBe(false);
    expect(ok("2001:db8:ffff::1")).toBe(true);
    expect(ok("2001:db9::1")).toBe(false);
    expect(ok("::1")).toBe(true);
    expect(ok("::2")).toBe(false);
  });

  it("an IPv4-mapped address (a dual-stack listener) matches the IPv4 block, and only that", () => {
    const ok = sourceFilter(cidrs("127.0.0.0/8"));
    expect(ok("::ffff:127.0.0.1")).toBe(true);
    expect(ok("::ffff:10.0.0.1")).toBe(false);
  });

  it("an unknown or malformed address is never trusted", () => {
    const ok = sourceFilter(cidrs("0.0.0.0/0", "::/0"));
    expect(ok("203.0.113.1")).toBe(true);
    expect(ok(undefined)).toBe(false);
    expect(ok("")).toBe(false);
    expect(ok("not an address")).toBe(false);
  });
});
