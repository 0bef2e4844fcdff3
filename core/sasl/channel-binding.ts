/**
 * Channel-binding data for SCRAM-*-PLUS (RFC 5802 §6), computed from what a TLS stack hands out; the
 * proxy side that reads it from a Node TLSSocket is proxy/channel-binding.ts. Three types:
 *
 * - tls-exporter (RFC 9266 §2): 32 octets of TLS exporter output with the label
 *   "EXPORTER-Channel-Binding" and an empty context. Only for TLS 1.3 here: with TLS 1.2 it is only
 *   safe with the extended master secret (RFC 9266 §3, RFC 7627), which Node does not let us check.
 * - tls-server-end-point (RFC 5929 §4.1): the hash of the server's certificate (DER), with the hash of
 *   the certificate's signatureAlgorithm, except MD5 and SHA-1 which become SHA-256. Undefined for a
 *   signature that uses no single hash (Ed25519, Ed448): then the type is not offered.
 * - tls-unique (RFC 5929 §3.1): the first Finished message of the latest handshake. TLS 1.2 only (it
 *   is undefined for TLS 1.3, RFC 9266 §1). In a full handshake the client sends its Finished first;
 *   in an abbreviated one (session resumption) the server does (RFC 5246 §7.3).
 */
import { createHash } from "node:crypto";

export type ChannelBindingType = "tls-exporter" | "tls-server-end-point" | "tls-unique";
/** Strongest first: the order of the XEP-0440 advertisement. */
export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = ["tls-exporter", "tls-server-end-point", "tls-unique"];

/** RFC 9266 §2. */
export const TLS_EXPORTER_LABEL = "EXPORTER-Channel-Binding";
export const TLS_EXPORTER_LENGTH = 32;

export type EndPointHash = "sha224" | "sha256" | "sha384" | "sha512";

/** DER object identifiers (dotted) of signatureAlgorithm values → the RFC 5929 §4.1 hash. */
const SIGNATURE_HASH: Record<string, EndPointHash> = {
  "1.2.840.113549.1.1.4": "sha256", // md5WithRSAEncryption: MD5 → SHA-256
  "1.2.840.113549.1.1.5": "sha256", // sha1WithRSAEncryption: SHA-1 → SHA-256
  "1.2.840.113549.1.1.14": "sha224", // sha224WithRSAEncryption
  "1.2.840.113549.1.1.11": "sha256", // sha256WithRSAEncryption
  "1.2.840.113549.1.1.12": "sha384", // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13": "sha512", // sha512WithRSAEncryption
  "1.2.840.10045.4.1": "sha256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224", // ecdsa-with-SHA224
  "1.2.840.10045.4.3.2": "sha256", // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3": "sha384", // ecdsa-with-SHA384
  "1.2.840.10045.4.3.4": "sha512", // ecdsa-with-SHA512
  "1.2.840.10040.4.3": "sha256", // dsa-with-sha1
  "2.16.840.1.101.3.4.3.1": "sha224", // dsa-with-sha224
  "2.16.840.1.101.3.4.3.2": "sha256", // dsa-with-sha256
};
/** RSASSA-PSS: the hash is in the parameters (RFC 4055 §3.1), SHA-1 by default. */
const RSASSA_PSS = "1.2.840.113549.1.1.10";
const HASH_OIDS: Record<string, EndPointHash> = {
  "1.3.14.3.2.26": "sha256", // id-sha1 → SHA-256
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/**
 * The RFC 5929 §4.1 hash for a certificate (DER): from Certificate.signatureAlgorithm. null when the
 * algorithm has no single hash (Ed25519, Ed448) or is unknown, or the DER cannot be read.
 */
export function serverEndPointHash(certDer: Buffer): EndPointHash | null {
  try {
    const cert = readTlv(certDer, 0);
    if (cert.tag !== 0x30 || cert.end !== certDer.length) return null;
    const tbs = readTlv(certDer, cert.start);
    if (tbs.tag !== 0x30) return null;
    const algId = readTlv(certDer, tbs.end);
    if (algId.tag !== 0x30) return null;
    const oid = readTlv(certDer, algId.start);
    if (oid.tag !== 0x06) return null;
    const name = oidToString(certDer.subarray(oid.start, oid.end));
    if (name !== RSASSA_PSS) return SIGNATURE_HASH[name] ?? null;
    return pssHash(certDer, oid.end, algId.end);
  } catch {
    return null;
  }
}

/** tls-server-end-point data for the server certificate `certDer`; null when it is undefined for it. */
export function tlsServerEndPoint(certDer: Buffer): Buffer | null {
  const h = serverEndPointHash(certDer);
  return h === null ? null : createHash(h).update(certDer).digest();
}

/**
 * Which Finished message is tls-unique for one end of a TLS 1.2 connection: the first one sent in the
 * latest handshake, the client's in a full handshake, the server's in a resumed one (RFC 5929 §3.1).
 * On TLS 1.3 the same rule picks what OpenSSL-based clients (Python's ssl) and ejabberd use.
 */
export function tlsUniqueFinished(role: "server" | "client", resumed: boolean): "own" | "peer" {
  const firstSender = resumed ? "server" : "client";
  return firstSender === role ? "own" : "peer";
}

/**
 * The types one TLS connection advertises (XEP-0440), strongest first, by protocol version ("TLSv1.3",
 * "TLSv1.2"): tls-unique only on TLS 1.2, where RFC 5929 defines it; TLS 1.3 has tls-exporter (RFC 9266).
 */
export function channelBindingTypesFor(tlsVersion: string | null, hasServerEndPoint: boolean): ChannelBindingType[] {
  const out: ChannelBindingType[] = [];
  if (tlsVersion === "TLSv1.3") out.push("tls-exporter");
  if (tlsVersion === "TLSv1.3" || tlsVersion === "TLSv1.2") {
    if (hasServerEndPoint) out.push("tls-server-end-point");
  }
  if (tlsVersion === "TLSv1.2") out.push("tls-unique");
  return out;
}

/**
 * The types one TLS connection accepts: those it advertises, and on TLS 1.3 tls-unique as well,
 * unadvertised. RFC 9266 leaves tls-unique undefined for TLS 1.3, but clients that do not read XEP-0440
 * bind with it on any version (slixmpp 1.8 offers -PLUS with tls-unique only) and ejabberd accepts it,
 * so a client that logs in to the server directly must log in through the proxy too; refusing it
 * would end such a client's login (RFC 5802 §6: after a failed -PLUS it retries with the "y" flag,
 * which a server that advertised -PLUS must refuse). The data is the Finished message OpenSSL reports
 * by the TLS 1.2 rule (tlsUniqueFinished), as those implementations compute it.
 */
export function acceptedChannelBindingTypesFor(tlsVersion: string | null, hasServerEndPoint: boolean): ChannelBindingType[] {
  const out = channelBindingTypesFor(tlsVersion, hasServerEndPoint);
  if (tlsVersion === "TLSv1.3") out.push("tls-unique");
  return out;
}

/** The XEP-0440 list for a connection's accepted types: tls-unique left out where tls-exporter is there (TLS 1.3). */
export function advertisedChannelBindingTypes<T extends string>(accepted: readonly T[]): T[] {
  return accepted.includes("tls-exporter" as T) ? accepted.filter((t) => t !== "tls-unique") : [...accepted];
}

// ---------------------------------------------------------------------------------------------------
// Just enough DER (X.690) to find an AlgorithmIdentifier.

interface Tlv {
  tag: number;
  /** Offset of the contents. */
  start: number;
  /** Offset just past the contents. */
  end: number;
}

function readTlv(buf: Buffer, at: number): Tlv {
  const tag = buf[at];
  let len = buf[at + 1];
  if (tag === undefined || len === undefined || (tag & 0x1f) === 0x1f) throw new RangeError("DER: bad tag");
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new RangeError("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] ?? Number.NaN);
  }
  if (!Number.isFinite(len) || p + len > buf.length) throw new RangeError("DER: truncated");
  return { tag, start: p, end: p + len };
}

function oidToString(b: Buffer): string {
  if (b.length === 0) throw new RangeError("DER: empty OID");
  const first = b[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40))];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    const byte = b[i] as number;
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

/** RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, ... } (RFC 4055 §3.1). */
function pssHash(der: Buffer, paramsAt: number, algEnd: number): EndPointHash | null {
  if (paramsAt >= algEnd) return HASH_OIDS["1.3.14.3.2.26"] ?? null; // absent parameters: all defaults
  const params = readTlv(der, paramsAt);
  if (params.tag !== 0x30) return null;
  if (params.start === params.end) return "sha256"; // empty SEQUENCE: SHA-1 default → SHA-256
  const first = readTlv(der, params.start);
  if (first.tag !== 0xa0) return "sha256"; // hashAlgorithm absent: SHA-1 default → SHA-256
  const alg = readTlv(der, first.start);
  if (alg.tag !== 0x30) return null;
  const oid = readTlv(der, alg.start);
  if (oid.tag !== 0x06) return null;
  return HASH_OIDS[oidToString(der.subarray(oid.start, oid.end))] ?? null;
}
