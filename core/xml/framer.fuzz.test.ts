/**
 * Fuzz suite over the stream layer (issue 5): thousands of generated inputs, valid and hostile, fed
 * to the byte-level framer in random chunkings. Properties:
 *  - differential: a stream of valid generated stanzas comes out as exactly the input's stanzas,
 *    byte for byte, however the bytes are cut into chunks;
 *  - robustness: on any input only FramingError escapes (never a TypeError, RangeError, …), with a
 *    typed code and an RFC 6120 condition; the framer's buffered memory never exceeds the limit plus
 *    a small constant; every stanza it does emit is UTF-8, parses, and carries no restricted XML;
 *  - chunking independence: the verdict (stanzas emitted, error code) does not depend on the cuts.
 * Run count: FUZZ_RUNS (default 2000 per property; the whole file takes a few seconds).
 */
import { isUtf8 } from "node:buffer";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Framer, type FrameEvent, type FramerLimits } from "./framer.js";
import { FramingError } from "./errors.js";
import { parseStanza } from "./element.js";
import { attrSpan, directChildren, peekAttr } from "./peek.js";
import { Element } from "ltx";

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
const LIMITS: FramerLimits = { maxStanzaSize: 4096, maxDepth: 16 };
/** Name/entity/declaration tokens the framer may hold beyond the stanza limit (see framer.ts). */
const SLACK = 2048;
/** The framer's fixed stream-header limit. */
const MAX_HEADER = 8192;

// ------------------------------------------------------------------------------------------ generators

const nameStart = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCXYZ_é日");
const nameRest = fc.constantFrom(..."abcxyz019-._é");
const ncName = fc.tuple(nameStart, fc.array(nameRest, { maxLength: 6 })).map(([a, b]) => a + b.join(""));

const textChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Array.from("abc xyz 0123\t\n\r!?#%*()[]{}~=+-/é€日🎉"), "]", "]]") },
  { weight: 2, arbitrary: fc.constantFrom("&lt;", "&gt;", "&amp;", "&quot;", "&apos;", "&#65;", "&#x1F600;", "&#xA;") },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 3 }).map(escapeText) },
);
function escapeText(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "").replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"))
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "");
}
const text = fc.array(textChar, { maxLength: 12 }).map((a) => a.join("").replace(/]]>/g, "]]&gt;"));
const attrValue = fc.array(textChar, { maxLength: 8 }).map((a) => a.join("").replace(/["']/g, ""));

interface Node {
  name: string;
  attrs: [string, string, string][]; // name, value, quote
  children: (Node | string)[];
  selfClose: boolean;
}

function serialize(n: Node, declared: Set<string>): string {
  const decl = new Set(declared);
  let s = `<${n.name}`;
  for (const [k, v, q] of n.attrs) {
    if (k.startsWith("xmlns:")) decl.add(k.slice(6));
    s += ` ${k}=${q}${v}${q}`;
  }
  if (n.selfClose && n.children.length === 0) return `${s}/>`;
  s += ">";
  for (const c of n.children) s += typeof c === "string" ? c : serialize(c, decl);
  return `${s}</${n.name}>`;
}

/** A tree of well-formed, namespace-well-formed XML within the limits; prefixes are declared where used. */
const node: fc.Memo<Node> = fc.memo((d) => {
  const kids = d <= 1 ? fc.array(fc.oneof(text, fc.constant("<![CDATA[ <not> &a tag; ]] ]>]]>")), { maxLength: 2 })
    : fc.array(fc.oneof({ weight: 2, arbitrary: text }, { weight: 2, arbitrary: node(d - 1) },
      { weight: 1, arbitrary: fc.constant("<![CDATA[x]]>") }), { maxLength: 4 });
  return fc.record({
    local: ncName,
    prefix: fc.option(fc.constantFrom("p", "q", "xml"), { freq: 4 }),
    attrs: fc.uniqueArray(fc.tuple(ncName, attrValue, fc.constantFrom("'", '"')), { maxLength: 3, selector: (t) => t[0] }),
    xmlns: fc.option(fc.constantFrom("jabber:client", "urn:x", ""), { freq: 2 }),
    children: kids,
    selfClose: fc.boolean(),
  }).map((r) => {
    const attrs: [string, string, string][] = r.attrs.map(([k, v, q]) => [k, v, q]);
    let name = r.local;
    if (r.prefix !== null && r.prefix !== "xml") {
      attrs.push([`xmlns:${r.prefix}`, "urn:p", "'"]);
      name = `${r.prefix}:${r.local}`;
    }
    if (r.xmlns !== null && !attrs.some(([k]) => k === "xmlns")) attrs.push(["xmlns", r.xmlns, "'"]);
    return { name, attrs, children: r.children, selfClose: r.selfClose };
  });
});

const stanza = fc.tuple(fc.constantFrom("message", "presence", "iq", "r", "a"), node(3)).map(([top, n]) =>
  serialize({ ...n, name: top }, new Set(["stream"])));
const keepalive = fc.constantFrom("", " ", "\n", "\r\n\t ");

/** Cut points for a buffer of length n: 0-12 random positions, or byte-at-a-time. */
function chunkings(): fc.Arbitrary<(n: number) => number[]> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }).map((fs) => (n: number) =>
      [...new Set(fs.map((f) => Math.floor(f * n)))].sort((a, b) => a - b)) },
    { weight: 1, arbitrary: fc.constant((n: number) => Array.from({ length: n }, (_, i) => i)) },
  );
}
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    if (c <= prev || c >= buf.length) continue;
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

interface Outcome {
  events: FrameEvent[];
  error?: FramingError;
  maxBuffered: number;
}
/** Feeds the chunks; only a FramingError may come out (anything else fails the property by rethrowing). */
function run(chunks: Buffer[], limits = LIMITS): Outcome {
  const f = new Framer(limits);
  const events: FrameEvent[] = [];
  let maxBuffered = 0;
  for (const c of chunks) {
    let r: ReturnType<Framer["pushSafe"]>;
    try {
      r = f.pushSafe(c);
    } catch (e) {
      throw new Error(`pushSafe threw: ${String(e)}`);
    }
    events.push(...r.events);
    if (r.error) {
      // nothing but a FramingError from push(), and the framer stays dead
      expect(() => f.push(Buffer.from("<a/>"))).toThrow(FramingError);
      return { events, error: r.error, maxBuffered };
    }
    maxBuffered = Math.max(maxBuffered, f.bufferedBytes);
  }
  return { events, maxBuffered };
}
const stanzasOf = (ev: FrameEvent[]): string[] => ev.flatMap((e) => (e.type === "stanza" ? [e.bytes.toString("utf8")] : []));

const CODES = new Set(["XML_NOT_WELL_FORMED", "XML_RESTRICTED", "XML_INVALID_UTF8", "XML_STANZA_TOO_LARGE", "XML_TOO_DEEP", "XML_HEADER_TOO_LARGE", "XML_BAD_PREFIX"]);

/** Invariants of every outcome, valid input or not. */
function checkOutcome(o: Outcome, limits = LIMITS): void {
  if (o.error) {
    expect(CODES.has(o.error.code), `${o.error.code}: ${o.error.message}`).toBe(true);
    expect(o.error.condition).toMatch(/^[a-z-]+$/);
  }
  expect(o.maxBuffered).toBeLessThanOrEqual(Math.max(limits.maxStanzaSize, MAX_HEADER) + SLACK);
  for (const e of o.events) {
    if (e.type !== "stanza") continue;
    expect(e.bytes.length).toBeLessThanOrEqual(limits.maxStanzaSize);
    expect(isUtf8(e.bytes)).toBe(true);
    const s = e.bytes.toString("utf8");
    const outsideCdata = s.replace(/<!\[CDATA\[[\s\S]*?]]>/g, "");
    expect(outsideCdata).not.toMatch(/<!--|<\?|<!DOCTYPE|<!ENTITY|&(?!(lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)/);
    expect(outsideCdata).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/);
    expect(() => parseStanza(e.bytes)).not.toThrow();
  }
}

// ------------------------------------------------------------------------------------- hostile inputs

const NASTY: string[] = [
  "<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>",
  "<!ENTITY x SYSTEM 'file:///etc/passwd'>", "&lol9;", "&xxe;", "&#0;", "&#xD800;", "&#x110000;", "&#99999999999;", "&;", "&#;", "&#x;",
  "<!-- c -->", "<!--", "-->", "<?php echo 1 ?>", "<?xml version='1.0'?>", "<?xml-stylesheet href='x'?>",
  "<![CDATA[", "]]>", "<![CDATA[]]]]><![CDATA[>]]>", "<![cdata[x]]>", "<!", "<!x", "<![CDATA[<!-- -->]]>",
  "\u0000", "\u0001", "\u0007", "\u001b", "\u007f", "\ufffe", "\uffff",
  "</message>", "</a>", "</stream:stream>", "<a>", "<a", "<a/", "</", "<", ">", "/>", "'", "\"", "=", "&",
  "<a b='1' b='2'/>", "<a b=1/>", "<a b='<'/>", "<a b='1'c='2'/>", "<a =''/>", "<1a/>", "<-a/>", "<a:b/>", "<a:b:c xmlns:a='u'/>",
  "<x xmlns:='u'/>", "<xmlns:a/>", "<a foo:bar='1'/>", "<stream:error/>", "<a xmlns:p='u'><p:b/></a>",
  "<message><body>", "</body></message>", "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
  "hello", " ", "\n", "\t", "\r",
];
const INVALID_UTF8: number[][] = [[0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xe2, 0x82, 0x28], [0xf0, 0x28, 0x8c, 0xbc],
  [0xf8, 0xa1, 0xa1, 0xa1, 0xa1], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xfe], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80, 0xaf]];

const mutation = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...NASTY)).map(([at, s]) => ({ kind: "insert" as const, at, bytes: Buffer.from(s) })) },
  { weight: 2, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...INVALID_UTF8)).map(([at, b]) => ({ kind: "insert" as const, at, bytes: Buffer.from(b) })) },
  { weight: 2, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, b]) => ({ kind: "insert" as const, at, bytes: Buffer.from(b) })) },
  { weight: 2, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 8 })).map(([at, len]) => ({ kind: "delete" as const, at, len })) },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((at) => ({ kind: "truncate" as const, at })) },
  { weight: 1, arbitrary: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => ({ kind: "flip" as const, at, v })) },
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;
function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = buf;
  for (const m of ms) {
    const at = Math.floor(m.at * b.length);
    if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.kind === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
    else if (m.kind === "truncate") b = b.subarray(0, at);
    else if (b.length > 0) {
      b = Buffer.from(b);
      b[Math.min(at, b.length - 1)] = m.v;
    }
  }
  return b;
}

/** Attacks by construction: each must be refused with the given code whatever the chunking. */
const ATTACKS: { label: string; input: () => Buffer; code: string }[] = [
  { label: "billion laughs DTD", code: "XML_RESTRICTED", input: () => Buffer.from(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">${
    Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ""};`.repeat(10)}">`).join("")}]>${HEADER.slice(21)}<message>&lol9;</message>`) },
  { label: "billion laughs reference without DTD", code: "XML_RESTRICTED", input: () => Buffer.from(`${HEADER}<message><body>${"&lol9;".repeat(1000)}</body></message>`) },
  { label: "external entity (XXE)", code: "XML_RESTRICTED", input: () => Buffer.from(`${HEADER}<message><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><body>&xxe;</body></message>`) },
  { label: "comment inside a stanza", code: "XML_RESTRICTED", input: () => Buffer.from(`${HEADER}<message><!-- ${"x".repeat(100)} --></message>`) },
  { label: "PI inside a stanza", code: "XML_RESTRICTED", input: () => Buffer.from(`${HEADER}<message><?evil x?></message>`) },
  { label: "comment between stanzas", code: "XML_RESTRICTED", input: () => Buffer.from(`${HEADER}<!-- hi -->`) },
  { label: "deep nesting (10 000)", code: "XML_TOO_DEEP", input: () => Buffer.from(`${HEADER}${"<a>".repeat(10_000)}`) },
  { label: "oversized stanza, one text node", code: "XML_STANZA_TOO_LARGE", input: () => Buffer.from(`${HEADER}<message><body>${"x".repeat(100_000)}</body></message>`) },
  { label: "oversized stanza, endless attribute", code: "XML_STANZA_TOO_LARGE", input: () => Buffer.from(`${HEADER}<message to='${"x".repeat(100_000)}`) },
  { label: "oversized stanza, endless CDATA", code: "XML_STANZA_TOO_LARGE", input: () => Buffer.from(`${HEADER}<message><![CDATA[${"]".repeat(100_000)}`) },
  { label: "oversized stanza, endless start tag", code: "XML_STANZA_TOO_LARGE", input: () => Buffer.from(`${HEADER}<message${" a=''".repeat(1).padEnd(100_000, " ")}`) },
  { label: "oversized header", code: "XML_HEADER_TOO_LARGE", input: () => Buffer.from(`<stream:stream xmlns:stream='x' ${" ".repeat(20_000)}>`) },
  { label: "long element name", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<${"a".repeat(5000)}/>`) },
  { label: "too many attributes", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<a ${Array.from({ length: 100 }, (_, i) => `a${i}='1'`).join(" ")}/>`) },
  { label: "duplicate attribute", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<message to='a' type='chat' to='b'/>`) },
  { label: "undeclared element prefix", code: "XML_BAD_PREFIX", input: () => Buffer.from(`${HEADER}<message><foo:bar/></message>`) },
  { label: "undeclared attribute prefix", code: "XML_BAD_PREFIX", input: () => Buffer.from(`${HEADER}<message foo:to='x'/>`) },
  { label: "prefix declared only on a sibling", code: "XML_BAD_PREFIX", input: () => Buffer.from(`${HEADER}<m><a xmlns:p='u'/><p:b/></m>`) },
  { label: "prefix used after its scope closed", code: "XML_BAD_PREFIX", input: () => Buffer.from(`${HEADER}<m xmlns:p='u'/><p:m/>`) },
  { label: "CDATA between stanzas", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<![CDATA[x]]>`) },
  { label: "']]>' in text", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<message><body>a]]>b</body></message>`) },
  { label: "unterminated CDATA swallowing the close tag", code: "XML_STANZA_TOO_LARGE", input: () => Buffer.from(`${HEADER}<message><![CDATA[</message></stream:stream>${"y".repeat(5000)}`) },
  { label: "NUL byte", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<message>\u0000</message>`) },
  { label: "U+FFFE", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<message>\ufffe</message>`) },
  { label: "UTF-16 surrogate in UTF-8 (CESU)", code: "XML_INVALID_UTF8", input: () => Buffer.concat([Buffer.from(`${HEADER}<message>`), Buffer.from([0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]), Buffer.from("</message>")]) },
  { label: "overlong '<'", code: "XML_INVALID_UTF8", input: () => Buffer.concat([Buffer.from(`${HEADER}<message>`), Buffer.from([0xc0, 0xbc]), Buffer.from("</message>")]) },
  { label: "UTF-16 stream", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}`, "utf16le") },
  { label: "non-UTF-8 encoding declaration", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`<?xml version='1.0' encoding='UTF-16'?>`) },
  { label: "unbalanced close", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}<message></presence>`) },
  { label: "stray close tag", code: "XML_NOT_WELL_FORMED", input: () => Buffer.from(`${HEADER}</message>`) },
];

// ----------------------------------------------------------------------------------------------- tests

describe("byte peeks (the room fast path) agree with the parser", () => {
  it("directChildren and attrSpan give what ltx builds, for any well-formed stanza", () => {
    fc.assert(
      fc.property(stanza, (s) => {
        const bytes = Buffer.from(s);
        const el = parseStanza(bytes);
        const kids = el.children.filter((c): c is Element => c instanceof Element).map((c) => ({ name: c.name, xmlns: c.attrs.xmlns as string | undefined }));
        expect(directChildren(bytes)).toEqual(kids);
        for (const [k, v] of Object.entries(el.attrs as Record<string, string>)) {
          if (!/^[\x20-\x7e]+$/.test(k)) continue; // the peeks take ASCII names (to, from, type, xmlns)
          const span = attrSpan(bytes, k);
          expect(span).toBeDefined();
          // the raw value between its quotes: what splicing replaces
          const q = bytes[span!.start - 1];
          expect(q === 0x22 || q === 0x27).toBe(true);
          expect(bytes[span!.end]).toBe(q);
          const raw = bytes.toString("utf8", span!.start, span!.end);
          expect(raw.includes(String.fromCharCode(q!))).toBe(false);
          if (!raw.includes("&")) expect(raw).toBe(v);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("framer fuzz", () => {
  it("differential: valid stanzas come out as exactly the input split, for any chunking", () => {
    fc.assert(fc.property(fc.array(fc.tuple(keepalive, stanza), { minLength: 1, maxLength: 8 }), chunkings(), (items, cut) => {
      const input = Buffer.from(HEADER + items.map(([ws, s]) => ws + s).join("") + "</stream:stream>");
      const o = run(split(input, cut(input.length)), { maxStanzaSize: 1 << 20, maxDepth: 64 });
      if (o.error) throw new Error(`valid input refused: ${o.error.code} ${o.error.message}\n${input.toString()}`);
      expect(stanzasOf(o.events)).toEqual(items.map(([, s]) => s));
      expect(o.events[0]).toMatchObject({ type: "open", name: "stream:stream", attrs: { to: "localhost", version: "1.0" } });
      expect(o.events.at(-1)).toEqual({ type: "close" });
      checkOutcome(o, { maxStanzaSize: 1 << 20, maxDepth: 64 });
    }), { numRuns: RUNS });
  });

  it("mutated streams: only FramingError escapes, memory bounded, emitted stanzas well-formed", () => {
    fc.assert(fc.property(fc.array(stanza, { minLength: 1, maxLength: 5 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), chunkings(),
      (stanzas, ms, cut) => {
        const input = mutate(Buffer.from(HEADER + stanzas.join(" ")), ms);
        checkOutcome(run(split(input, cut(input.length))));
      }), { numRuns: RUNS });
  });

  it("random bytes and token soup: only FramingError escapes, memory bounded", () => {
    const soup = fc.array(fc.oneof(
      fc.constantFrom(...NASTY).map((s) => Buffer.from(s)),
      fc.constantFrom(...INVALID_UTF8).map((b) => Buffer.from(b)),
      fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)),
      stanza.map((s) => Buffer.from(s)),
    ), { maxLength: 30 }).map((parts) => Buffer.concat(parts));
    fc.assert(fc.property(fc.boolean(), soup, chunkings(), (withHeader, body, cut) => {
      const input = withHeader ? Buffer.concat([Buffer.from(HEADER), body]) : body;
      checkOutcome(run(split(input, cut(input.length))));
    }), { numRuns: RUNS });
  });

  it("the verdict does not depend on the chunking", () => {
    const input = fc.tuple(fc.array(stanza, { minLength: 1, maxLength: 4 }), fc.array(mutation, { maxLength: 3 }))
      .map(([ss, ms]) => mutate(Buffer.from(HEADER + ss.join("")), ms));
    fc.assert(fc.property(input, chunkings(), (buf, cut) => {
      const whole = run([buf]);
      const cutUp = run(split(buf, cut(buf.length)));
      expect(stanzasOf(cutUp.events)).toEqual(stanzasOf(whole.events));
      expect(cutUp.error?.code).toBe(whole.error?.code);
    }), { numRuns: RUNS });
  });

  it.each(ATTACKS)("refuses $label with $code in any chunking", ({ input, code }) => {
    const buf = input();
    fc.assert(fc.property(chunkings(), (cut) => {
      const o = run(split(buf, cut(buf.length)));
      expect(o.error?.code).toBe(code);
      checkOutcome(o);
    }), { numRuns: 50 });
  });

  it("a stream restart after a refused frame is not needed: the framer stays dead-safe after an error", () => {
    // after a FramingError the connection is closed; feeding more must still only throw FramingError
    fc.assert(fc.property(fc.constantFrom(...ATTACKS), fc.uint8Array({ maxLength: 64 }), (a, more) => {
      const f = new Framer(LIMITS);
      for (const chunk of [a.input(), Buffer.from(more)]) {
        try {
          f.push(chunk);
        } catch (e) {
          if (!(e instanceof FramingError)) throw e;
        }
      }
    }), { numRuns: 200 });
  });
});
