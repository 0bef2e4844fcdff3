/**
 * Prosody's internal_hashed account files (mod_auth_internal_hashed with storage "internal"):
 * DATA/<host>/accounts/<user>.dat, written by util/datamanager as a Lua chunk, e.g. (Prosody 0.12)
 *
 *   return {
 *   	["iteration_count"] = 4096;
 *   	["stored_key"] = "5712e571ad1d640c3c55ca60d944f758e54807ce";
 *   	["salt"] = "89ace65f-03d5-4fdc-aa18-04c15ecf31fd";
 *   	["server_key"] = "01f14f1558677db6c1315c7558eef9587efc9349";
 *   };
 *
 * stored_key and server_key are hex; the salt is used as its raw bytes (here a UUID string, which is
 * what goes into "s=" base64-encoded); the hash is SCRAM-SHA-1 in 0.12 and is recognised here by the
 * key length (20/32/64 octets). Host and user names in paths are datamanager-encoded: every
 * non-alphanumeric byte as %xx. Only the subset of Lua that datamanager writes is read: a flat table
 * of string keys to strings, numbers and booleans; anything else is refused, never evaluated.
 */
import { hashOfLength, type ScramHash } from "../sasl/scram-primitives.js";
import type { ScramVerifierRecord } from "../sasl/scram-server.js";
import { CredentialError } from "./errors.js";
import type { ImportedAccount } from "./merge.js";
import { normalizeAccount } from "./record.js";

/** Why an account file gives no SCRAM record. */
export type ProsodySkip = "plain-password" | "no-credentials";

/** util/datamanager encode(): every byte that is not [A-Za-z0-9] as "%" + two lowercase hex digits. */
export function encodeProsodyName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(c) ? c : `%${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** The inverse of encodeProsodyName (decode() in util/datamanager); null when it is not such a name. */
export function decodeProsodyName(encoded: string): string | null {
  if (!/^(?:[A-Za-z0-9]|%[0-9a-fA-F]{2})+$/.test(encoded)) return null;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === "%") {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(bytes));
  } catch {
    return null;
  }
}

/**
 * One account file → its SCRAM record, or the reason there is none. Throws
 * CredentialError(CREDENTIAL_FORMAT) for a file that is not a datamanager table or whose fields are
 * wrong (the message names the field, never its value).
 */
export function prosodyAccount(file: Buffer, user: string, host: string): ImportedAccount | { skip: ProsodySkip } {
  const t = parseLuaTable(file);
  const account = normalizeAccount(`${user}@${host}`);
  if (account === null) throw new CredentialError("CREDENTIAL_FORMAT", "user and host do not make a JID");
  const stored = t.get("stored_key");
  const server = t.get("server_key");
  if (stored === undefined && server === undefined) {
    return { skip: t.has("password") ? "plain-password" : "no-credentials" };
  }
  const storedKey = hexField(stored, "stored_key");
  const serverKey = hexField(server, "server_key");
  const hash: ScramHash | undefined = hashOfLength(storedKey.length);
  if (hash === undefined || serverKey.length !== storedKey.length) throw new CredentialError("CREDENTIAL_FORMAT", "stored_key/server_key length fits no SCRAM hash");
  const salt = t.get("salt");
  if (!Buffer.isBuffer(salt) || salt.length === 0) throw new CredentialError("CREDENTIAL_FORMAT", "salt missing or empty");
  const iterations = t.get("iteration_count");
  if (typeof iterations !== "number" || !Number.isSafeInteger(iterations) || iterations < 1) {
    throw new CredentialError("CREDENTIAL_FORMAT", "iteration_count missing or not a positive integer");
  }
  const record: ScramVerifierRecord = { salt, iterations, storedKey, serverKey };
  return { account, records: { [hash]: record } };
}

function hexField(v: LuaValue | undefined, name: string): Buffer {
  if (!Buffer.isBuffer(v)) throw new CredentialError("CREDENTIAL_FORMAT", `${name} missing or not a string`);
  const s = v.toString("latin1");
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(s)) throw new CredentialError("CREDENTIAL_FORMAT", `${name} is not hex`);
  return Buffer.from(s, "hex");
}

// ---------------------------------------------------------------------------------------------------
// The Lua subset util/serialization (datamanager) writes

/** Lua strings are byte strings: kept as Buffers. */
export type LuaValue = Buffer | number | boolean;

/**
 * Parses `return { [key] = value; ... };` with string keys (["k"] or k), values that are strings
 * (all Lua 5.4 short-string escapes), numbers or booleans, ";" or "," separators and "--" comments.
 * Keys come back as strings (Latin-1 for their bytes). Throws CredentialError(CREDENTIAL_FORMAT).
 */
export function parseLuaTable(file: Buffer): Map<string, LuaValue> {
  const p = new LuaParser(file.toString("latin1"));
  p.skip();
  p.word("return");
  p.expect("{");
  const out = new Map<string, LuaValue>();
  for (;;) {
    p.skip();
    if (p.peek() === "}") {
      p.pos++;
      break;
    }
    const key = p.key();
    p.expect("=");
    p.skip();
    const value = p.value();
    if (out.has(key)) throw p.error("duplicate key");
    out.set(key, value);
    p.skip();
    const sep = p.peek();
    if (sep === ";" || sep === ",") p.pos++;
    else if (sep !== "}") throw p.error("expected ; , or }");
  }
  p.skip();
  if (p.peek() === ";") p.pos++;
  p.skip();
  if (p.pos !== p.src.length) throw p.error("unexpected text after the table");
  return out;
}

class LuaParser {
  pos = 0;
  constructor(readonly src: string) {}

  error(what: string): CredentialError {
    return new CredentialError("CREDENTIAL_FORMAT", `not a Prosody data file: ${what} at offset ${this.pos}`);
  }

  peek(): string {
    return this.src[this.pos] ?? "";
  }

  /** Whitespace and comments ("--" to the end of the line; long comments are not written by Prosody). */
  skip(): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r" || c === "\n") this.pos++;
      else if (this.src.startsWith("--", this.pos) && !this.src.startsWith("--[[", this.pos)) {
        const nl = this.src.indexOf("\n", this.pos);
        this.pos = nl < 0 ? this.src.length : nl + 1;
      } else return;
    }
  }

  word(w: string): void {
    if (!this.src.startsWith(w, this.pos) || /[A-Za-z0-9_]/.test(this.src[this.pos + w.length] ?? "")) throw this.error(`expected ${w}`);
    this.pos += w.length;
  }

  expect(ch: string): void {
    this.skip();
    if (this.peek() !== ch) throw this.error(`expected ${ch}`);
    this.pos++;
  }

  key(): string {
    if (this.peek() === "[") {
      this.pos++;
      this.skip();
      const k = this.string();
      this.expect("]");
      this.skip();
      return k.toString("latin1");
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos, this.pos + 256));
    if (m === null) throw this.error("expected a key");
    this.pos += m[0].length;
    this.skip();
    return m[0];
  }

  value(): LuaValue {
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (this.src.startsWith("true", this.pos)) {
      this.word("true");
      return true;
    }
    if (this.src.startsWith("false", this.pos)) {
      this.word("false");
      return false;
    }
    const m = /^-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(this.src.slice(this.pos, this.pos + 64));
    if (m === null) throw this.error("expected a string, number or boolean");
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) throw this.error("bad number");
    return n;
  }

  /** A Lua short string (Lua 5.4 §3.1), as bytes. */
  string(): Buffer {
    const quote = this.peek();
    if (quote !== '"' && quote !== "'") throw this.error("expected a string");
    this.pos++;
    const bytes: number[] = [];
    for (;;) {
      const c = this.src[this.pos++];
      if (c === undefined || c === "\n") throw this.error("unterminated string");
      if (c === quote) break;
      if (c !== "\\") {
        bytes.push(c.charCodeAt(0));
        continue;
      }
      const e = this.src[this.pos++] ?? "";
      const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92, '"': 34, "'": 39, "\n": 10 };
      if (e in simple) {
        bytes.push(simple[e] as number);
        if (e === "\n" && this.peek() === "\r") this.pos++;
      } else if (e === "\r") {
        bytes.push(10);
        if (this.peek() === "\n") this.pos++;
      } else if (e === "x") {
        const h = this.src.slice(this.pos, this.pos + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw this.error("bad \\x escape");
        bytes.push(parseInt(h, 16));
        this.pos += 2;
      } else if (e === "z") {
        while (/\s/.test(this.peek())) this.pos++;
      } else if (/[0-9]/.test(e)) {
        let d = e;
        while (d.length < 3 && /[0-9]/.test(this.peek())) d += this.src[this.pos++];
        const v = Number(d);
        if (v > 255) throw this.error("bad decimal escape");
        bytes.push(v);
      } else if (e === "u") {
        const m = /^\{([0-9a-fA-F]{1,8})\}/.exec(this.src.slice(this.pos, this.pos + 10));
        if (m === null) throw this.error("bad \\u escape");
        const cp = parseInt(m[1] as string, 16);
        if (cp > 0x10ffff) throw this.error("bad \\u escape");
        bytes.push(...Buffer.from(String.fromCodePoint(cp), "utf8"));
        this.pos += m[0].length;
      } else throw this.error("bad escape");
    }
    return Buffer.from(bytes);
  }
}
