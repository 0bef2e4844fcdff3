import { describe, expect, it } from "vitest";
import { choosePeer, redirectFor, redirectUriFor, seeOtherHostText, seeOtherUriClose, wsUri, type ClientAddress, type RedirectPeer } from "./redirect.js";

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

describe("WebSocket redirect (RFC 7395 §3.6.1 see-other-uri)", () => {
  it("wsUri: wss, the port, the path; an IPv6 literal in brackets", () => {
    expect(wsUri("node2.example.org", 5281, "/xmpp-websocket")).toBe("wss://node2.example.org:5281/xmpp-websocket");
    expect(wsUri("2001:db8::2", 443, "/ws")).toBe("wss://[2001:db8::2]:443/ws");
    expect(wsUri("[2001:db8::2]", 443, "ws")).toBe("wss://[2001:db8::2]:443/ws");
  });

  it("the <close/> element: the framing namespace, the URI escaped", () => {
    expect(seeOtherUriClose("wss://n2.example:5281/xmpp-websocket"))
      .toBe("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://n2.example:5281/xmpp-websocket'/>");
    expect(seeOtherUriClose("wss://n2.example/a?b='c'&d")).toBe("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://n2.example/a?b=&apos;c&apos;&amp;d'/>");
  });

  it("redirectUriFor: the same peer as the account's TCP sessions get; undefined when that peer published no URI", () => {
    const peers: RedirectPeer[] = ["n1", "n2", "n3"].map((id) => ({ id, client: { host: `${id}.example`, ports: { starttls: 5222 }, ws: `wss://${id}.example/ws` } }));
    for (const a of accounts.slice(0, 50)) {
      const host = redirectFor(a, "starttls", peers)!.split(":")[0];
      expect(redirectUriFor(a, peers)).toBe(`wss://${host}/ws`);
    }
    const chosen = choosePeer("alice@example.org", peers)!.id;
    const without = peers.map((p) => (p.id === chosen ? { id: p.id, client: { host: "x", ports: {} } } : p));
    expect(redirectUriFor("alice@example.org", without)).toBeUndefined();
    expect(redirectUriFor("alice@example.org", [])).toBeUndefined();
  });
});
