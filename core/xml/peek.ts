/**
 * Reads one attribute of a framed stanza's top-level tag straight from its bytes, without
 * building a tree: the routing fast path only needs `to` to tell room traffic from the rest.
 * The framer has already proved the bytes well-formed, so the first '>' outside a quoted value
 * ends the start tag.
 */
function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/**
 * Walks the attributes of the start tag (name, '=', quoted value) without decoding the tag:
 * this runs for every client stanza. A value is only compared, never searched, so an attribute
 * spelled inside another attribute's value (`id=" to='x'"`) is not mistaken for the real one.
 */
export function peekAttr(bytes: Buffer, name: string): string | undefined {
  const span = attrSpan(bytes, name);
  if (!span) return undefined;
  const raw = bytes.toString("utf8", span.start, span.end);
  return raw.includes("&") ? raw.replace(/&(lt|gt|amp|quot|apos);/g, (_x, e: string) =>
    ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e as "lt"]) : raw;
}

/** Whether `needle` occurs in the bytes (ASCII needles only). */
export function bytesInclude(bytes: Buffer, needle: string): boolean {
  return bytes.includes(needle, 0, "latin1");
}

/** Where an attribute's raw value lies in the bytes (between the quotes, still escaped). */
export interface ValueSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * The span of one attribute's raw value in the top-level start tag, as peekAttr finds it: the fan-out
 * splices a session's JID there, so the rest of the stanza goes out as the server sent it. `name` is
 * ASCII (it is compared byte by byte).
 */
export function attrSpan(bytes: Buffer, name: string): ValueSpan | undefined {
  const n = bytes.length;
  const nl = name.length;
  let i = 1;
  while (i < n && !isSpace(bytes[i]) && bytes[i] !== 0x3e && bytes[i] !== 0x2f) i++;
  while (i < n) {
    const c = bytes[i]!;
    if (c === 0x3e) return undefined;
    if (isSpace(c) || c === 0x2f) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && !isSpace(bytes[i]) && bytes[i] !== 0x3d) i++;
    let match = i - start === nl;
    for (let k = 0; match && k < nl; k++) if (bytes[start + k] !== name.charCodeAt(k)) match = false;
    while (isSpace(bytes[i])) i++;
    if (bytes[i] !== 0x3d) return undefined;
    i++;
    while (isSpace(bytes[i])) i++;
    const q = bytes[i];
    if (q !== 0x22 && q !== 0x27) return undefined;
    const end = bytes.indexOf(q, i + 1);
    if (end < 0) return undefined;
    if (match) return { start: i + 1, end };
    i = end + 1;
  }
  return undefined;
}

/** A direct child of a stanza as written: its qualified name and its own `xmlns` attribute, if any. */
export interface ChildTag {
  readonly name: string;
  readonly xmlns: string | undefined;
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QMARK = 0x3f;

/**
 * The direct children of a framed stanza, from its bytes, without building a tree: enough for the
 * room fast path to know what a message carries (docs/architecture.md §2.2). The framer has proved the
 * bytes well-formed and restricted (RFC 6120 §11.1: no comments, PIs or DTDs; CDATA allowed), so '<'
 * only opens a tag or a CDATA section, and '>' inside a tag only occurs in quoted values.
 * Undefined when the bytes are not what the framer lets through (then the caller parses).
 */
export function directChildren(bytes: Buffer): ChildTag[] | undefined {
  const n = bytes.length;
  const out: ChildTag[] = [];
  let i = endOfTag(bytes, 0);
  if (i < 0) return undefined;
  if (bytes[i - 1] === SLASH) return out; // <message/>
  let depth = 1;
  i++;
  while (i < n) {
    const lt = bytes.indexOf(LT, i);
    if (lt < 0) return undefined;
    const c = bytes[lt + 1];
    if (c === SLASH) {
      depth--;
      const gt = bytes.indexOf(GT, lt + 2);
      if (gt < 0) return undefined;
      if (depth === 0) return gt === n - 1 ? out : undefined;
      i = gt + 1;
      continue;
    }
    if (c === BANG) {
      // <![CDATA[ … ]]> (a comment or DTD never gets past the framer)
      const close = bytes.indexOf("]]>", lt + 2, "latin1");
      if (close < 0) return undefined;
      i = close + 3;
      continue;
    }
    if (c === QMARK) return undefined;
    const gt = endOfTag(bytes, lt);
    if (gt < 0) return undefined;
    const selfClosing = bytes[gt - 1] === SLASH;
    if (depth === 1) {
      let e = lt + 1;
      while (e < gt && !isSpace(bytes[e]) && bytes[e] !== SLASH && bytes[e] !== GT) e++;
      const tag = bytes.subarray(lt, gt + 1);
      out.push({ name: bytes.toString("utf8", lt + 1, e), xmlns: peekAttr(tag, "xmlns") });
    }
    if (!selfClosing) depth++;
    i = gt + 1;
  }
  return undefined;
}

/** The '>' that ends the tag opening at `lt`, skipping quoted values; -1 if none. */
function endOfTag(bytes: Buffer, lt: number): number {
  const n = bytes.length;
  let i = lt + 1;
  while (i < n) {
    const c = bytes[i]!;
    if (c === GT) return i;
    if (c === 0x22 || c === 0x27) {
      const end = bytes.indexOf(c, i + 1);
      if (end < 0) return -1;
      i = end + 1;
      continue;
    }
    i++;
  }
  return -1;
}
