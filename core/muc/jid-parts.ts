/**
 * A deliberately tiny JID splitter, private to core/muc (the shared core/jid.ts is written
 * elsewhere). It lowercases node and domain — enough to compare room and account addresses —
 * and keeps the resource (a room nick) exactly as given: nicks are compared byte for byte,
 * no resourceprep/PRECIS (a known limitation, documented in the report).
 */
export interface JidParts {
  local: string; // "" when the JID has no node
  domain: string;
  resource: string | undefined;
  bare: string; // normalised local@domain (or domain)
}

export function parseJid(s: string | undefined): JidParts | undefined {
  if (s === undefined || s === "") return undefined;
  // RFC 7622 §3.1: the resource is everything after the first "/", so a nick may contain "/" or "@".
  const slash = s.indexOf("/");
  const bareRaw = slash < 0 ? s : s.slice(0, slash);
  const resource = slash < 0 ? undefined : s.slice(slash + 1);
  if (resource === "") return undefined;
  const at = bareRaw.indexOf("@");
  const local = at < 0 ? "" : bareRaw.slice(0, at).toLowerCase();
  let domain = (at < 0 ? bareRaw : bareRaw.slice(at + 1)).toLowerCase();
  if (domain.endsWith(".")) domain = domain.slice(0, -1);
  if (domain === "" || (at >= 0 && local === "")) return undefined;
  return { local, domain, resource, bare: local === "" ? domain : `${local}@${domain}` };
}

/** Normalised bare JID, or undefined when unparsable. */
export function bareOf(s: string | undefined): string | undefined {
  return parseJid(s)?.bare;
}

/** room@service/nick */
export function occupantJid(roomBare: string, nick: string): string {
  return `${roomBare}/${nick}`;
}
