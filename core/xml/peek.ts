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
  const n = bytes.length;
  const nl = name.length;
  let i = 1;
  while (i < n && !isSpace(bytes[i]) && bytes[i] !== 0x3e && bytes[i] !== 0x2f) i++; // the element name
  while (i < n) {
    const c = bytes[i]!;
    if (c === 0x3e) return undefined; // end of the start tag ('>' or '/>')
    if (isSpace(c) || c === 0x2f) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && !isSpace(bytes[i]) && bytes[i] !== 0x3d) i++;
    let match = i - start === nl;
    for (let k = 0; match && k < nl; k++) if (bytes[start + k] !== name.charCodeAt(k)) match = false;
    while (isSpace(bytes[i])) i++;
    if (bytes[i] !== 0x3d) return undefined; // not well-formed: the framer never lets that through
    i++;
    while (isSpace(bytes[i])) i++;
    const q = bytes[i];
    if (q !== 0x22 && q !== 0x27) return undefined;
    const end = bytes.indexOf(q, i + 1);
    if (end < 0) return undefined;
    if (match) {
      const raw = bytes.toString("utf8", i + 1, end);
      return raw.includes("&") ? raw.replace(/&(lt|gt|amp|quot|apos);/g, (_x, e: string) =>
        ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e as "lt"]) : raw;
    }
    i = end + 1;
  }
  return undefined;
}

/** Whether `needle` occurs in the bytes (ASCII needles only). */
export function bytesInclude(bytes: Buffer, needle: string): boolean {
  return bytes.includes(needle, 0, "latin1");
}
