/**
 * RFC 7395 framing: the translation between the RFC 6120 byte stream the session speaks and the
 * XMPP-over-WebSocket message form, where every WebSocket text message is one complete, namespace-
 * qualified XML element and the stream header / close tag become `<open/>` / `<close/>` in
 * urn:ietf:params:xml:ns:xmpp-framing.
 */
import { Framer, type FramerLimits } from "../../core/xml/framer.js";
import { FramingError } from "../../core/xml/errors.js";
import { escapeXML, parseStanza } from "../../core/xml/element.js";
import { peekAttr } from "../../core/xml/peek.js";
import { NS_CLIENT, NS_FRAMING, NS_STREAM } from "../../core/xml/ns.js";

/** The WebSocket subprotocol (RFC 7395 §3.1, IANA registry). */
export const WS_SUBPROTOCOL = "xmpp";
export const WS_CLOSE = `<close xmlns='${NS_FRAMING}'/>`;

/** Primes a framer so that each WebSocket message is read as one top-level element of a stream. */
const SYNTHETIC_HEADER = Buffer.from(`<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'>`);

export type IncomingFrame =
  | { type: "open"; attrs: Record<string, string> }
  | { type: "close" }
  | { type: "stanza"; name: string; bytes: Buffer }
  /** A whitespace-only message (RFC 7395 §3.8: pings, not whitespace; tolerated). */
  | { type: "none" };

function notOneElement(): FramingError {
  return new FramingError("XML_NOT_WELL_FORMED", "not-well-formed", "a WebSocket message must hold exactly one complete XML element");
}

const XML_DECL = /^\s*<\?xml\s[^>]*\?>/;

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Length of the message without leading and trailing XML whitespace. */
function trimmedLength(b: Buffer): number {
  let i = 0;
  let j = b.length;
  while (i < j && isSpace(b[i])) i++;
  while (j > i && isSpace(b[j - 1])) j--;
  return j - i;
}

/**
 * Incoming side: validates each message with the byte framer (every limit and check of the TCP
 * path applies) and requires exactly one element per message (RFC 7395 §3.3.1).
 */
export class IncomingFramer {
  private readonly framer: Framer;

  constructor(limits: Partial<FramerLimits>) {
    this.framer = new Framer(limits);
    this.framer.push(SYNTHETIC_HEADER);
  }

  setLimits(limits: Partial<FramerLimits>): void {
    this.framer.setLimits(limits);
  }

  /** One WebSocket text message → one frame. Throws FramingError; after that the stream is dead. */
  message(data: Buffer): IncomingFrame {
    // a standalone document may start with an XML declaration; it carries nothing we need
    if (data.length > 5 && data[0] === 0x3c && data[1] === 0x3f) {
      const m = XML_DECL.exec(data.toString("latin1", 0, Math.min(data.length, 256)));
      if (m) data = data.subarray(m[0].length);
    }
    const { events, error } = this.framer.pushSafe(data);
    if (error) throw error;
    const ev = events[0];
    const content = trimmedLength(data);
    if (ev === undefined && content === 0) return { type: "none" };
    // the element's bytes run from its '<' to its '>': anything else in the message is a second,
    // unfinished element (the framer already refused text between elements)
    if (events.length !== 1 || ev === undefined || ev.type !== "stanza" || ev.bytes.length !== content) throw notOneElement();
    if (ev.name === "open" || ev.name === "close") {
      const el = parseStanza(ev.bytes);
      if (el.attrs.xmlns === NS_FRAMING) {
        if (el.children.length > 0) throw new FramingError("XML_NOT_WELL_FORMED", "invalid-xml", `<${ev.name}/> has no content`);
        return ev.name === "open" ? { type: "open", attrs: { ...(el.attrs as Record<string, string>) } } : { type: "close" };
      }
    }
    return { type: "stanza", name: ev.name, bytes: ev.bytes };
  }
}

/** Stream header attributes as ClientStream.onOpen expects them from an RFC 6120 stream. */
export function openToStreamAttrs(attrs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...attrs };
  out.xmlns = NS_CLIENT;
  out["xmlns:stream"] = NS_STREAM;
  return out;
}

function openElement(attrs: Record<string, string>): string {
  let s = `<open xmlns='${NS_FRAMING}'`;
  for (const k of ["from", "to", "id", "version", "xml:lang"]) {
    const v = attrs[k];
    if (v !== undefined) s += ` ${k}='${escapeXML(v)}'`;
  }
  return s + "/>";
}

/** Inserts ` attr` right after the element name of a framed top-level element. */
function withAttr(bytes: Buffer, name: string, attr: string): Buffer {
  const at = 1 + Buffer.byteLength(name);
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(attr), bytes.subarray(at)]);
}

/**
 * Outgoing side: cuts what the session writes (possibly several elements at once, e.g. a header
 * followed by a stream error) into one message per element and makes each self-contained: the
 * header becomes `<open/>`, the close tag `<close/>`, stream-level elements get xmlns:stream and
 * stanzas that inherited jabber:client from the stream get it declared.
 */
export class OutgoingTranslator {
  private readonly framer = new Framer({ maxStanzaSize: 1 << 30, maxDepth: 4096 });

  /** Returns the messages for one write, in order; `closed` once the stream close was among them. */
  translate(data: string | Buffer): { messages: (string | Buffer)[]; closed: boolean } {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let start = 0;
    while (start < buf.length && (buf[start] === 0x20 || buf[start] === 0x0a || buf[start] === 0x0d || buf[start] === 0x09)) start++;
    const messages: (string | Buffer)[] = [];
    if (start === buf.length) return { messages, closed: false }; // whitespace keepalive: WebSocket pings instead
    const isHeader = buf[start] === 0x3c && (buf[start + 1] === 0x3f || buf.toString("latin1", start + 1, start + 15) === "stream:stream ");
    if (isHeader) this.framer.reset();
    else if (!this.framer.opened) this.framer.push(SYNTHETIC_HEADER);
    let closed = false;
    for (const ev of this.framer.push(buf)) {
      if (ev.type === "open") messages.push(openElement(ev.attrs));
      else if (ev.type === "close") {
        messages.push(WS_CLOSE);
        closed = true;
      } else if (ev.name.startsWith("stream:")) {
        messages.push(peekAttr(ev.bytes, "xmlns:stream") === undefined ? withAttr(ev.bytes, ev.name, ` xmlns:stream='${NS_STREAM}'`) : ev.bytes);
      } else {
        messages.push(peekAttr(ev.bytes, "xmlns") === undefined ? withAttr(ev.bytes, ev.name, ` xmlns='${NS_CLIENT}'`) : ev.bytes);
      }
    }
    return { messages, closed };
  }
}
