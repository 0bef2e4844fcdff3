import { describe, expect, it } from "vitest";
import { choosePeer, redirectFor, seeOtherHostText, type ClientAddress, type RedirectPeer } from "./redirect.js";

const peer = (id: string, host = `${id}.example`, ports: ClientAddress["ports"] = { starttls: 5222, "direct-tls": 5223 }): RedirectPeer =>
  ({ id, client: { host, ports } });
const accounts = Array.from({ length: 400 }, (_, i) => `user${i}@example.org`);

describe("choosePeer (rendezvous hashing of the bare JID)", () => {
  it("is deterministic and independent of the peers' order; the bare JID's case does not matter", () => {
    const peers = [peer("n1"), peer("n2"), peer("n3")];
    for (const a of accounts.slice(0, 50)) {
      const p = choosePeer(a, peers)?.id;
      expect(choosePeer(a, [...peers].reverse())?.id).toBe(p);
      expect(choosePeer(a.toUpperCase(), peers)?.id).toBe(p);
    }
  });

  it("spreads accounts over the peers", () => {
    const peers = [peer("n1"), peer("n2"), peer("n3")];
    const count = new Map<string, number>();
    for (const a of accounts) {
      const id = choosePeer(a, peers)!.id;
      count.set(id, (count.get(id) ?? 0) + 1);
    }
    expect([...count.keys()].sort()).toEqual(["n1", "n2", "n3"]);
    for (const n of count.values()) expect(n).toBeGreaterThan(80); // 133 expected each
  });

  it("a peer leaving moves only the accounts that were on it", () => {
    const three = [peer("n1"), peer("n2"), peer("n3")];
    const two = [peer("n1"), peer("n3")];
    for (const a of accounts) {
      const before = choosePeer(a, three)!.id;
      if (before !== "n2") expect(choosePeer(a, two)!.id).toBe(before);
    }
  });

  it("skips peers without a client address; none: undefined", () => {
    const peers: RedirectPeer[] = [{ id: "n1", client: undefined }, peer("n2"), { id: "n3", client: undefined }];
    for (const a of accounts.slice(0, 20)) expect(choosePeer(a, peers)?.id).toBe("n2");
    expect(choosePeer("a@b", [{ id: "n1", client: undefined }])).toBeUndefined();
    expect(choosePeer("a@b", [])).toBeUndefined();
  });
});

describe("seeOtherHostText (RFC 6120 §4.9.3.19)", () => {
  it("domainpart:port; an IPv6 literal in brackets; IPv4 and names as they are", () => {
    expect(seeOtherHostText("node2.example.org", 5222)).toBe("node2.example.org:5222");
    expect(seeOtherHostText("10.0.0.12", 5223)).toBe("10.0.0.12:5223");
    expect(seeOtherHostText("2001:db8::12", 5222)).toBe("[2001:db8::12]:5222");
    expect(seeOtherHostText("::1", 5222)).toBe("[::1]:5222");
    expect(seeOtherHostText("[2001:db8::12]", 5222)).toBe("[2001:db8::12]:5222");
  });
});

describe("redirectFor", () => {
  it("names the chosen peer's port of the client's own transport", () => {
    const peers = [peer("n2", "2001:db8::2", { starttls: 15222, "direct-tls": 15223 })];
    expect(redirectFor("alice@example.org", "starttls", peers)).toBe("[2001:db8::2]:15222");
    expect(redirectFor("alice@example.org", "direct-tls", peers)).toBe("[2001:db8::2]:15223");
  });

  it("undefined (system-shutdown) when the chosen peer has no listener of that transport, or no peer has an address", () => {
    const peers = [peer("n2", "n2.example", { starttls: 5222 })];
    expect(redirectFor("alice@example.org", "starttls", peers)).toBe("n2.example:5222");
    expect(redirectFor("alice@example.org", "direct-tls", peers)).toBeUndefined();
    expect(redirectFor("alice@example.org", "starttls", [{ id: "n2", client: undefined }])).toBeUndefined();
  });
});
