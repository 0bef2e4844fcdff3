/**
 * The SASL mechanisms the proxy can offer on the client leg (issue 12), which of them one stream
 * offers, and what a client's choice turns into (RFC 6120 §6.4.2, §6.5).
 */
import { SaslError } from "./errors.js";
import { parseScramMechanism, SCRAM_HASHES, type ScramHash, type ScramMechanism } from "./scram-primitives.js";

export type ClientSaslMechanism = ScramMechanism | "PLAIN";

/**
 * Strongest first: every -PLUS above every plain SCRAM, then by hash, PLAIN last. This is the order
 * clients rank them in (Conversations: PLAIN 10, SCRAM-SHA-1 20, -SHA-256 25, -SHA-512 30,
 * SCRAM-SHA-1-PLUS 35, -SHA-256-PLUS 40, -SHA-512-PLUS 45), and the order they are advertised in.
 */
export const CLIENT_SASL_MECHANISMS: readonly ClientSaslMechanism[] = [
  "SCRAM-SHA-512-PLUS",
  "SCRAM-SHA-256-PLUS",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-512",
  "SCRAM-SHA-256",
  "SCRAM-SHA-1",
  "PLAIN",
];

/** An exact mechanism name (SASL names are case-sensitive, RFC 4422 §3.1) the client leg knows; else null. */
export function parseClientSaslMechanism(name: string): ClientSaslMechanism | null {
  return CLIENT_SASL_MECHANISMS.find((m) => m === name) ?? null;
}

/** Higher is stronger (the rank in CLIENT_SASL_MECHANISMS). */
export function mechanismStrength(m: ClientSaslMechanism): number {
  return CLIENT_SASL_MECHANISMS.length - CLIENT_SASL_MECHANISMS.indexOf(m);
}

export function isPlusMechanism(m: ClientSaslMechanism): boolean {
  return m !== "PLAIN" && parseScramMechanism(m)?.plus === true;
}

/**
 * What one stream advertises: the configured mechanisms, strongest first, without the -PLUS ones when
 * the connection has no channel-binding type to offer (no TLS, or none computable). The caller adds
 * the XEP-0440 <sasl-channel-binding/> list with the same types, and offers nothing before TLS.
 */
export function offeredMechanisms(configured: readonly ClientSaslMechanism[], channelBindingTypes: readonly string[]): ClientSaslMechanism[] {
  return CLIENT_SASL_MECHANISMS.filter((m) => configured.includes(m) && (channelBindingTypes.length > 0 || !isPlusMechanism(m)));
}

/**
 * The client's <auth mechanism='...'/> against what this stream offered (RFC 6120 §6.4.2):
 * - offered: returned;
 * - a mechanism the proxy knows but left out by policy, weaker than everything offered (e.g. PLAIN
 *   or SCRAM-SHA-1 when only SCRAM-SHA-256 is configured): mechanism-too-weak (RFC 6120 §6.5.9);
 * - anything else (unknown, or -PLUS on a connection without channel binding): invalid-mechanism
 *   (RFC 6120 §6.5.5).
 */
export function selectMechanism(requested: string, offered: readonly ClientSaslMechanism[]): ClientSaslMechanism {
  const m = parseClientSaslMechanism(requested);
  if (m !== null && offered.includes(m)) return m;
  if (m !== null && offered.length > 0 && offered.every((o) => mechanismStrength(o) > mechanismStrength(m))) {
    throw new SaslError("mechanism-too-weak", "mechanism weaker than this server allows");
  }
  throw new SaslError("invalid-mechanism", "mechanism not offered");
}

/**
 * --client-sasl auto: the SCRAM hashes the server offers (with or without -PLUS), each offered to
 * clients both ways, and PLAIN. A client then picks a hash for which an imported record exists and
 * for which an unknown account's login can be relayed to the server (docs/architecture.md §3.5).
 * With nothing known about the server yet (`serverOffered` undefined), everything.
 */
export function mirrorServerMechanisms(serverOffered: readonly string[] | undefined): ClientSaslMechanism[] {
  if (serverOffered === undefined) return [...CLIENT_SASL_MECHANISMS];
  const hashes = new Set<ScramHash>();
  for (const name of serverOffered) {
    const m = parseScramMechanism(name.trim());
    if (m !== null) hashes.add(m.hash);
  }
  return CLIENT_SASL_MECHANISMS.filter((m) => m === "PLAIN" || hashes.has(parseScramMechanism(m)!.hash));
}

/** The SCRAM hashes among `mechanisms`, strongest first, without duplicates. */
export function scramHashesOf(mechanisms: readonly ClientSaslMechanism[]): ScramHash[] {
  const set = new Set(mechanisms.flatMap((m) => (m === "PLAIN" ? [] : [parseScramMechanism(m)!.hash])));
  return SCRAM_HASHES.filter((h) => set.has(h)).reverse();
}
