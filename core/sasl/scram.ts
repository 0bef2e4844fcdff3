/**
 * SCRAM client (RFC 5802) for SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 7677), without channel binding:
 * the GS2 header is always "n,," (RFC 5802 §7: "n" = client does not support channel binding, no
 * authzid). The -PLUS variants are deliberately not supported: a proxy terminates the client's TLS and
 * opens its own upstream, so there is no end-to-end channel to bind to.
 *
 * Messages in and out are the raw SCRAM strings; the caller base64-encodes them for XMPP
 * (RFC 6120 §6.4.2). Exchange (RFC 5802 §3, §5):
 *
 *   const c = new ScramClient("SHA-256", "user", { password });
 *   send(c.clientFirst());                  // n,,n=user,r=<cnonce>
 *   send(c.clientFinal(serverFirst));       // c=biws,r=<nonce>,p=<proof>
 *   c.verifyServerFinal(serverFinal);       // v=<signature> — throws unless the server proved itself
 *   cache(c.keys);                          // only after verifyServerFinal and <success/>
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { decodeSaslBase64 } from "./base64.js";
import { SaslError } from "./errors.js";
import { saslprep } from "./saslprep.js";

export type ScramHash = "SHA-256" | "SHA-1";
export type SaslMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-1" | "PLAIN";

/** What a caller may cache instead of the password (RFC 5802 §3 SaltedPassword and its inputs). */
export interface ScramKeys {
  saltedPassword: Buffer;
  salt: Buffer;
  iterations: number;
}

export type ScramSecret = { password: string } | ScramKeys;

/**
 * RFC 5802 §5.1 "i": servers SHOULD use at least 4096 iterations (RFC 7677 §4 also says 4096 for
 * SHA-256); below that we refuse rather than hand a weak verifier to a possibly hostile upstream.
 */
export const SCRAM_MIN_ITERATIONS = 4096;
/** Above this a (hostile or misconfigured) server could make us burn seconds of CPU per login. */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

/** Bounds on server messages, checked before any parsing. Real ones are well under 200 characters. */
const MAX_SERVER_MESSAGE_LENGTH = 4096;

/** RFC 5802 §7 "printable": %x21-2B / %x2D-7E (printable ASCII except ","). */
const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** base64("n,,"): RFC 5802 §7 channel-binding attribute "c" when no channel binding is used. */
const GS2_HEADER = "n,,";
const CBIND_INPUT = Buffer.from(GS2_HEADER, "utf8").toString("base64"); // "biws"

const pbkdf2Async = promisify(pbkdf2);

interface HashSpec {
  /** node:crypto digest name. */
  digest: "sha256" | "sha1";
  /** Output length in octets; also the PBKDF2 dkLen (RFC 5802 §2.2 Hi()). */
  length: number;
}
const HASHES: Record<ScramHash, HashSpec> = {
  "SHA-256": { digest: "sha256", length: 32 },
  "SHA-1": { digest: "sha1", length: 20 },
};

interface ServerFirst {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

type State = "initial" | "first-sent" | "computing" | "final-sent" | "done" | "failed";

function malformed(detail: string): SaslError {
  return new SaslError("malformed-request", detail);
}

/**
 * RFC 5802 §5.1 "n": SASLprep the name, then escape "=" as "=3D" and "," as "=2C" ("=" first, so the
 * "=" introduced by the second replacement is not escaped again).
 */
function encodeSaslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

export class ScramClient {
  readonly hash: ScramHash;
  // ECMAScript private fields: util.inspect/console.log and JSON.stringify do not show them, so logging
  // the client object cannot leak the password or the salted password.
  readonly #spec: HashSpec;
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  #password: string | undefined;
  #cached: ScramKeys | undefined;
  #keys: ScramKeys | undefined;
  #expectedServerSignature: Buffer | undefined;
  #state: State = "initial";

  /**
   * @param username the SCRAM authentication identity (in XMPP, the account's localpart).
   * @param secret the password, or the salted password from an earlier successful exchange.
   * @param nonce fixed client nonce, for tests only; by default 18 random octets in base64.
   * Throws SaslError("malformed-request") if username/password fail SASLprep, the username is empty,
   * or a given nonce is not RFC 5802 "printable".
   */
  constructor(hash: ScramHash, username: string, secret: ScramSecret, nonce?: string) {
    const spec = HASHES[hash];
    if (spec === undefined) throw new SaslError("invalid-mechanism", "unsupported SCRAM hash");
    this.hash = hash;
    this.#spec = spec;

    const user = saslprep(username);
    if (user === null) throw malformed("username contains characters prohibited by SASLprep");
    if (user === "") throw malformed("empty username");

    if ("password" in secret) {
      // RFC 5802 §2.2 Normalize(str); saslprep.ts says why unassigned code points are allowed here.
      const pw = saslprep(secret.password);
      if (pw === null) throw malformed("password contains characters prohibited by SASLprep");
      if (pw === "") throw malformed("empty password");
      this.#password = pw;
    } else {
      if (secret.saltedPassword.length !== spec.length) {
        throw malformed(`cached salted password has the wrong length for SCRAM-${hash}`);
      }
      if (!Number.isSafeInteger(secret.iterations) || secret.salt.length === 0) throw malformed("invalid cached SCRAM keys");
      this.#cached = {
        saltedPassword: Buffer.from(secret.saltedPassword),
        salt: Buffer.from(secret.salt),
        iterations: secret.iterations,
      };
      this.#keys = this.#cached;
    }

    const cnonce = nonce ?? randomBytes(18).toString("base64");
    if (!PRINTABLE_NONCE.test(cnonce)) throw malformed("client nonce must be printable ASCII without ','");
    this.#clientNonce = cnonce;
    this.#clientFirstBare = `n=${encodeSaslName(user)},r=${cnonce}`;
  }

  /** The SCRAM mechanism name this client speaks. */
  get mechanism(): "SCRAM-SHA-256" | "SCRAM-SHA-1" {
    return this.hash === "SHA-256" ? "SCRAM-SHA-256" : "SCRAM-SHA-1";
  }

  /** client-first-message (RFC 5802 §7): gs2-header "n,," + client-first-message-bare. */
  clientFirst(): string {
    this.#expectState("initial");
    this.#state = "first-sent";
    return GS2_HEADER + this.#clientFirstBare;
  }

  /**
   * Parses server-first-message and returns client-final-message. Runs PBKDF2 synchronously when
   * constructed with a password (≈ iterations × 2 HMACs; fine for 4096, use clientFinalAsync for
   * large counts so the event loop is not blocked).
   */
  clientFinal(serverFirst: string): string {
    this.#expectState("first-sent");
    try {
      const sf = this.#parseServerFirst(serverFirst);
      const salted = this.#cachedFor(sf) ?? pbkdf2Sync(this.#takePassword(), sf.salt, sf.iterations, this.#spec.length, this.#spec.digest);
      return this.#finish(serverFirst, sf, salted);
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  /** As clientFinal, but runs PBKDF2 on the libuv thread pool. */
  async clientFinalAsync(serverFirst: string): Promise<string> {
    this.#expectState("first-sent");
    this.#state = "computing";
    try {
      const sf = this.#parseServerFirst(serverFirst);
      const salted =
        this.#cachedFor(sf) ?? (await pbkdf2Async(this.#takePassword(), sf.salt, sf.iterations, this.#spec.length, this.#spec.digest));
      return this.#finish(serverFirst, sf, salted);
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  /**
   * Checks server-final-message (RFC 5802 §7): "v=" must equal our ServerSignature (constant-time
   * compare, RFC 5802 §3) — this is what proves the upstream knows the password (mutual auth).
   * "e=" (server-error) → SaslError SASL_SERVER_ERROR with the token in `serverError`.
   */
  verifyServerFinal(serverFinal: string): void {
    this.#expectState("final-sent");
    this.#state = "failed"; // until proven otherwise; any throw below leaves it failed
    if (serverFinal.length > MAX_SERVER_MESSAGE_LENGTH) throw malformed("server-final-message too long");
    const first = serverFinal.split(",", 1)[0] ?? "";
    if (first.startsWith("e=")) {
      const token = first.slice(2);
      throw new SaslError(
        "not-authorized",
        "server rejected the SCRAM exchange",
        "SASL_SERVER_ERROR",
        /^[A-Za-z0-9-]{1,64}$/.test(token) ? token : undefined,
      );
    }
    if (!first.startsWith("v=")) throw malformed("server-final-message lacks v=");
    const got = decodeSaslBase64(first.slice(2));
    const expected = this.#expectedServerSignature;
    if (expected === undefined) throw new SaslError("temporary-auth-failure", "no server signature computed", "SASL_STATE");
    // Length is not secret (it is fixed per hash); only the content comparison must be constant-time.
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new SaslError("not-authorized", "server signature mismatch", "SASL_SERVER_SIGNATURE");
    }
    this.#state = "done";
  }

  /**
   * The salted password and its salt/iteration count, for caching so later logins need no password
   * (RFC 5802 §5.1 suggests clients cache it). Available from construction when built from cached
   * keys, otherwise after clientFinal. Cache only after verifyServerFinal succeeded. Returns copies.
   */
  get keys(): ScramKeys {
    const k = this.#keys;
    if (k === undefined) throw new SaslError("temporary-auth-failure", "SCRAM keys are not known before clientFinal", "SASL_STATE");
    return { saltedPassword: Buffer.from(k.saltedPassword), salt: Buffer.from(k.salt), iterations: k.iterations };
  }

  #expectState(want: State): void {
    if (this.#state !== want) {
      throw new SaslError("temporary-auth-failure", `SCRAM method called in state ${this.#state}, expected ${want}`, "SASL_STATE");
    }
  }

  /** The password is needed once; dropping it afterwards narrows the window in which a heap dump has it. */
  #takePassword(): string {
    const pw = this.#password;
    if (pw === undefined) throw new SaslError("credentials-expired", "password required", "SASL_NEEDS_PASSWORD");
    this.#password = undefined;
    return pw;
  }

  /**
   * With cached keys: the salted password if the server still uses the same salt and iteration
   * count; otherwise the server's verifier changed (password reset, rehash) and the cached value is
   * useless → SASL_NEEDS_PASSWORD so the caller can ask for the password and start over.
   */
  #cachedFor(sf: ServerFirst): Buffer | undefined {
    const c = this.#cached;
    if (c === undefined) return undefined;
    if (c.iterations !== sf.iterations || !c.salt.equals(sf.salt)) {
      throw new SaslError("credentials-expired", "server salt or iteration count changed; password required", "SASL_NEEDS_PASSWORD");
    }
    return c.saltedPassword;
  }

  /** server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions] */
  #parseServerFirst(msg: string): ServerFirst {
    if (msg.length > MAX_SERVER_MESSAGE_LENGTH) throw malformed("server-first-message too long");
    const attrs = msg.split(",");
    // RFC 5802 §5.1 "m": reserved for mandatory extensions; a client that sees it MUST fail.
    if (attrs[0]?.startsWith("m=")) throw malformed("server-first-message has an unsupported mandatory extension");
    const [r, s, i, ...ext] = attrs;
    if (r === undefined || s === undefined || i === undefined || !r.startsWith("r=") || !s.startsWith("s=") || !i.startsWith("i=")) {
      throw malformed("server-first-message must be r=...,s=...,i=...");
    }
    for (const e of ext) {
      if (!/^[A-Za-z]=/.test(e)) throw malformed("server-first-message has a malformed extension attribute");
    }

    const nonce = r.slice(2);
    if (!PRINTABLE_NONCE.test(nonce)) throw malformed("server nonce is not printable");
    // RFC 5802 §5.1 "r": the server appends its own nonce to ours; anything else (including simply
    // echoing ours) means the exchange is not bound to this session.
    if (!nonce.startsWith(this.#clientNonce) || nonce.length === this.#clientNonce.length) {
      throw new SaslError("not-authorized", "server nonce does not extend the client nonce", "SASL_NONCE_MISMATCH");
    }

    const salt = decodeSaslBase64(s.slice(2));
    if (salt.length === 0) throw malformed("empty salt");

    const iv = i.slice(2);
    // RFC 5802 §7: iteration-count = posit-number = %x31-39 *DIGIT. The length guard keeps Number() exact.
    if (!/^[1-9][0-9]{0,15}$/.test(iv)) throw malformed("iteration count is not a positive integer");
    const iterations = Number(iv);
    if (iterations < SCRAM_MIN_ITERATIONS) {
      throw new SaslError("mechanism-too-weak", `iteration count below ${SCRAM_MIN_ITERATIONS}`, "SASL_ITERATIONS");
    }
    if (iterations > SCRAM_MAX_ITERATIONS) {
      throw new SaslError("temporary-auth-failure", `iteration count above ${SCRAM_MAX_ITERATIONS}`, "SASL_ITERATIONS");
    }
    return { nonce, salt, iterations };
  }

  /** RFC 5802 §3 key derivation and client-final-message (§7). */
  #finish(serverFirst: string, sf: ServerFirst, saltedPassword: Buffer): string {
    const { digest } = this.#spec;
    const hmac = (key: Buffer, data: string): Buffer => createHmac(digest, key).update(data, "utf8").digest();

    const withoutProof = `c=${CBIND_INPUT},r=${sf.nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;

    const clientKey = hmac(saltedPassword, "Client Key");
    const storedKey = createHash(digest).update(clientKey).digest();
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let k = 0; k < proof.length; k++) proof[k] = (clientKey[k] ?? 0) ^ (clientSignature[k] ?? 0);

    const serverKey = hmac(saltedPassword, "Server Key");
    this.#expectedServerSignature = hmac(serverKey, authMessage);
    this.#keys = { saltedPassword: Buffer.from(saltedPassword), salt: Buffer.from(sf.salt), iterations: sf.iterations };
    this.#state = "final-sent";
    return `${withoutProof},p=${proof.toString("base64")}`;
  }
}

/**
 * Picks the strongest mechanism we can do from the server's <mechanisms/> list (RFC 6120 §6.4.1):
 * SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN. Never a -PLUS variant (no channel binding through a proxy,
 * see the header comment); null when none is offered. Names are compared case-insensitively after
 * trimming, as element text may carry whitespace.
 */
export function pickMechanism(offered: string[]): SaslMechanism | null {
  const set = new Set(offered.map((m) => m.trim().toUpperCase()));
  for (const m of ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"] as const) {
    if (set.has(m)) return m;
  }
  return null;
}

/** The ScramClient hash for a SCRAM mechanism name. */
export function scramHashOf(mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-1"): ScramHash {
  return mechanism === "SCRAM-SHA-256" ? "SHA-256" : "SHA-1";
}
