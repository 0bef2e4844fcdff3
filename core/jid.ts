/**
 * XMPP addresses (RFC 7622), normalised well enough for a proxy that routes by account and room.
 *
 * What is done:
 * - split per RFC 7622 §3.1: the resourcepart is everything after the FIRST "/", the localpart is
 *   everything before the FIRST "@" of what remains (so a resource may contain "@" and "/");
 * - every part is NFC-normalised (PRECIS, RFC 8264 §5.2.6 / RFC 7622 §3.2–§3.4 all end in NFC);
 * - domainpart: lowercased, the IDNA full stops U+3002/U+FF0E/U+FF61 mapped to ".", one trailing "."
 *   stripped (RFC 7622 §3.2), empty labels rejected, IPv6 literals in brackets accepted;
 * - localpart: lowercased, and the characters RFC 7622 §3.3.1 forbids — `"&'/:<>@` — rejected, as is
 *   any whitespace or control character (PRECIS IdentifierClass has no spaces at all);
 * - resourcepart: case preserved (RFC 7622 §3.4 uses the OpaqueString profile, no case mapping), only
 *   control characters rejected;
 * - each part 1–1023 octets of UTF-8 (RFC 7622 §3.2, §3.3, §3.4).
 *
 * What is NOT done: full PRECIS (RFC 8264/8265) — no width mapping, no Unicode case *folding* beyond
 * String#toLowerCase, no disallowed-code-point tables, no IDNA2008 label validation / A-label
 * conversion, no bidi rule. Two JIDs the upstream server considers equal after full PRECIS may thus
 * compare unequal here in exotic cases (e.g. full-width Latin letters); plain ASCII and ordinary
 * Unicode letters behave as on the server.
 *
 * Which reading to use — all split the same way (RFC 7622 §3.1, {@link splitRaw}):
 * - {@link parseJid}: validates and normalises every part (NFC, PRECIS-ish). For JIDs that enter
 *   once per connection or account (config, SASL authzid, CLI), never per stanza.
 * - {@link splitJid} / {@link splitBare}: the per-stanza reading of the room machine — local and
 *   domain lowercased, one trailing "." of the domain dropped, the resource (a nick) kept byte for
 *   byte, empty parts refused; no NFC, no character checks (the server already checked them).
 * - {@link rawBare} / {@link rawLocal} / {@link rawDomain}: no normalisation at all, one indexOf and
 *   a slice; for routing peeks on the byte fast path and for taking apart a JID that is already
 *   normalised (a registry key). Lowercase at the call site where a key needs it.
 */
import { isIPv6 } from "node:net";

export interface Jid {
  local?: string;
  domain: string;
  resource?: string;
}

/** RFC 7622 §3.2/§3.3/§3.4: each part MUST NOT be more than 1023 octets. */
export const MAX_JID_PART_BYTES = 1023;

const LOCAL_FORBIDDEN = /["&'/:<>@\s\p{Cc}\p{Cs}]/u;
const CONTROL = /[\p{Cc}\p{Cs}]/u;
// Domain labels: ASCII letters/digits/hyphen/underscore (underscore appears in real-world SRV-ish
// names), or any Unicode letter/mark/number for IDNs in U-label form.
const DOMAIN_LABEL = /^[a-z0-9_\-\p{L}\p{M}\p{N}]+$/u;

function byteLength(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function validPartLength(s: string): boolean {
  const n = byteLength(s);
  return n >= 1 && n <= MAX_JID_PART_BYTES;
}

function normaliseDomain(raw: string): string | null {
  let d = raw.normalize("NFC").replace(/[\u3002\uFF0E\uFF61]/g, ".");
  if (d.endsWith(".")) d = d.slice(0, -1);
  d = d.toLowerCase();
  if (!validPartLength(d)) return null;
  if (d.startsWith("[")) {
    // IP-literal (RFC 7622 §3.2 refers to RFC 3986 IP-literal). Only IPv6 is meaningful here.
    if (!d.endsWith("]") || !isIPv6(d.slice(1, -1))) return null;
    return d;
  }
  for (const label of d.split(".")) {
    if (!DOMAIN_LABEL.test(label)) return null; // also rejects empty labels ("a..b", ".a")
    // DNS label limit (RFC 1035 §2.3.4); only checkable for ASCII labels without IDNA conversion.
    if (/^[\x00-\x7f]+$/.test(label) && label.length > 63) return null;
  }
  return d;
}

function normaliseLocal(raw: string): string | null {
  const l = raw.normalize("NFC").toLowerCase();
  if (!validPartLength(l) || LOCAL_FORBIDDEN.test(l)) return null;
  return l;
}

function normaliseResource(raw: string): string | null {
  const r = raw.normalize("NFC");
  if (!validPartLength(r) || CONTROL.test(r)) return null;
  return r;
}

/**
 * RFC 7622 §3.1, nothing normalised or checked: the resourcepart is everything after the FIRST "/",
 * the localpart everything before the FIRST "@" of what remains (so a resource may hold "@" and "/").
 * Absent parts are undefined; present ones may be empty.
 */
export function splitRaw(s: string): { local: string | undefined; domain: string; resource: string | undefined } {
  const bareJid = rawBare(s);
  const at = bareJid.indexOf("@");
  return {
    local: at < 0 ? undefined : bareJid.slice(0, at),
    domain: at < 0 ? bareJid : bareJid.slice(at + 1),
    resource: bareJid.length === s.length ? undefined : s.slice(bareJid.length + 1),
  };
}

/** Parses and normalises a JID; null when it is not a valid JID. */
export function parseJid(s: string): Jid | null {
  if (typeof s !== "string" || s.length === 0) return null;
  // A cheap bound before any normalisation work: 3 parts × 1023 octets + 2 separators; a UTF-16 code
  // unit never encodes to fewer than 1 octet, so a longer string cannot be valid.
  if (s.length > 3 * MAX_JID_PART_BYTES + 2) return null;

  const raw = splitRaw(s);
  const resource = raw.resource === undefined ? undefined : normaliseResource(raw.resource);
  if (resource === null) return null;
  const local = raw.local === undefined ? undefined : normaliseLocal(raw.local);
  if (local === null) return null;
  const domain = normaliseDomain(raw.domain);
  if (domain === null) return null;

  const jid: Jid = { domain };
  if (local !== undefined) jid.local = local;
  if (resource !== undefined) jid.resource = resource;
  return jid;
}

/** The bare JID (RFC 6120 §1.4): the JID without its resourcepart. */
export function bare(jid: Jid): Jid {
  return jid.local !== undefined ? { local: jid.local, domain: jid.domain } : { domain: jid.domain };
}

/** Serialises a JID: `[local@]domain[/resource]`. */
export function toString(jid: Jid): string {
  let s = jid.domain;
  if (jid.local !== undefined) s = `${jid.local}@${s}`;
  if (jid.resource !== undefined) s = `${s}/${jid.resource}`;
  return s;
}

/** Alias of {@link toString} for callers that would rather not shadow Object#toString in scope. */
export const jidToString = toString;

/**
 * Accepts a string or a Jid; a Jid object is re-normalised too, because a hand-built one may not have
 * come from parseJid.
 */
function normalise(j: Jid | string): Jid | null {
  return parseJid(typeof j === "string" ? j : toString(j));
}

/** True when both are valid JIDs with equal normalised parts. An invalid JID equals nothing. */
export function jidEquals(a: Jid | string, b: Jid | string): boolean {
  const x = normalise(a);
  const y = normalise(b);
  return x !== null && y !== null && x.local === y.local && x.domain === y.domain && x.resource === y.resource;
}

/**
 * True when `bare` is a bare JID (no resource) and `full` — a full JID or the bare JID itself —
 * belongs to it, i.e. bare(full) equals `bare`. Invalid input → false.
 */
export function isBareOf(full: Jid | string, bareJid: Jid | string): boolean {
  const f = normalise(full);
  const b = normalise(bareJid);
  return f !== null && b !== null && b.resource === undefined && f.local === b.local && f.domain === b.domain;
}

/** The per-stanza reading of a JID ({@link splitJid}). */
export interface JidParts {
  local: string; // "" when the JID has no localpart
  domain: string;
  resource: string | undefined;
  bare: string; // local@domain (or domain), as normalised here
}

/**
 * The room machine's per-stanza reading (see the top of this file for when to use which): local
 * and domain lowercased, one trailing "." of the domain dropped, the resource (a room nick) kept
 * exactly as given — nicks are compared byte for byte, no resourceprep/PRECIS. Undefined for an
 * empty domain, an empty localpart before "@" or an empty resource after "/".
 */
export function splitJid(s: string | undefined): JidParts | undefined {
  if (s === undefined || s === "") return undefined;
  const raw = splitRaw(s);
  if (raw.resource === "") return undefined;
  const local = raw.local === undefined ? "" : raw.local.toLowerCase();
  let domain = raw.domain.toLowerCase();
  if (domain.endsWith(".")) domain = domain.slice(0, -1);
  if (domain === "" || (raw.local !== undefined && local === "")) return undefined;
  return { local, domain, resource: raw.resource, bare: local === "" ? domain : `${local}@${domain}` };
}

/** The bare JID of {@link splitJid}, or undefined when it refuses the JID. */
export function splitBare(s: string | undefined): string | undefined {
  return splitJid(s)?.bare;
}

/** `bare/resource`, e.g. an occupant JID room@service/nick (XEP-0045 §4.1). */
export function withResource(bareJid: string, resource: string): string {
  return `${bareJid}/${resource}`;
}

/** No normalisation: the bare part as written, everything before the first "/". The routing fast path. */
export function rawBare(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}

/** No normalisation: the localpart of a bare JID as written, "" when it has none. */
export function rawLocal(bareJid: string): string {
  const at = bareJid.indexOf("@");
  return at < 0 ? "" : bareJid.slice(0, at);
}

/** No normalisation: the domainpart of a bare JID as written. */
export function rawDomain(bareJid: string): string {
  return bareJid.slice(bareJid.indexOf("@") + 1);
}
