/**
 * SCRAM's SaltedPassword (RFC 5802 §3: Hi(Normalize(password), salt, i), i.e. PBKDF2) computed once per
 * (password, salt, iteration count, hash) and reused: a client logging in with PLAIN sends its
 * password every time, and the proxy's upstream SCRAM login would otherwise run the same 4096+
 * iterations again at every login (issue 15).
 *
 * Keyed so that only the same password can hit an entry: the key is HMAC-SHA-256, under a random key
 * made for this process, of the hash, the count, the salt and the password — the map holds no
 * password, and its keys are useless outside this process. A wrong password computes its own
 * PBKDF2 and, because entries are added only after the server proved the password right
 * (`remember` after its signature verified), never enters. Bounded (least recently used goes first).
 * Values are copied in and out; nothing here is logged.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { ScramHash } from "./scram-primitives.js";

export class SaltedPasswordCache {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Buffer>();

  /** `maxEntries`: how many SaltedPasswords at most (one per account and hash in practice). */
  constructor(readonly maxEntries = 4096) {}

  get size(): number {
    return this.#entries.size;
  }

  #id(hash: ScramHash, password: string, salt: Buffer, iterations: number): string {
    const h = createHmac("sha256", this.#key);
    // every field but the last has a fixed or length-prefixed encoding, so no two inputs collide
    const head = Buffer.alloc(8);
    head.writeUInt32BE(iterations >>> 0, 0);
    head.writeUInt32BE(salt.length, 4);
    return h.update(hash).update("\0").update(head).update(salt).update(password, "utf8").digest("base64");
  }

  /** The SaltedPassword remembered for exactly these inputs (a copy), or undefined. `password` SASLprep'd. */
  get(hash: ScramHash, password: string, salt: Buffer, iterations: number): Buffer | undefined {
    const id = this.#id(hash, password, salt, iterations);
    const v = this.#entries.get(id);
    if (v === undefined) return undefined;
    this.#entries.delete(id); // most recently used last
    this.#entries.set(id, v);
    return Buffer.from(v);
  }

  /** Remembers a SaltedPassword the server accepted (its signature verified). */
  remember(hash: ScramHash, password: string, salt: Buffer, iterations: number, saltedPassword: Buffer): void {
    if (this.maxEntries <= 0) return;
    const id = this.#id(hash, password, salt, iterations);
    this.#entries.delete(id);
    this.#entries.set(id, Buffer.from(saltedPassword));
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.get(oldest)?.fill(0);
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    for (const v of this.#entries.values()) v.fill(0);
    this.#entries.clear();
  }
}
