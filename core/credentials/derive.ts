/**
 * Records made at a successful PLAIN login through the proxy (issue 12 §2), after the server said
 * success: for the server's own hash they mirror its salt and iteration count (the SaltedPassword
 * the upstream SCRAM exchange produced), so a ClientKey proven on the client leg is also the upstream
 * one; for every other hash they use the proxy's own salt, with the server's SaltedPassword sealed
 * under that hash's ClientKey (seal.ts). Costs one PBKDF2 per other hash, on the thread pool.
 */
import { randomBytes } from "node:crypto";
import { saslprep } from "../sasl/saslprep.js";
import { keysFromSaltedPassword, scramHiAsync, type ScramHash } from "../sasl/scram-primitives.js";
import { CredentialError } from "./errors.js";
import { validateAccountCredentials, type AccountCredentials, type ScramCredential } from "./record.js";
import { sealUpstreamSecret } from "./seal.js";

/** What the proxy's own upstream SCRAM login left (ScramClient.keys plus its hash). */
export interface UpstreamScramKeys {
  hash: ScramHash;
  saltedPassword: Buffer;
  salt: Buffer;
  iterations: number;
}

export interface CredentialsFromPasswordOptions {
  /** The hashes of the SCRAM mechanisms offered to clients (--client-sasl). */
  hashes: readonly ScramHash[];
  /** The proxy's own iteration count for the hashes that are not the server's (RFC 5802 §5.1: at least 4096). */
  iterations: number;
  /** ISO 8601 time of the login (core has no clock). */
  updatedAt: string;
  /** Salts for the proxy's own records; 16 random octets each by default (tests fix them). */
  randomSalt?: () => Buffer;
}

/**
 * The record set for `account` after a PLAIN login with `password` that the server accepted.
 * `upstream` is absent when the upstream login was not SCRAM: then no record has an upstream secret.
 */
export async function credentialsFromPassword(
  account: string,
  password: string,
  upstream: UpstreamScramKeys | undefined,
  opts: CredentialsFromPasswordOptions,
): Promise<AccountCredentials> {
  // RFC 5802 §2.2 Normalize(): the same preparation as the SCRAM client (saslprep.ts says why).
  const prepared = saslprep(password);
  if (prepared === null || prepared === "") throw new CredentialError("CREDENTIAL_FORMAT", "password cannot be prepared with SASLprep");
  const scram: Partial<Record<ScramHash, ScramCredential>> = {};
  for (const hash of opts.hashes) {
    if (upstream !== undefined && hash === upstream.hash) {
      const k = keysFromSaltedPassword(hash, upstream.saltedPassword);
      scram[hash] = { origin: "server", salt: Buffer.from(upstream.salt), iterations: upstream.iterations, storedKey: k.storedKey, serverKey: k.serverKey };
      continue;
    }
    const salt = opts.randomSalt?.() ?? randomBytes(16);
    const k = keysFromSaltedPassword(hash, await scramHiAsync(hash, prepared, salt, opts.iterations));
    const rec: ScramCredential = { origin: "proxy", salt, iterations: opts.iterations, storedKey: k.storedKey, serverKey: k.serverKey };
    if (upstream !== undefined) {
      rec.upstream = sealUpstreamSecret(
        { account, clientHash: hash, clientSalt: salt, clientKey: k.clientKey },
        { kind: "salted-password", hash: upstream.hash, salt: upstream.salt, iterations: upstream.iterations, saltedPassword: upstream.saltedPassword },
      );
    }
    scram[hash] = rec;
  }
  const out: AccountCredentials = { account, scram, source: "login", updatedAt: opts.updatedAt };
  validateAccountCredentials(out);
  return out;
}
