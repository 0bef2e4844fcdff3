/**
 * SCRAM client (RFC 5802) for SCRAM-SHA-1, SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-512. Upstream it
 * runs without channel binding: the GS2 header is "n,," (RFC 5802 §7: "n" = client does not support
 * channel binding, no authzid), and pickMechanism never picks a -PLUS variant, since a proxy
 * terminates the client's TLS and opens its own upstream, so there is no end-to-end channel to bind
 * to. The `gs2` option ("y", or "p" with channel-binding data, RFC 5802 §6) exists for the tests of
 * the proxy's own verifier (scram-server.ts), which must see real -PLUS clients.
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
import { decodeSaslBase64 } from "./base64.js";
import { SaslError } from "./errors.js";
import { saslprep } from "./saslprep.js";
import type { SaltedPasswordCache } from "./salted-cache.js";
import {
  PRINTABLE_NONCE,
  encodeSaslName,
  equalBytes,
  hashLength,
  keysFromSaltedPassword,
  randomNonce,
  scramHi,
  scramHiAsync,
  scramH,
  scramHmac,
  scramMechanismName,
  xorBytes,
  type ScramHash,
  type ScramMechanism,
} from "./scram-primitives.js";

export type { ScramHash, ScramMechanism };
/** What pickMechanism may choose upstream. */
export type SaslMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-1" | "PLAIN";

/** What a caller may cache instead of the password (RFC 5802 §3 SaltedPassword and its inputs). */
export interface ScramKeys {
  saltedPassword: Buffer;
  salt: Buffer;
  iterations: number;
}

/**
 * ClientKey and ServerKey instead of SaltedPassword (RFC 5802 §3): all a client needs to log in where
 * this salt and iteration count apply. A verifier learns the ClientKey from a successful proof
 * (scram-server.ts), and keeps the ServerKey in its record.
 */
export interface ScramClientKeys {
  clientKey: Buffer;
  serverKey: Buffer;
  salt: Buffer;
  iterations: number;
}

export type ScramSecret = { password: string } | ScramKeys | ScramClientKeys;

/** What the exchange runs on once the salt and iteration count are known. */
interface Derived {
  clientKey: Buffer;
  serverKey: Buffer;
  /** Absent when the client was given ClientKey/ServerKey only. */
  saltedPassword?: Buffer;
}

/**
 * RFC 5802 §5.1 "i": servers SHOULD use at least 4096 iterations (RFC 7677 §4 also says 4096 for
 * SHA-256); below that we refuse rather than hand a weak verifier to a possibly hostile upstream.
 */
export const SCRAM_MIN_ITERATIONS = 4096;
/** Above this a (hostile or misconfigured) server could make us burn seconds of CPU per login. */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

/** Bounds on server messages, checked before any parsing. Real ones are well under 200 characters. */
const MAX_SERVER_MESSAGE_LENGTH = 4096;

/**
 * RFC 5802 §6/§7 gs2-cbind-flag: "n" (no channel binding, the default), "y" (the client could bind but
 * believes the server cannot), or "p" with the channel-binding type and its data for this connection.
 */
export type ScramClientGs2 = "n" | "y" | { type: string; data: Buffer };

export interface ScramClientOptions {
  /** Fixed client nonce, for tests only; by default 18 random octets in base64. */
  nonce?: string;
  gs2?: ScramClientGs2;
  /** RFC 5802 §5.1 "a": the authorization identity (in XMPP a bare JID), escaped as a saslname. */
  authzid?: string;
  /**
   * SaltedPasswords computed before (salted-cache.ts): with a password, PBKDF2 runs only when this
   * holds nothing for the password, salt and count; the result is remembered once the server's
   * signature verified.
   */
  saltedPasswords?: SaltedPasswordCache;
}

interface ServerFirst {
  nonce: string;
  salt: Buffer;
  iterations: number;
}

type State = "initial" | "first-sent" | "computing" | "final-sent" | "done" | "failed";

function malformed(detail: string): SaslError {
  return new SaslError("malformed-request", detail);
}

export class ScramClient {
  readonly hash: ScramHash;
  // ECMAScript private fields: util.inspect/console.log and JSON.stringify do not show them, so logging
  // the client object cannot leak the password or the salted password.
  readonly #length: number;
  readonly #gs2Header: string;
  /** The "c=" value: base64(gs2-header [+ cbind-data]) (RFC 5802 §7). */
  readonly #cbindInput: string;
  readonly #plus: boolean;
  readonly #clientNonce: string;
  readonly #clientFirstBare: string;
  #password: string | undefined;
  /** From construction with cached keys: for this salt and iteration count only. */
  #cached: (Derived & { salt: Buffer; iterations: number }) | undefined;
  #keys: ScramKeys | undefined;
  #clientKeys: ScramClientKeys | undefined;
  #expectedServerSignature: Buffer | undefined;
  #state: State = "initial";
  readonly #saltedPasswords: SaltedPasswordCache | undefined;
  /** What to remember in #saltedPasswords once the server's signature verified. */
  #toRemember: { password: string; salt: Buffer; iterations: number; saltedPassword: Buffer } | undefined;

  /**
   * @param username the SCRAM authentication identity (in XMPP, the account's localpart).
   * @param secret the password, the salted password from an earlier successful exchange, or
   *   ClientKey/ServerKey (for the salt and iteration count they were made with), or "later" (supply()).
   * @param options a fixed nonce (tests only; a string is taken as the nonce), the GS2 flag, an authzid.
   * Throws SaslError("malformed-request") if username/password fail SASLprep, the username is empty,
   * a given nonce is not RFC 5802 "printable", or a channel-binding type is not a valid cb-name.
   */
  constructor(hash: ScramHash, username: string, secret: ScramSecret | "later", options?: string | ScramClientOptions) {
    if (hash !== "SHA-1" && hash !== "SHA-256" && hash !== "SHA-512") throw new SaslError("invalid-mechanism", "unsupported SCRAM hash");
    const opts: ScramClientOptions = typeof options === "string" ? { nonce: options } : (options ?? {});
    this.hash = hash;
    this.#length = hashLength(hash);
    this.#saltedPasswords = opts.saltedPasswords;

    const user = saslprep(username);
    if (user === null) throw malformed("username contains characters prohibited by SASLprep");
    if (user === "") throw malformed("empty username");

    if (secret !== "later") this.#setSecret(secret);

    const cnonce = opts.nonce ?? randomNonce();
    if (!PRINTABLE_NONCE.test(cnonce)) throw malformed("client nonce must be printable ASCII without ','");
    this.#clientNonce = cnonce;
    this.#clientFirstBare = `n=${encodeSaslName(user)},r=${cnonce}`;

    // RFC 5802 §7: gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const gs2 = opts.gs2 ?? "n";
    let authzid = "";
    if (opts.authzid !== undefined) {
      const a = saslprep(opts.authzid);
      if (a === null || a === "") throw malformed("invalid authzid");
      authzid = `a=${encodeSaslName(a)}`;
    }
    if (typeof gs2 === "string") {
      this.#gs2Header = `${gs2},${authzid},`;
      this.#cbindInput = Buffer.from(this.#gs2Header, "utf8").toString("base64");
      this.#plus = false;
    } else {
      if (!/^[A-Za-z0-9.-]+$/.test(gs2.type)) throw malformed("channel-binding type is not a cb-name");
      this.#gs2Header = `p=${gs2.type},${authzid},`;
      this.#cbindInput = Buffer.concat([Buffer.from(this.#gs2Header, "utf8"), gs2.data]).toString("base64");
      this.#plus = true;
    }
  }

  /**
   * The secret for a client built with "later": the client-first message can go out before it is known
   * (the proxy sends it upstream while its own client still computes the proof that yields the
   * ClientKey, docs/architecture.md §3.5). Call before clientFinal, once.
   */
  supply(secret: ScramSecret): void {
    if (this.#password !== undefined || this.#cached !== undefined) {
      throw new SaslError("temporary-auth-failure", "SCRAM secret supplied twice", "SASL_STATE");
    }
    this.#setSecret(secret);
  }

  #setSecret(secret: ScramSecret): void {
    if ("password" in secret) {
      // RFC 5802 §2.2 Normalize(str); saslprep.ts says why unassigned code points are allowed here.
      const pw = saslprep(secret.password);
      if (pw === null) throw malformed("password contains characters prohibited by SASLprep");
      if (pw === "") throw malformed("empty password");
      this.#password = pw;
    } else {
      if (!Number.isSafeInteger(secret.iterations) || secret.salt.length === 0) throw malformed("invalid cached SCRAM keys");
      const salt = Buffer.from(secret.salt);
      if ("saltedPassword" in secret) {
        if (secret.saltedPassword.length !== this.#length) {
          throw malformed(`cached salted password has the wrong length for SCRAM-${this.hash}`);
        }
        const saltedPassword = Buffer.from(secret.saltedPassword);
        this.#cached = { ...keysFromSaltedPassword(this.hash, saltedPassword), saltedPassword, salt, iterations: secret.iterations };
        this.#keys = { saltedPassword, salt, iterations: secret.iterations };
      } else {
        if (secret.clientKey.length !== this.#length || secret.serverKey.length !== this.#length) {
          throw malformed(`cached ClientKey/ServerKey have the wrong length for SCRAM-${this.hash}`);
        }
        this.#cached = { clientKey: Buffer.from(secret.clientKey), serverKey: Buffer.from(secret.serverKey), salt, iterations: secret.iterations };
      }
      const c = this.#cached;
      this.#clientKeys = { clientKey: c.clientKey, serverKey: c.serverKey, salt, iterations: c.iterations };
    }
  }

  /** The SCRAM mechanism name this client speaks (-PLUS when it binds to the channel). */
  get mechanism(): ScramMechanism {
    return scramMechanismName(this.hash, this.#plus);
  }

  /** client-first-message (RFC 5802 §7): gs2-header (e.g. "n,,") + client-first-message-bare. */
  clientFirst(): string {
    this.#expectState("initial");
    this.#state = "first-sent";
    return this.#gs2Header + this.#clientFirstBare;
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
      const derived = this.#cachedFor(sf) ?? this.#fromPassword(sf);
      return this.#finish(serverFirst, sf, derived);
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
      const derived = this.#cachedFor(sf) ?? (await this.#fromPasswordAsync(sf));
      return this.#finish(serverFirst, sf, derived);
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
    if (!equalBytes(got, expected)) {
      this.#toRemember = undefined;
      throw new SaslError("not-authorized", "server signature mismatch", "SASL_SERVER_SIGNATURE");
    }
    this.#state = "done";
    const r = this.#toRemember;
    this.#toRemember = undefined;
    // the server proved it knows this SaltedPassword's keys: the password was right
    if (r) this.#saltedPasswords?.remember(this.hash, r.password, r.salt, r.iterations, r.saltedPassword);
  }

  /**
   * The salted password and its salt/iteration count, for caching so later logins need no password
   * (RFC 5802 §5.1 suggests clients cache it). Available from construction when built from cached
   * keys, otherwise after clientFinal. Cache only after verifyServerFinal succeeded. Returns copies.
   */
  get keys(): ScramKeys {
    const k = this.#keys;
    if (k === undefined) {
      throw new SaslError("temporary-auth-failure", "SCRAM salted password not known (before clientFinal, or built from ClientKey/ServerKey)", "SASL_STATE");
    }
    return { saltedPassword: Buffer.from(k.saltedPassword), salt: Buffer.from(k.salt), iterations: k.iterations };
  }

  /** ClientKey/ServerKey with their salt and iteration count; known when `keys` is, and for a client built from them. Copies. */
  get clientKeys(): ScramClientKeys {
    const k = this.#clientKeys;
    if (k === undefined) throw new SaslError("temporary-auth-failure", "SCRAM keys are not known before clientFinal", "SASL_STATE");
    return { clientKey: Buffer.from(k.clientKey), serverKey: Buffer.from(k.serverKey), salt: Buffer.from(k.salt), iterations: k.iterations };
  }

  #expectState(want: State): void {
    if (this.#state !== want) {
      throw new SaslError("temporary-auth-failure", `SCRAM method called in state ${this.#state}, expected ${want}`, "SASL_STATE");
    }
  }

  /** The password is needed once; dropping it afterwards narrows the window in which a heap dump has it. */
  /** SaltedPassword from the password: from #saltedPasswords when it holds it, else PBKDF2 (sync). */
  #fromPassword(sf: ServerFirst): Derived {
    const pw = this.#takePassword();
    return this.#remembered(sf, pw) ?? this.#computed(sf, pw, scramHi(this.hash, pw, sf.salt, sf.iterations));
  }

  /** As #fromPassword, PBKDF2 on the libuv thread pool. */
  async #fromPasswordAsync(sf: ServerFirst): Promise<Derived> {
    const pw = this.#takePassword();
    return this.#remembered(sf, pw) ?? this.#computed(sf, pw, await scramHiAsync(this.hash, pw, sf.salt, sf.iterations));
  }

  #remembered(sf: ServerFirst, pw: string): Derived | undefined {
    const hit = this.#saltedPasswords?.get(this.hash, pw, sf.salt, sf.iterations);
    return hit === undefined ? undefined : fromSalted(this.hash, hit);
  }

  #computed(sf: ServerFirst, pw: string, salted: Buffer): Derived {
    if (this.#saltedPasswords) this.#toRemember = { password: pw, salt: sf.salt, iterations: sf.iterations, saltedPassword: salted };
    return fromSalted(this.hash, salted);
  }

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
  #cachedFor(sf: ServerFirst): Derived | undefined {
    const c = this.#cached;
    if (c === undefined) return undefined;
    if (c.iterations !== sf.iterations || !c.salt.equals(sf.salt)) {
      throw new SaslError("credentials-expired", "server salt or iteration count changed; password required", "SASL_NEEDS_PASSWORD");
    }
    return c;
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
  #finish(serverFirst: string, sf: ServerFirst, d: Derived): string {
    const withoutProof = `c=${this.#cbindInput},r=${sf.nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;

    const proof = xorBytes(d.clientKey, scramHmac(this.hash, scramH(this.hash, d.clientKey), authMessage));
    this.#expectedServerSignature = scramHmac(this.hash, d.serverKey, authMessage);
    const salt = Buffer.from(sf.salt);
    if (d.saltedPassword !== undefined) this.#keys = { saltedPassword: Buffer.from(d.saltedPassword), salt, iterations: sf.iterations };
    this.#clientKeys = { clientKey: Buffer.from(d.clientKey), serverKey: Buffer.from(d.serverKey), salt, iterations: sf.iterations };
    this.#state = "final-sent";
    return `${withoutProof},p=${proof.toString("base64")}`;
  }
}

function fromSalted(hash: ScramHash, saltedPassword: Buffer): Derived {
  const { clientKey, serverKey } = keysFromSaltedPassword(hash, saltedPassword);
  return { clientKey, serverKey, saltedPassword };
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
