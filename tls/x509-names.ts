import type { X509Certificate } from "node:crypto";

/**
 * The DNS names a certificate is valid for, lower-cased: its dNSName SANs, or, only when it has none, its
 * subject CN (RFC 6125 §6.4.4: the CN is a fallback for certificates without DNS SANs).
 */
export function certDnsNames(x509: X509Certificate): string[] {
  const sans = sanValues(x509.subjectAltName, "DNS");
  if (sans.length > 0) return unique(sans.map(normalizeName));
  const cn = subjectCommonName(x509.subject);
  return cn === undefined ? [] : [normalizeName(cn)];
}

/** The iPAddress SANs, as Node prints them ("127.0.0.1", "::1"). */
export function certIpAddresses(x509: X509Certificate): string[] {
  return sanValues(x509.subjectAltName, "IP Address");
}

/** Lower case, no trailing root dot: the form every lookup in `tls/` uses. */
export function normalizeName(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/**
 * Node prints SANs as `TYPE:value, TYPE:value`; since Node 17 a value with a comma, quote or other special
 * character is printed as a JSON string, so split on `, ` only outside quotes.
 */
function sanValues(subjectAltName: string | undefined, type: string): string[] {
  if (subjectAltName === undefined || subjectAltName === "") return [];
  const out: string[] = [];
  const prefix = `${type}:`;
  for (const entry of splitOutsideQuotes(subjectAltName)) {
    if (!entry.startsWith(prefix)) continue;
    const raw = entry.slice(prefix.length);
    out.push(raw.startsWith('"') ? unquote(raw) : raw);
  }
  return out;
}

function splitOutsideQuotes(s: string): string[] {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (quoted && ch === "\\" && i + 1 < s.length) {
      cur += ch + (s[i + 1] as string);
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === "," && s[i + 1] === " ") {
      parts.push(cur);
      cur = "";
      i++;
      continue;
    }
    cur += ch;
  }
  if (cur !== "") parts.push(cur);
  return parts;
}

function unquote(raw: string): string {
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === "string" ? v : raw;
  } catch {
    return raw;
  }
}

/** Node prints the subject one attribute per line (`CN=x\nO=y`), escaping `,` and `\` with a backslash. */
function subjectCommonName(subject: string): string | undefined {
  for (const line of subject.split("\n")) {
    if (line.startsWith("CN=")) return line.slice(3).replace(/\\(.)/g, "$1");
  }
  return undefined;
}

function unique(names: string[]): string[] {
  return [...new Set(names)];
}
