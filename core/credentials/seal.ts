/**
 * The upstream secret at rest (issue 12 §4): AES-256-GCM under a key derived with HKDF-SHA-256
 * (RFC 5869) from the client leg's ClientKey for that record. The store keeps only StoredKey =
 * H(ClientKey), so a stolen store does not open it; each successful client login reveals the
 * ClientKey (scram-server.ts) and with it the key. (Someone holding the store can still guess
 * passwords offline against StoredKey, as against any SCRAM verifier: the protection is as strong as
 * the password.)
 *
 *   key  = HKDF-SHA-256(IKM = ClientKey, salt = the record's salt,
 *                       info = "minimix-proxy upstream secret v1" 0 account 0 "SCRAM-<client hash>")
 *   AAD  = the same info, then kind, the server's hash, base64 salt and iteration count
 *   data = SaltedPassword, or ClientKey ‖ ServerKey, of the server's hash
 * with a fresh 96-bit nonce per sealing. The AAD binds the clear metadata: a record moved to another
 * account or hash, or with its salt or count edited, does not open.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { hashLength, type ScramHash } from "../sasl/scram-primitives.js";
import { CredentialError } from "./errors.js";
import { SEAL_IV_BYTES, SEAL_TAG_BYTES, sealedPlaintextLength, type SealedUpstreamSecret, type UpstreamSecret } from "./record.js";

/** Which record the secret is sealed in, and the ClientKey that record's hash revealed. */
export interface SealingContext {
  /** The normalised bare JID (record.ts normalizeAccount). */
  account: string;
  /** The client leg's hash: the record the sealed secret is stored in. */
  clientHash: ScramHash;
  /** That record's salt. */
  clientSalt: Buffer;
  /** ClientKey for clientHash (RFC 5802 §3), from the password or from a verified proof. */
  clientKey: Buffer;
}

const INFO = "minimix-proxy upstream secret v1";

function info(ctx: SealingContext): string {
  return `${INFO}\0${ctx.account}\0SCRAM-${ctx.clientHash}`;
}

function sealingKey(ctx: SealingContext): Buffer {
  if (ctx.clientKey.length !== hashLength(ctx.clientHash)) {
    throw new CredentialError("CREDENTIAL_FORMAT", "ClientKey length does not fit the hash");
  }
  return Buffer.from(hkdfSync("sha256", ctx.clientKey, ctx.clientSalt, Buffer.from(info(ctx), "utf8"), 32));
}

function aad(ctx: SealingContext, meta: { kind: string; hash: ScramHash; salt: Buffer; iterations: number }): Buffer {
  return Buffer.from(`${info(ctx)}\0${meta.kind}\0${meta.hash}\0${meta.salt.toString("base64")}\0${meta.iterations}`, "utf8");
}

function plaintextOf(secret: UpstreamSecret): Buffer {
  const len = hashLength(secret.hash);
  if (secret.kind === "salted-password") {
    if (secret.saltedPassword.length !== len) throw new CredentialError("CREDENTIAL_FORMAT", "SaltedPassword length does not fit the hash");
    return Buffer.from(secret.saltedPassword);
  }
  if (secret.clientKey.length !== len || secret.serverKey.length !== len) {
    throw new CredentialError("CREDENTIAL_FORMAT", "ClientKey/ServerKey length does not fit the hash");
  }
  return Buffer.concat([secret.clientKey, secret.serverKey]);
}

/** Encrypts `secret` for the record described by `ctx`. `iv` is for tests only. */
export function sealUpstreamSecret(ctx: SealingContext, secret: UpstreamSecret, iv: Buffer = randomBytes(SEAL_IV_BYTES)): SealedUpstreamSecret {
  if (iv.length !== SEAL_IV_BYTES) throw new CredentialError("CREDENTIAL_FORMAT", "nonce length");
  const plain = plaintextOf(secret);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(ctx), iv, { authTagLength: SEAL_TAG_BYTES });
  cipher.setAAD(aad(ctx, secret));
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  return {
    kind: secret.kind,
    hash: secret.hash,
    salt: Buffer.from(secret.salt),
    iterations: secret.iterations,
    iv: Buffer.from(iv),
    ciphertext,
    tag: cipher.getAuthTag(),
  };
}

/**
 * Decrypts a sealed secret with the ClientKey of the record it is stored in. Throws
 * CredentialError(CREDENTIAL_UNSEAL) for a wrong key or any change to the sealed data or its
 * metadata (GCM authentication), CREDENTIAL_FORMAT for lengths that cannot be right.
 */
export function openUpstreamSecret(ctx: SealingContext, sealed: SealedUpstreamSecret): UpstreamSecret {
  if (sealed.iv.length !== SEAL_IV_BYTES || sealed.tag.length !== SEAL_TAG_BYTES ||
    sealed.ciphertext.length !== sealedPlaintextLength(sealed.kind, sealed.hash)) {
    throw new CredentialError("CREDENTIAL_FORMAT", "sealed secret lengths");
  }
  const decipher = createDecipheriv("aes-256-gcm", sealingKey(ctx), sealed.iv, { authTagLength: SEAL_TAG_BYTES });
  decipher.setAAD(aad(ctx, sealed));
  decipher.setAuthTag(sealed.tag);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    throw new CredentialError("CREDENTIAL_UNSEAL", "sealed upstream secret does not open with this ClientKey");
  }
  const base = { hash: sealed.hash, salt: Buffer.from(sealed.salt), iterations: sealed.iterations };
  if (sealed.kind === "salted-password") return { kind: "salted-password", ...base, saltedPassword: plain };
  const len = hashLength(sealed.hash);
  return { kind: "client-key", ...base, clientKey: plain.subarray(0, len), serverKey: plain.subarray(len) };
}
