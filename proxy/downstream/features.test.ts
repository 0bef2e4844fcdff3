import { describe, expect, it } from "vitest";
import { parseStanza } from "../../core/xml/element.js";
import { filterPostAuthFeatures, saslFeatures } from "./features.js";
import { SaslOffer } from "./sasl-offer.js";

describe("filterPostAuthFeatures", () => {
  const server = parseStanza(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'>` +
    `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:2'><optional/></sm><sm xmlns='urn:xmpp:sm:3'><optional/></sm>` +
    `<csi xmlns='urn:xmpp:csi:0'/></stream:features>`);

  it("drops the server's stream management (both versions) and appends the proxy's own features", () => {
    const out = filterPostAuthFeatures(server, ["<sm xmlns='urn:xmpp:sm:3'/>"]);
    expect(out).toMatch(/^<stream:features>.*<\/stream:features>$/);
    expect(out).toContain("urn:ietf:params:xml:ns:xmpp-bind");
    expect(out).toContain("urn:xmpp:csi:0");
    expect(out).not.toContain("urn:xmpp:sm:2");
    expect(out.match(/urn:xmpp:sm:3/g)).toHaveLength(1);
    expect(out.endsWith("<sm xmlns='urn:xmpp:sm:3'/></stream:features>")).toBe(true);
  });

  it("a server that offers nothing else: the proxy's <csi/> (always offered, §8.5) and its extras", () => {
    const bare = parseStanza("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
    expect(filterPostAuthFeatures(bare, ["<x/>"])).toBe("<stream:features><csi xmlns=\"urn:xmpp:csi:0\"/><x/></stream:features>");
    expect(filterPostAuthFeatures(bare)).toBe("<stream:features><csi xmlns=\"urn:xmpp:csi:0\"/></stream:features>");
  });
});

describe("saslFeatures", () => {
  it("lists the mechanisms in order and, with a -PLUS one, the XEP-0440 channel-binding types", () => {
    const out = saslFeatures(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"], ["tls-exporter", "tls-server-end-point"]);
    const el = parseStanza(out.replace("<stream:features>", "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"));
    expect(el.getChild("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl")!.getChildren("mechanism").map((m) => m.getText())).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"]);
    const cb = el.getChild("sasl-channel-binding", "urn:xmpp:sasl-cb:0")!;
    expect(cb.getChildren("channel-binding").map((c) => c.attrs.type)).toEqual(["tls-exporter", "tls-server-end-point"]);
  });

  it("no channel-binding list without a -PLUS mechanism or without types", () => {
    expect(saslFeatures(["SCRAM-SHA-1", "PLAIN"], ["tls-exporter"])).not.toContain("sasl-cb");
    expect(saslFeatures(["PLAIN"], [])).toBe("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
  });
});

describe("SaslOffer", () => {
  it("auto: everything until the server's mechanisms are learnt, then its hashes; -PLUS only with channel binding", () => {
    const o = new SaslOffer("auto");
    expect(o.forStream("example.org", ["tls-exporter"])).toHaveLength(7);
    o.learn("Example.org", ["SCRAM-SHA-1", "PLAIN"]);
    o.learn("example.org", []); // an empty list (a server that sent none) does not erase what is known
    expect(o.forStream("example.org", ["tls-exporter"])).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"]);
    expect(o.forStream("example.org", [])).toEqual(["SCRAM-SHA-1", "PLAIN"]);
    expect(o.hashes("example.org")).toEqual(["SHA-1"]);
  });

  it("a configured list is offered as it is, whatever the server offers", () => {
    const o = new SaslOffer(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    o.learn("example.org", ["SCRAM-SHA-1", "PLAIN"]);
    expect(o.forStream("example.org", ["tls-exporter"])).toEqual(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    expect(o.hashes("example.org")).toEqual(["SHA-256"]);
  });
});
