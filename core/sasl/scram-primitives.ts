/**
 * SCRAM building blocks shared by the client (scram.ts, the upstream leg) and the verifier
 * (scram-server.ts, the client leg), so the two cannot drift apart:
 *   - RFC 5802 §2.2 H(), HMAC(), Hi() for SHA-1, SHA-256 (RFC 7677) and SHA-512 (IANA SCRAM
 *     registry; same construction with SHA-512);
 *   - RFC 5802 §3 key derivation (ClientKey, StoredKey, ServerKey) and the proof XOR;
 *   - RFC 5802 §7 syntax: attribute lists, saslname escaping, printable nonces, GS2 header;
 *   - mechanism names: SCRAM-<hash>[-PLUS].
 * Comparisons of secret-dependent bytes go through equalBytes (crypto.timingSafeEqual).
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";

export type ScramHash = "SHA-1" | "SHA-256" | "SHA-512";
/** Weakest first. */
export const SCRAM_HASHES: readonly ScramHash[] = ["SHA-1", "SHA-256", "SHA-512"];

export type ScramMechanism =
  | "SCRAM-SHA-1"
  | "SCRAM-SHA-256"
  | "SCRAM-SHA-512"
  | "SCRAM-SHA-1-PLUS"
  | "SCRAM-SHA-256-PLUS"
  | "SCRAM-SHA-512-PLUS";

interface HashSpec {
  /** node:crypto digest name. */
  digest: "sha1" | "sha256" | "sha512";
  /** Output length in octets; also the PBKDF2 dkLen (RFC 5802 §2.2 Hi()). */
  length: number;
}
const HASHES: Record<ScramHash, HashSpec> = {
  "SHA-1": { digest: "sha1", length: 20 },
  "SHA-256": { digest: "sha256", length: 32 },
  "SHA-512": { digest: "sha512", length: 64 },
};

export function isScramHash(v: unknown): v is ScramHash {
  return v === "SHA-1" || v === "SHA-256" || v === "SHA-512";
}

/** Output length of the hash in octets (20, 32, 64): the length of every SCRAM key and proof. */
export function hashLength(hash: ScramHash): number {
  return HASHES[hash].length;
}

/** The hash whose output has this many octets, e.g. to recognise an imported key (20 → SHA-1). */
export function hashOfLength(length: number): ScramHash | undefined {
  return SCRAM_HASHES.find((h) => HASHES[h].length === length);
}

/** RFC 5802 §2.2 H(str). */
export function scramH(hash: ScramHash, data: Buffer): Buffer {
  return createHash(HASHES[hash].digest).update(data).digest();
}

/** RFC 5802 §2.2 HMAC(key, str); strings are UTF-8. */
export function scramHmac(hash: ScramHash, key: Buffer, data: string | Buffer): Buffer {
  const h = createHmac(HASHES[hash].digest, key);
  return (typeof data === "string" ? h.update(data, "utf8") : h.update(data)).digest();
}

/** RFC 5802 §2.2 Hi(str, salt, i) = PBKDF2 with HMAC as the PRF and dkLen = the hash length. `password` already SASLprep'd. */
export function scramHi(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer {
  const s = HASHES[hash];
  return pbkdf2Sync(password, salt, iterations, s.length, s.digest);
}

const pbkdf2Async = promisify(pbkdf2);

/** As scramHi, on the libuv thread pool. */
export async function scramHiAsync(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const s = HASHES[hash];
  return pbkdf2Async(password, salt, iterations, s.length, s.digest);
}

/** RFC 5802 §3: what follows from SaltedPassword. */
export interface ScramDerivedKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function keysFromSaltedPassword(hash: ScramHash, saltedPassword: Buffer): ScramDerivedKeys {
  const clientKey = scramHmac(hash, saltedPassword, "Client Key");
  return { clientKey, storedKey: scramH(hash, clientKey), serverKey: scramHmac(hash, saltedPassword, "Server Key") };
}

/** Byte-wise XOR of two buffers of the same length (ClientProof, RFC 5802 §3). */
export function xorBytes(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError("xorBytes: length mismatch");
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/**
 * Constant-time equality of two byte strings. Different lengths are unequal without comparing:
 * every length compared here (a hash output, a channel-binding input) is public.
 */
export function equalBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 5802 §7 "printable": %x21-2B / %x2D-7E (printable ASCII except ","). */
export const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** A fresh nonce: 18 random octets in base64 (24 printable characters, no ","). */
export function randomNonce(): string {
  return randomBytes(18).toString("base64");
}

/**
 * RFC 5802 §5.1 "n"/"a": escape "=" as "=3D" and "," as "=2C" ("=" first, so the "=" introduced by
 * the second replacement is not escaped again). The input is already SASLprep'd where required.
 */
export function encodeSaslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/**
 * The inverse of encodeSaslName, strictly (RFC 5802 §7 saslname = 1*(value-safe-char / "=2C" / "=3D")):
 * null for an empty name, a "," or NUL, or a "=" not followed by "2C" or "3D" (§5.1: the server
 * MUST fail the authentication then).
 */
export function decodeSaslName(raw: string): string | null {
  if (raw === "" || raw.includes(",") || raw.includes("\0")) return null;
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch !== "=") {
      out += ch;
      continue;
    }
    const esc = raw.slice(i + 1, i + 3);
    if (esc === "2C") out += ",";
    else if (esc === "3D") out += "=";
    else return null;
    i += 2;
  }
  return out;
}

export interface ScramAttribute {
  /** One ASCII letter (RFC 5802 §7 attr-val = ALPHA "=" value). */
  name: string;
  value: string;
}

/**
 * Splits a SCRAM message into its attributes ("r=...,s=...,i=..."). Values never contain "," (RFC
 * 5802 §7 value-char excludes it), but may contain "=" (base64 padding). Null when any part is not
 * ALPHA "=" value. Empty values are returned as "" for the caller to judge.
 */
export function splitAttributes(msg: string): ScramAttribute[] | null {
  const out: ScramAttribute[] = [];
  for (const part of msg.split(",")) {
    if (part.length < 2 || part[1] !== "=" || !/^[A-Za-z]$/.test(part[0] ?? "")) return null;
    out.push({ name: part[0] as string, value: part.slice(2) });
  }
  return out;
}

/** base64("n,,"): RFC 5802 §7 channel-binding attribute "c" when the client does not bind. */
export const GS2_HEADER_NO_CB = "n,,";

export function scramMechanismName(hash: ScramHash, plus: boolean): ScramMechanism {
  return `SCRAM-${hash}${plus ? "-PLUS" : ""}` as ScramMechanism;
}

/** "SCRAM-SHA-256-PLUS" → { hash: "SHA-256", plus: true }; null for anything else (exact, case-sensitive). */
export function parseScramMechanism(name: string): { hash: ScramHash; plus: boolean } | null {
  const m = /^SCRAM-(SHA-1|SHA-256|SHA-512)(-PLUS)?$/.exec(name);
  if (m === null) return null;
  return { hash: m[1] as ScramHash, plus: m[2] !== undefined };
}
