import { FramingError } from "./errors.js";
import { B, isForbiddenControl, isNameByte, isNameStartByte, isSpace, tokString } from "./framer/bytes.js";
import { FrameCollector } from "./framer/collector.js";
import {
  DEFAULT_LIMITS, Max, frameLimit, tooDeep, type FramerLimits,
} from "./framer/limits.js";
import { bangByte, declByte } from "./framer/markup.js";
import { NamespaceScopes } from "./framer/namespaces.js";
import { checkReference, decodeAttr } from "./framer/references.js";

export { DEFAULT_LIMITS, type FramerLimits };

/**
 * Byte-level XMPP stream framer.
 *
 * It scans raw bytes (never decoded text, so a UTF-8 character split across two TCP chunks cannot
 * be corrupted) and cuts the stream into its header, top-level elements (stanzas and nonzas) and its
 * close tag. Every limit is checked while scanning, before anything is buffered past it:
 *  - a stanza may not exceed `maxStanzaSize` bytes, nor nest deeper than `maxDepth` levels;
 *  - RFC 6120 §11.1 restricted XML (comments, processing instructions, DTDs, entity references other
 *    than the five predefined ones) is refused with <restricted-xml/>;
 *  - anything that is not well-formed (mismatched tags, bad attributes, control characters,
 *    invalid UTF-8, U+FFFE/U+FFFF, "]]>" in text, text between stanzas) is refused with <not-well-formed/>;
 *  - a namespace prefix used but not declared (Namespaces in XML 1.0 §5) is refused with
 *    <bad-namespace-prefix/> before it can reach the server (whose parser would drop the stream).
 * Memory held for an unfinished frame (`bufferedBytes`) never exceeds the applicable limit plus a
 * small constant; core/xml/framer.fuzz.test.ts checks that and the rest on generated input.
 * Stanzas come out as the exact bytes the peer sent, so untouched stanzas can be forwarded without
 * building an element tree.
 *
 * This file is the tokenizer: one state machine over the bytes, kept in a single loop because it
 * runs for every byte the proxy reads (bench/framer-ab.ts measures it). What it checks along the
 * way lives beside it in ./framer/: byte classes, limits, '<!' and '<?' constructs, references,
 * namespace prefixes, and the collection and UTF-8 check of each frame.
 */
export type FrameEvent =
  | { type: "open"; name: string; attrs: Record<string, string> }
  | { type: "stanza"; name: string; bytes: Buffer }
  | { type: "close" };

const enum S {
  Text,
  TagOpen, // just read '<'
  Bang, // '<!' — CDATA allowed inside stanzas, comments/DTD refused
  Cdata,
  Decl, // '<?' — only '<?xml …?>' before the stream header
  StartName,
  EndName,
  EndTagSpace,
  InTag,
  SelfCloseGt,
  AttrName,
  AttrEq,
  AttrQuote,
  AttrValue,
  Entity,
  Closed,
}

function malformed(message: string): FramingError {
  return new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", message);
}

export class Framer {
  private limits: FramerLimits;
  private state = S.Text;
  private returnState = S.Text; // where an entity reference returns to
  private depth = 0; // 0 = before the header, 1 = inside <stream:stream>
  private stack: string[] = [];
  private tok: number[] = []; // bytes of the name/entity/bang being read
  private tagName = "";
  private attrNames: string[] = [];
  private attrName = "";
  private attrVal: number[] = [];
  private attrs: Record<string, string> = {};
  private quote = 0;
  private spaceBeforeAttr = false;
  private sawDecl = false;
  private sawAnything = false;
  private cdataMatch = 0;
  private failed: FramingError | undefined;
  /** Consecutive ']' in character data, across chunks ("]]>" is not allowed there, XML 1.0 §2.4). */
  private textBrackets = 0;
  private ns = new NamespaceScopes();
  /** Prefixes declared and prefixed attribute names seen in the tag being read. */
  private declHere: string[] = [];
  private prefixedAttrs: string[] = [];
  /** The current top-level element (or stream header) being collected, and its name. */
  private frame = new FrameCollector();
  private topName = "";

  constructor(limits: Partial<FramerLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Changes the limits for the frames that follow (e.g. tighter before authentication). */
  setLimits(limits: Partial<FramerLimits>): void {
    this.limits = { ...this.limits, ...limits };
  }

  /** Stream restart (after STARTTLS or SASL success, RFC 6120 §5.4.3.3, §6.4.6): expect a new header. */
  reset(): void {
    if (this.failed) return;
    this.state = S.Text;
    this.depth = 0;
    this.stack = [];
    this.tok = [];
    this.frame.drop();
    this.sawDecl = false;
    this.sawAnything = false;
    this.ns.clear();
    this.textBrackets = 0;
  }

  /**
   * Bytes this framer holds for an unfinished frame (collected chunks plus the token being read).
   * Never more than the stanza (or header) limit plus a small constant: the fuzz suite checks it.
   */
  get bufferedBytes(): number {
    return this.frame.held + this.tok.length + this.attrVal.length;
  }

  /**
   * Feed bytes; returns the frames they complete and, on bad input, the FramingError together with
   * the frames completed before the offending byte (a streaming parser on the server would have
   * processed those too, so the outcome does not depend on how TCP cut the bytes). After an error
   * the framer is dead: every later call reports the same error and no frames.
   */
  pushSafe(data: Buffer): { events: FrameEvent[]; error?: FramingError } {
    const out: FrameEvent[] = [];
    if (this.failed) return { events: out, error: this.failed };
    try {
      this.scan(data, out);
      return { events: out };
    } catch (e) {
      const err = e instanceof FramingError ? e
        : new FramingError("XML_INTERNAL", "internal-server-error", `internal error: ${(e as Error).message}`);
      this.failed = err;
      this.state = S.Closed;
      this.frame.drop();
      this.tok = [];
      this.attrVal = [];
      return { events: out, error: err };
    }
  }

  /** Feed bytes; returns the complete frames they finish. Throws FramingError on bad input. */
  push(data: Buffer): FrameEvent[] {
    const r = this.pushSafe(data);
    if (r.error) throw r.error;
    return r.events;
  }

  private scan(data: Buffer, out: FrameEvent[]): FrameEvent[] {
    if (this.state === S.Closed) return out;
    this.frame.nextChunk();
    const n = data.length;
    for (let i = 0; i < n; i++) {
      const c = data[i]!;
      if (c < 0x20 && isForbiddenControl(c) && this.state !== S.Closed) throw malformed("control character in XML");
      switch (this.state) {
        case S.Text: {
          if (c === B.LT) {
            this.textBrackets = 0;
            // a '<' at the stream's top level begins a frame: the header (depth 0) or a stanza (depth 1)
            if (this.depth <= 1 && !this.frame.active) {
              this.frame.begin(i);
              this.topName = "";
            }
            this.state = S.TagOpen;
          } else if (this.depth <= 1) {
            // RFC 6120 §4.1: between stanzas only whitespace (keepalives) may appear
            if (!isSpace(c)) throw malformed("text outside of a stanza");
          } else if (c === B.AMP) {
            this.textBrackets = 0;
            this.returnState = S.Text;
            this.tok = [];
            this.state = S.Entity;
          } else if (c === B.RBRACKET) {
            this.textBrackets++;
          } else if (this.textBrackets !== 0) {
            // counted across chunks: "]]" at the end of one chunk and ">" at the start of the next
            if (c === B.GT && this.textBrackets >= 2) throw malformed("']]>' in character data");
            this.textBrackets = 0;
          } else {
            // plain character data: skip to the next byte that means anything here ('<', '&', ']' or
            // a control character, which the loop's check above then sees)
            while (i + 1 < n) {
              const d = data[i + 1]!;
              if (d === B.LT || d === B.AMP || d === B.RBRACKET || d < 0x20) break;
              i++;
            }
          }
          break;
        }
        case S.TagOpen: {
          this.sawAnything = true;
          if (c === B.SLASH) {
            this.tok = [];
            this.state = S.EndName;
          } else if (c === B.BANG) {
            this.tok = [];
            this.state = S.Bang;
          } else if (c === B.QM) {
            if (this.depth !== 0 || this.sawDecl || this.stack.length > 0) {
              throw new FramingError("XML_RESTRICTED", "restricted-xml", "processing instruction");
            }
            this.tok = [];
            this.state = S.Decl;
          } else if (isNameStartByte(c)) {
            this.tok = [];
            this.tok.push(c);
            this.state = S.StartName;
          } else {
            throw malformed("bad character after '<'");
          }
          break;
        }
        case S.Decl: {
          if (declByte(this.tok, c)) {
            this.sawDecl = true;
            this.frame.drop(); // the declaration is not part of the header frame
            this.state = S.Text;
          }
          break;
        }
        case S.Bang: {
          if (bangByte(this.tok, c, this.depth)) {
            this.cdataMatch = 0;
            this.state = S.Cdata;
          }
          break;
        }
        case S.Cdata: {
          if (c === B.RBRACKET) this.cdataMatch = Math.min(this.cdataMatch + 1, 2);
          else if (c === B.GT && this.cdataMatch === 2) this.state = S.Text;
          else this.cdataMatch = 0;
          break;
        }
        case S.StartName: {
          if (isNameByte(c)) {
            this.tok.push(c);
            if (this.tok.length > Max.NAME_BYTES) throw malformed("name too long");
          } else {
            this.tagName = tokString(this.tok);
            this.attrNames = [];
            if (this.declHere.length !== 0) this.declHere = [];
            if (this.prefixedAttrs.length !== 0) this.prefixedAttrs = [];
            this.attrs = {};
            this.spaceBeforeAttr = false;
            this.state = S.InTag;
            i--; // re-read this byte in InTag
          }
          break;
        }
        case S.InTag: {
          if (isSpace(c)) this.spaceBeforeAttr = true;
          else if (c === B.GT) this.openElement(out, data, i, false);
          else if (c === B.SLASH) this.state = S.SelfCloseGt;
          else if (isNameStartByte(c) && this.spaceBeforeAttr) {
            this.tok = [];
            this.tok.push(c);
            this.state = S.AttrName;
          } else {
            throw malformed("bad character in tag");
          }
          break;
        }
        case S.SelfCloseGt: {
          if (c !== B.GT) throw malformed("expected '>' after '/'");
          this.openElement(out, data, i, true);
          break;
        }
        case S.AttrName: {
          if (isNameByte(c)) {
            this.tok.push(c);
            if (this.tok.length > Max.NAME_BYTES) throw malformed("name too long");
            break;
          }
          const name = tokString(this.tok);
          // XML 1.0 §3.1 (Unique Att Spec)
          if (this.attrNames.includes(name)) throw malformed("duplicate attribute");
          if (this.attrNames.length >= Max.ATTRIBUTES) throw new FramingError("XML_NOT_WELL_FORMED", "policy-violation", "too many attributes");
          this.attrNames.push(name);
          if (name.includes(":")) {
            // Namespaces in XML 1.0 §3: xmlns:p declares p; any other prefix must be declared
            if (name.startsWith("xmlns:")) this.declHere.push(name.slice(6));
            else if (!name.startsWith("xml:")) this.prefixedAttrs.push(name); // xml: is always bound (xml:lang)
          }
          this.attrName = name;
          this.state = S.AttrEq;
          i--;
          break;
        }
        case S.AttrEq: {
          if (c === B.EQ) this.state = S.AttrQuote;
          else if (!isSpace(c)) throw malformed("expected '=' after attribute name");
          break;
        }
        case S.AttrQuote: {
          if (c === B.DQ || c === B.SQ) {
            this.quote = c;
            this.attrVal = [];
            this.state = S.AttrValue;
          } else if (!isSpace(c)) {
            throw malformed("attribute value not quoted");
          }
          break;
        }
        case S.AttrValue: {
          if (c === this.quote) {
            // only the stream header's attributes are kept (the open event carries them)
            if (this.depth === 0 && this.attrName !== "__proto__") this.attrs[this.attrName] = decodeAttr(Buffer.from(this.attrVal).toString("utf8"));
            this.spaceBeforeAttr = false;
            this.state = S.InTag;
          } else if (c === B.LT) {
            throw malformed("'<' in attribute value"); // XML 1.0 §3.1 WFC: No < in Attribute Values
          } else {
            if (this.depth === 0) this.attrVal.push(c);
            if (c === B.AMP) {
              this.returnState = S.AttrValue;
              this.tok = [];
              this.state = S.Entity;
            } else if (this.depth !== 0) {
              // inside a stanza the value is not kept: skip to the closing quote or a byte that matters
              const q = this.quote;
              while (i + 1 < n) {
                const d = data[i + 1]!;
                if (d === q || d === B.LT || d === B.AMP || d < 0x20) break;
                i++;
              }
            }
          }
          break;
        }
        case S.Entity: {
          if (c === B.SEMI) {
            checkReference(tokString(this.tok));
            if (this.returnState === S.AttrValue && this.depth === 0) {
              for (const b of this.tok) this.attrVal.push(b);
              this.attrVal.push(B.SEMI);
            }
            this.state = this.returnState;
          } else {
            this.tok.push(c);
            if (this.tok.length > Max.ENTITY_BYTES || !isNameByte(c)) throw malformed("bad entity reference");
          }
          break;
        }
        case S.EndName: {
          if (isNameByte(c)) {
            this.tok.push(c);
            if (this.tok.length > Max.NAME_BYTES) throw malformed("name too long");
          } else if (isSpace(c)) {
            this.state = S.EndTagSpace;
          } else if (c === B.GT) {
            this.closeElement(out, data, i);
          } else {
            throw malformed("bad end tag");
          }
          break;
        }
        case S.EndTagSpace: {
          if (c === B.GT) this.closeElement(out, data, i);
          else if (!isSpace(c)) throw malformed("bad end tag");
          break;
        }
        case S.Closed:
          return out;
      }
    }
    if (this.frame.active) this.frame.keepRest(data, frameLimit(this.limits, this.depth === 0), this.depth === 0);
    return out;
  }

  private finishFrame(data: Buffer, i: number): Buffer {
    return this.frame.finish(data, i, frameLimit(this.limits, this.depth === 0), this.depth === 0);
  }

  private openElement(out: FrameEvent[], data: Buffer, i: number, selfClosing: boolean): void {
    const name = this.tagName;
    this.state = S.Text;
    if (this.depth > 0 && (this.declHere.length > 0 || this.prefixedAttrs.length > 0 || name.includes(":"))) {
      this.ns.check(name, this.declHere, this.prefixedAttrs);
    }
    if (this.declHere.length > 0 && !selfClosing) this.ns.open(this.depth, this.declHere);
    if (this.depth === 0) {
      this.finishFrame(data, i); // validates size and UTF-8 of the header
      this.depth = 1;
      this.stack.push(name);
      out.push({ type: "open", name, attrs: this.attrs });
      if (selfClosing) {
        this.state = S.Closed;
        out.push({ type: "close" });
      }
      return;
    }
    if (this.depth === 1) this.topName = name;
    // the new element sits at nesting level `depth` inside the stream (a stanza is level 1)
    if (this.depth > this.limits.maxDepth) throw tooDeep(this.limits.maxDepth);
    if (selfClosing) {
      if (this.depth === 1) out.push({ type: "stanza", name, bytes: this.finishFrame(data, i) });
      return;
    }
    this.depth++;
    this.stack.push(name);
  }

  private closeElement(out: FrameEvent[], data: Buffer, i: number): void {
    const name = tokString(this.tok);
    this.state = S.Text;
    const open = this.stack.pop();
    if (open !== name) throw malformed("mismatched end tag");
    this.depth--;
    this.ns.close(this.depth);
    if (this.depth === 0) {
      this.frame.active = false;
      this.state = S.Closed;
      out.push({ type: "close" });
    } else if (this.depth === 1) {
      out.push({ type: "stanza", name: this.topName, bytes: this.finishFrame(data, i) });
    }
  }

  /** True once a header has been read in the current stream. */
  get opened(): boolean {
    return this.depth > 0 || this.state === S.Closed;
  }

  /** True when any byte of the current stream has been seen (used for idle/auth timeouts). */
  get started(): boolean {
    return this.sawAnything;
  }
}
