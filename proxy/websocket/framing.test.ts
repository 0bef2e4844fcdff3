import { describe, expect, it } from "vitest";
import { FramingError } from "../../core/xml/errors.js";
import { STREAM_CLOSE, streamError, streamHeader } from "../../core/xml/stream.js";
import { NS_FRAMING } from "../../core/xml/ns.js";
import { IncomingFramer, OutgoingTranslator, WS_CLOSE, openToStreamAttrs } from "./framing.js";

const b = (s: string): Buffer => Buffer.from(s);
const str = (ms: (string | Buffer)[]): string[] => ms.map((m) => m.toString());

describe("IncomingFramer: one element per WebSocket message", () => {
  const f = (): IncomingFramer => new IncomingFramer({ maxStanzaSize: 1024, maxDepth: 8 });

  it("<open/> and <close/> in the framing namespace", () => {
    const x = f();
    expect(x.message(b(`<open xmlns='${NS_FRAMING}' to='example.org' version='1.0' xml:lang='de'/>`)))
      .toEqual({ type: "open", attrs: { xmlns: NS_FRAMING, to: "example.org", version: "1.0", "xml:lang": "de" } });
    expect(x.message(b(`<close xmlns="${NS_FRAMING}"/>`))).toEqual({ type: "close" });
  });

  it("a stanza comes out as the exact bytes; surrounding whitespace and an XML declaration are fine", () => {
    const x = f();
    const msg = "<message xmlns='jabber:client' to='a@b'><body>h&amp;i</body></message>";
    expect(x.message(b(`\n ${msg}\n`))).toEqual({ type: "stanza", name: "message", bytes: b(msg) });
    expect(x.message(b(`<?xml version='1.0'?>${msg}`))).toEqual({ type: "stanza", name: "message", bytes: b(msg) });
    expect(x.message(b("  "))).toEqual({ type: "none" });
  });

  it("<open/> or <close/> in another namespace is an ordinary element", () => {
    expect(f().message(b("<open xmlns='jabber:client'/>"))).toMatchObject({ type: "stanza", name: "open" });
  });

  it("prefixed stream elements may use the stream prefix", () => {
    expect(f().message(b("<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"))).toMatchObject({ type: "stanza", name: "stream:features" });
  });

  const bad: [string, string, string][] = [
    ["not XML", "hello", "not-well-formed"],
    ["two elements", "<a/><b/>", "not-well-formed"],
    ["an element and a half", "<a/><b", "not-well-formed"],
    ["half an element", "<message><body>", "not-well-formed"],
    ["a stream header", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", "not-well-formed"],
    ["a stream close tag", "</stream:stream>", "not-well-formed"],
    ["a comment", "<!-- x --><a/>", "restricted-xml"],
    ["an undeclared prefix", "<x:y/>", "bad-namespace-prefix"],
    ["<open/> with content", `<open xmlns='${NS_FRAMING}'><x/></open>`, "invalid-xml"],
    ["too deep", "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>", "policy-violation"],
  ];
  for (const [what, msg, condition] of bad) {
    it(`refuses ${what} (${condition})`, () => {
      let err: unknown;
      try {
        f().message(b(msg));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FramingError);
      expect((err as FramingError).condition).toBe(condition);
    });
  }

  it("applies the stanza size limit, and setLimits changes it", () => {
    const x = f();
    const big = `<message xmlns='jabber:client'><body>${"x".repeat(2000)}</body></message>`;
    expect(() => x.message(b(big))).toThrow(/larger than 1024/);
    const y = f();
    y.setLimits({ maxStanzaSize: 4096 });
    expect(y.message(b(big))).toMatchObject({ type: "stanza", name: "message" });
  });

  it("openToStreamAttrs gives the session what an RFC 6120 header carries", () => {
    expect(openToStreamAttrs({ xmlns: NS_FRAMING, to: "example.org", version: "1.0" })).toEqual({
      xmlns: "jabber:client", "xmlns:stream": "http://etherx.jabber.org/streams", to: "example.org", version: "1.0",
    });
  });
});

describe("OutgoingTranslator: the session's RFC 6120 bytes as RFC 7395 messages", () => {
  const header = streamHeader({ from: "example.org", id: "abc" });

  it("header → <open/>; features get xmlns:stream; the close tag → <close/>", () => {
    const t = new OutgoingTranslator();
    expect(str(t.translate(header).messages)).toEqual([`<open xmlns='${NS_FRAMING}' from='example.org' id='abc' version='1.0' xml:lang='en'/>`]);
    const features = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    expect(str(t.translate(features).messages)).toEqual([
      "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    ]);
    expect(t.translate(STREAM_CLOSE)).toEqual({ messages: [WS_CLOSE], closed: true });
  });

  it("stanzas that inherited jabber:client get it declared; namespaced nonzas are untouched", () => {
    const t = new OutgoingTranslator();
    t.translate(header);
    expect(str(t.translate(b("<message from='a@b' to='c@d'><body>x</body></message>")).messages))
      .toEqual(["<message xmlns='jabber:client' from='a@b' to='c@d'><body>x</body></message>"]);
    expect(str(t.translate("<iq/>").messages)).toEqual(["<iq xmlns='jabber:client'/>"]);
    expect(str(t.translate("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").messages)).toEqual(["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
    expect(str(t.translate("<message xmlns='jabber:client'/>").messages)).toEqual(["<message xmlns='jabber:client'/>"]);
  });

  it("several elements in one write become one message each (header + stream error + close)", () => {
    const t = new OutgoingTranslator();
    const r = t.translate(header + streamError("host-unknown", "no such domain"));
    expect(str(r.messages)).toEqual([
      `<open xmlns='${NS_FRAMING}' from='example.org' id='abc' version='1.0' xml:lang='en'/>`,
      "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>no such domain</text></stream:error>",
      WS_CLOSE,
    ]);
    expect(r.closed).toBe(true);
  });

  it("a stream restart (new header after SASL success) starts a new <open/>", () => {
    const t = new OutgoingTranslator();
    t.translate(header);
    expect(str(t.translate("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").messages)).toHaveLength(1);
    expect(str(t.translate(streamHeader({ from: "example.org", id: "def" })).messages)).toEqual([
      `<open xmlns='${NS_FRAMING}' from='example.org' id='def' version='1.0' xml:lang='en'/>`,
    ]);
    expect(str(t.translate("<stream:features/>").messages)).toEqual(["<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"]);
  });

  it("an upstream stream error keeps its own xmlns:stream; whitespace keepalives are dropped", () => {
    const t = new OutgoingTranslator();
    t.translate(header);
    const own = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    expect(str(t.translate(own).messages)).toEqual([own]);
    expect(t.translate(" ").messages).toEqual([]);
  });

  it("a write before any header (nothing the session does today) still comes out framed", () => {
    expect(str(new OutgoingTranslator().translate("<presence/>").messages)).toEqual(["<presence xmlns='jabber:client'/>"]);
  });

  it("attribute values in <open/> are escaped", () => {
    const t = new OutgoingTranslator();
    expect(str(t.translate(streamHeader({ from: "a'b", id: "x" })).messages)[0]).toContain("from='a&apos;b'");
  });
});
