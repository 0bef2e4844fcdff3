/**
 * Credential records for the client leg (issue 12 §2, docs/architecture.md §3): per account and SCRAM
 * hash what a SCRAM server stores (salt, iteration count, StoredKey, ServerKey; RFC 5802 §3), and
 * where the hash is not the upstream server's own, the upstream secret sealed under that hash's
 * ClientKey (seal.ts). Nothing here logs in anywhere by itself: StoredKey and ServerKey only verify,
 * and the sealed secret opens only with the ClientKey a successful client proof reveals.
 *
 * The JSON form (encodeAccountCredentials / decodeAccountCredentials) is what every store keeps, the
 * file store and a later shared one alike; decoding is strict, so a damaged record is an error, not a
 * half-read account.
 */
import { parseJid } from "../jid.js";
import { hashLength, isScramHash, SCRAM_HASHES, type ScramHash } from "../sasl/scram-primitives.js";
import type { ScramVerifierRecord } from "../sasl/scram-server.js";
import { CredentialError } from "./errors.js";

/** AES-256-GCM (NIST SP 800-38D) nonce and tag sizes used by seal.ts. */
export const SEAL_IV_BYTES = 12;
export const SEAL_TAG_BYTES = 16;

/**
 * What logs in upstream, for the server's hash: SCRAM's SaltedPassword, or ClientKey and ServerKey
 * (RFC 5802 §3). `salt` and `iterations` are the server's; the secret only works while they hold.
 */
export type UpstreamSecret =
  | { kind: "salted-password"; hash: ScramHash; salt: Buffer; iterations: number; saltedPassword: Buffer }
  | { kind: "client-key"; hash: ScramHash; salt: Buffer; iterations: number; clientKey: Buffer; serverKey: Buffer };

/** An UpstreamSecret encrypted with AES-256-GCM; hash, kind, salt and iterations are in clear but authenticated. */
export interface SealedUpstreamSecret {
  kind: UpstreamSecret["kind"];
  hash: ScramHash;
  salt: Buffer;
  iterations: number;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export interface ScramCredential extends ScramVerifierRecord {
  /**
   * "server": the upstream server's own salt and iteration count for this hash (imported, or mirrored
   * from the proxy's upstream SCRAM exchange), so a ClientKey proven here logs in upstream as is.
   * "proxy": the proxy's own salt; logging in upstream needs `upstream`.
   */
  origin: "server" | "proxy";
  /** The secret for the server's hash, sealed under this hash's ClientKey (origin "proxy" only). */
  upstream?: SealedUpstreamSecret;
}

export type CredentialSource = "login" | "import-prosody" | "import-ejabberd" | "import-xep0227";
export const CREDENTIAL_SOURCES: readonly CredentialSource[] = ["login", "import-prosody", "import-ejabberd", "import-xep0227"];

export interface AccountCredentials {
  /** The bare JID, normalised (normalizeAccount). */
  account: string;
  scram: Partial<Record<ScramHash, ScramCredential>>;
  source: CredentialSource;
  /** ISO 8601, set by whoever writes the record (core has no clock). */
  updatedAt: string;
}

/** The store key for a bare JID: parsed and normalised (core/jid.ts); null for anything but user@domain. */
export function normalizeAccount(jid: string): string | null {
  const j = parseJid(jid);
  if (j === null || j.local === undefined || j.resource !== undefined) return null;
  return `${j.local}@${j.domain}`;
}

/** Upper bounds that no real record reaches; beyond them a record is damaged, not unusual. */
const MAX_SALT_BYTES = 1024;
const MAX_ITERATIONS = 10_000_000;

// ---------------------------------------------------------------------------------------------------
// Validation (also used for records built in memory: imports, logins)

function bad(detail: string): CredentialError {
  return new CredentialError("CREDENTIAL_FORMAT", detail);
}

function checkIterations(n: number, where: string): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_ITERATIONS) throw bad(`${where}: iteration count out of range`);
}

function checkSalt(salt: Buffer, where: string): void {
  if (salt.length === 0 || salt.length > MAX_SALT_BYTES) throw bad(`${where}: salt length out of range`);
}

/** Throws CredentialError(CREDENTIAL_FORMAT) unless `c` is a well-formed record set for `c.account`. */
export function validateAccountCredentials(c: AccountCredentials): void {
  if (normalizeAccount(c.account) !== c.account) throw bad("account is not a normalised bare JID");
  if (!CREDENTIAL_SOURCES.includes(c.source)) throw bad("unknown source");
  if (!ISO_TIME.test(c.updatedAt) || Number.isNaN(Date.parse(c.updatedAt))) throw bad("updatedAt is not an ISO 8601 time");
  // a key with an undefined value (a Partial record built in memory) counts as absent
  const hashes = Object.keys(c.scram).filter((h) => (c.scram as Record<string, unknown>)[h] !== undefined);
  if (hashes.length === 0) throw bad("no SCRAM record");
  for (const h of hashes) {
    if (!isScramHash(h)) throw bad("unknown SCRAM hash");
    const r = c.scram[h] as ScramCredential;
    const where = `SCRAM-${h}`;
    if (r.origin !== "server" && r.origin !== "proxy") throw bad(`${where}: unknown origin`);
    checkSalt(r.salt, where);
    checkIterations(r.iterations, where);
    const len = hashLength(h);
    if (r.storedKey.length !== len || r.serverKey.length !== len) throw bad(`${where}: key length does not fit the hash`);
    if (r.upstream !== undefined) {
      if (r.origin !== "proxy") throw bad(`${where}: a record with the server's salt needs no sealed upstream secret`);
      validateSealed(r.upstream, where);
    }
  }
}

function validateSealed(s: SealedUpstreamSecret, where: string): void {
  if (!isScramHash(s.hash)) throw bad(`${where}: sealed secret for an unknown hash`);
  if (s.kind !== "salted-password" && s.kind !== "client-key") throw bad(`${where}: sealed secret of an unknown kind`);
  checkSalt(s.salt, `${where} sealed secret`);
  checkIterations(s.iterations, `${where} sealed secret`);
  if (s.iv.length !== SEAL_IV_BYTES || s.tag.length !== SEAL_TAG_BYTES) throw bad(`${where}: sealed secret nonce or tag length`);
  const want = sealedPlaintextLength(s.kind, s.hash);
  if (s.ciphertext.length !== want) throw bad(`${where}: sealed secret length does not fit its kind`);
}

/** Plaintext length of a sealed secret: SaltedPassword, or ClientKey ‖ ServerKey. */
export function sealedPlaintextLength(kind: UpstreamSecret["kind"], hash: ScramHash): number {
  return kind === "salted-password" ? hashLength(hash) : 2 * hashLength(hash);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

// ---------------------------------------------------------------------------------------------------
// JSON

/** The on-disk version; a later incompatible layout gets another number. */
export const CREDENTIALS_FORMAT_VERSION = 1;

interface JsonSealed {
  kind: string;
  hash: string;
  salt: string;
  iterations: number;
  iv: string;
  ciphertext: string;
  tag: string;
}
interface JsonScram {
  origin: string;
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
  upstream?: JsonSealed;
}

/** The record set as JSON text (one line per field, base64 for bytes). Validates first. */
export function encodeAccountCredentials(c: AccountCredentials): string {
  validateAccountCredentials(c);
  const scram: Record<string, JsonScram> = {};
  for (const h of SCRAM_HASHES) {
    const r = c.scram[h];
    if (r === undefined) continue;
    const j: JsonScram = {
      origin: r.origin,
      salt: r.salt.toString("base64"),
      iterations: r.iterations,
      storedKey: r.storedKey.toString("base64"),
      serverKey: r.serverKey.toString("base64"),
    };
    if (r.upstream !== undefined) {
      const u = r.upstream;
      j.upstream = {
        kind: u.kind,
        hash: u.hash,
        salt: u.salt.toString("base64"),
        iterations: u.iterations,
        iv: u.iv.toString("base64"),
        ciphertext: u.ciphertext.toString("base64"),
        tag: u.tag.toString("base64"),
      };
    }
    scram[h] = j;
  }
  return `${JSON.stringify({ version: CREDENTIALS_FORMAT_VERSION, account: c.account, source: c.source, updatedAt: c.updatedAt, scram }, null, 2)}\n`;
}

/**
 * Parses and validates a record set. Throws CredentialError(CREDENTIAL_FORMAT) naming the first
 * problem (never a value). `expectAccount`, when given, must be the record's account.
 */
export function decodeAccountCredentials(text: string, expectAccount?: string): AccountCredentials {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad("not valid JSON");
  }
  const top = object(doc, "record", ["version", "account", "source", "updatedAt", "scram"]);
  if (top["version"] !== CREDENTIALS_FORMAT_VERSION) throw bad("unsupported format version");
  const account = str(top["account"], "account");
  if (expectAccount !== undefined && account !== expectAccount) throw bad("record is for another account");
  const scramDoc = object(top["scram"], "scram", SCRAM_HASHES);
  const scram: Partial<Record<ScramHash, ScramCredential>> = {};
  for (const [h, v] of Object.entries(scramDoc)) {
    const where = `SCRAM-${h}`;
    const r = object(v, where, ["origin", "salt", "iterations", "storedKey", "serverKey", "upstream"]);
    const cred: ScramCredential = {
      origin: str(r["origin"], `${where}.origin`) as ScramCredential["origin"],
      salt: bytes(r["salt"], `${where}.salt`),
      iterations: num(r["iterations"], `${where}.iterations`),
      storedKey: bytes(r["storedKey"], `${where}.storedKey`),
      serverKey: bytes(r["serverKey"], `${where}.serverKey`),
    };
    if (r["upstream"] !== undefined) {
      const u = object(r["upstream"], `${where}.upstream`, ["kind", "hash", "salt", "iterations", "iv", "ciphertext", "tag"]);
      cred.upstream = {
        kind: str(u["kind"], `${where}.upstream.kind`) as SealedUpstreamSecret["kind"],
        hash: str(u["hash"], `${where}.upstream.hash`) as ScramHash,
        salt: bytes(u["salt"], `${where}.upstream.salt`),
        iterations: num(u["iterations"], `${where}.upstream.iterations`),
        iv: bytes(u["iv"], `${where}.upstream.iv`),
        ciphertext: bytes(u["ciphertext"], `${where}.upstream.ciphertext`),
        tag: bytes(u["tag"], `${where}.upstream.tag`),
      };
    }
    scram[h as ScramHash] = cred;
  }
  const c: AccountCredentials = {
    account,
    scram,
    source: str(top["source"], "source") as CredentialSource,
    updatedAt: str(top["updatedAt"], "updatedAt"),
  };
  validateAccountCredentials(c);
  return c;
}

function object(v: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`${where} is not an object`);
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw bad(`${where} has an unknown field`);
  return v as Record<string, unknown>;
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string") throw bad(`${where} is not a string`);
  return v;
}

function num(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw bad(`${where} is not an integer`);
  return v;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function bytes(v: unknown, where: string): Buffer {
  const s = str(v, where);
  if (s === "" || !BASE64.test(s)) throw bad(`${where} is not base64`);
  const b = Buffer.from(s, "base64");
  if (b.toString("base64") !== s) throw bad(`${where} is not canonical base64`);
  return b;
}
