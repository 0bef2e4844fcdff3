import { describe, expect, it } from "vitest";
import { parseStanza } from "../../core/xml/element.js";
import { filterPostAuthFeatures } from "./features.js";

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
