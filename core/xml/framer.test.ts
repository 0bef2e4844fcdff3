import { describe, expect, it } from "vitest";
import { Framer, type FrameEvent } from "./framer.js";
import { FramingError } from "./errors.js";
import { parseStanza } from "./element.js";

const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

function feed(f: Framer, ...parts: (string | Buffer)[]): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (const p of parts) out.push(...f.push(typeof p === "string" ? Buffer.from(p) : p));
  return out;
}
function stanzas(ev: FrameEvent[]): string[] {
  return ev.flatMap((e) => (e.type === "stanza" ? [e.bytes.toString("utf8")] : []));
}
function errorOf(fn: () => unknown): FramingError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FramingError) return e;
    throw e;
  }
  throw new Error("no error thrown");
}

describe("Framer", () => {
  it("reads the header with decoded attributes, stanzas verbatim, and the close tag", () => {
    const f = new Framer();
    const ev = feed(f, HEADER, " \n<message to='a@b' id='x&amp;y'><body>hi &lt;3</body></message> <presence/></stream:stream>");
    expect(ev[0]).toEqual({ type: "open", name: "stream:stream", attrs: expect.objectContaining({ to: "localhost", version: "1.0" }) });
    expect(stanzas(ev)).toEqual(["<message to='a@b' id='x&amp;y'><body>hi &lt;3</body></message>", "<presence/>"]);
    expect(ev.at(-1)).toEqual({ type: "close" });
  });

  it("decodes entities in header attributes", () => {
    const ev = feed(new Framer(), "<stream:stream to='a&amp;b&#x41;' xmlns:stream='http://etherx.jabber.org/streams'>");
    expect(ev[0]).toMatchObject({ attrs: { to: "a&bA" } });
  });

  it("frames a stanza cut at every possible byte boundary identically", () => {
    const stanza = "<message to='r@c/n' type='groupchat'><body a=\"1\">héllo 🎉 <![CDATA[<x>]]></body><x xmlns='u'/></message>";
    const all = Buffer.from(HEADER + stanza);
    for (let cut = 1; cut < all.length; cut++) {
      const f = new Framer();
      const ev = feed(f, all.subarray(0, cut), all.subarray(cut));
      expect(stanzas(ev)).toEqual([stanza]);
    }
  });

  it("keeps a UTF-8 character split across two chunks intact", () => {
    const f = new Framer();
    feed(f, HEADER);
    const bytes = Buffer.from("<message><body>€</body></message>");
    const euro = bytes.indexOf(0xe2);
    const ev = feed(f, bytes.subarray(0, euro + 1), bytes.subarray(euro + 1, euro + 2), bytes.subarray(euro + 2));
    expect(parseStanza(stanzas(ev)[0]!).getChild("body")!.text()).toBe("€");
  });

  it("handles one byte at a time", () => {
    const f = new Framer();
    const all = Buffer.from(HEADER + "<iq id='1' type='get'><query xmlns='jabber:iq:roster'/></iq>");
    const ev: FrameEvent[] = [];
    for (const b of all) ev.push(...f.push(Buffer.from([b])));
    expect(stanzas(ev)).toEqual(["<iq id='1' type='get'><query xmlns='jabber:iq:roster'/></iq>"]);
  });

  it("accepts whitespace keepalives between stanzas and restarts after reset()", () => {
    const f = new Framer();
    feed(f, HEADER, "   \n  ");
    f.reset();
    const ev = feed(f, HEADER, "<a/>");
    expect(ev.map((e) => e.type)).toEqual(["open", "stanza"]);
  });

  it.each([
    ["a comment", "<message><!-- hi --></message>", "restricted-xml"],
    ["a processing instruction", "<message><?php x ?></message>", "restricted-xml"],
    ["a DOCTYPE", "<!DOCTYPE foo [<!ENTITY a 'b'>]>", "restricted-xml"],
    ["an undeclared entity", "<message><body>&lol;</body></message>", "restricted-xml"],
    ["a billion-laughs entity", "<message><body>&lol9;</body></message>", "restricted-xml"],
    ["a mismatched end tag", "<message><body></message>", "not-well-formed"],
    ["a duplicate attribute", "<message to='a' to='b'/>", "not-well-formed"],
    ["an unquoted attribute", "<message to=a/>", "not-well-formed"],
    ["'<' in an attribute", "<message to='<'/>", "not-well-formed"],
    ["attributes without space", "<message a='1'b='2'/>", "not-well-formed"],
    ["a NUL byte", "<message>\u0000</message>", "not-well-formed"],
    ["a control character", "<message>\u0007</message>", "not-well-formed"],
    ["a bad character reference", "<message>&#0;</message>", "not-well-formed"],
    ["a bare ampersand", "<message>a & b</message>", "not-well-formed"],
    ["text between stanzas", "hello", "not-well-formed"],
    ["CDATA between stanzas", "<![CDATA[x]]>", "not-well-formed"],
    ["a tag starting with a digit", "<1message/>", "not-well-formed"],
  ])("refuses %s", (_label, input, condition) => {
    const f = new Framer();
    feed(f, HEADER);
    expect(errorOf(() => feed(f, input)).condition).toBe(condition);
  });

  it("refuses invalid UTF-8 in a stanza", () => {
    const f = new Framer();
    feed(f, HEADER);
    const e = errorOf(() => feed(f, Buffer.from("<message><body>"), Buffer.from([0xc3, 0x28]), Buffer.from("</body></message>")));
    expect(e.code).toBe("XML_INVALID_UTF8");
  });

  it("refuses a non-UTF-8 encoding declaration", () => {
    expect(errorOf(() => feed(new Framer(), "<?xml version='1.0' encoding='ISO-8859-1'?>")).condition).toBe("unsupported-encoding");
  });

  it("enforces the stanza size limit before buffering past it", () => {
    const f = new Framer({ maxStanzaSize: 1000 });
    feed(f, HEADER, "<message><body>");
    const e = errorOf(() => {
      for (let i = 0; i < 100; i++) f.push(Buffer.alloc(100, 0x61));
    });
    expect(e.code).toBe("XML_STANZA_TOO_LARGE");
    expect(e.condition).toBe("policy-violation");
  });

  it("lets a stanza of exactly the limit through", () => {
    const f = new Framer({ maxStanzaSize: 100 });
    feed(f, HEADER);
    const body = "x".repeat(100 - "<message></message>".length);
    expect(stanzas(feed(f, `<message>${body}</message>`))).toHaveLength(1);
    expect(errorOf(() => feed(f, `<message>${body}x</message>`)).code).toBe("XML_STANZA_TOO_LARGE");
  });

  it("enforces the depth limit", () => {
    const f = new Framer({ maxDepth: 5 });
    feed(f, HEADER);
    expect(stanzas(feed(f, "<a><b><c><d><e/></d></c></b></a>"))).toHaveLength(1);
    expect(errorOf(() => feed(f, "<a><b><c><d><e><f>")).code).toBe("XML_TOO_DEEP");
  });

  it("refuses a huge stream header", () => {
    expect(errorOf(() => feed(new Framer(), `<stream:stream a='${"x".repeat(10000)}'>`)).code).toBe("XML_HEADER_TOO_LARGE");
  });

  it("ignores input after the stream is closed", () => {
    const f = new Framer();
    const ev = feed(f, HEADER, "</stream:stream>", "garbage <<<");
    expect(ev.map((e) => e.type)).toEqual(["open", "close"]);
  });
});

describe("frame buffers", () => {
  const own = (s: string): Buffer => {
    const b = Buffer.from(new ArrayBuffer(Buffer.byteLength(s)));
    b.write(s);
    return b;
  };
  it("a stanza that is a whole chunk owning its memory is passed on without a copy", () => {
    const f = new Framer();
    f.push(Buffer.from(HEADER));
    const chunk = own("<message to='a@b'><body>x</body></message>");
    const [ev] = f.push(chunk);
    expect(ev?.type === "stanza" && ev.bytes).toBe(chunk);
  });
  it("a stanza cut from a larger buffer is copied (never pins or aliases the chunk)", () => {
    const f = new Framer();
    f.push(Buffer.from(HEADER));
    const big = own("<message><body>x</body></message><iq type='get' id='1'/>");
    const evs = f.push(big);
    expect(evs).toHaveLength(2);
    for (const ev of evs) {
      if (ev.type !== "stanza") throw new Error("expected stanza");
      expect(ev.bytes.buffer).not.toBe(big.buffer);
    }
    const slice = own(" <presence/> ").subarray(1, 12);
    const [p] = f.push(slice);
    expect(p?.type === "stanza" && p.bytes.toString()).toBe("<presence/>");
    expect(p?.type === "stanza" && p.bytes.buffer !== slice.buffer).toBe(true);
  });
  it("plain character data and attribute values are still checked byte by byte where it matters", () => {
    const f = new Framer();
    f.push(Buffer.from(HEADER));
    expect(() => f.push(Buffer.from("<message id='abc\u0001def'/>"))).toThrow(FramingError);
    const g = new Framer();
    g.push(Buffer.from(HEADER));
    expect(() => g.push(Buffer.from("<message><body>long text then ]]> here</body></message>"))).toThrow(FramingError);
    const h = new Framer();
    h.push(Buffer.from(HEADER));
    expect(() => h.push(Buffer.from("<message id='a<b'/>"))).toThrow(FramingError);
    const k = new Framer();
    k.push(Buffer.from(HEADER));
    expect(() => k.push(Buffer.from("<message><body>text &bogus; more</body></message>"))).toThrow(FramingError);
  });
});
