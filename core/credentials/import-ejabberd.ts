/**
 * ejabberd's SCRAM passwords, from the SQL that `ejabberdctl export2sql HOST FILE` writes (tested with
 * ejabberd 23.01 on Mnesia, auth_password_format: scram), or from a dump of the SQL backend's `users`
 * table made with column names (pg_dump --column-inserts, mysqldump --complete-insert):
 *
 *   INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('alice',
 *     'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'ilxQs39jdBKvib+iOFPEaQ==', 4096);
 *
 * For a SCRAM password, `password` is base64 StoredKey, `serverkey` base64 ServerKey, `salt` base64
 * of the salt; the hash is recognised by the key length. A row with an empty serverkey holds a plain
 * password (ejabberd's default auth_password_format is plain): it is reported, not imported. Rows
 * name their host in `server_host` (the multi-host schema); export2sql's single-host output does not,
 * and its rows belong to the host given to export2sql. String literals are read as ejabberd writes
 * them: '' and backslash escapes (\\ \' \" \0 \n \r \t \b \Z).
 */
import { hashOfLength } from "../sasl/scram-primitives.js";
import { CredentialError } from "./errors.js";
import type { ImportedAccount } from "./merge.js";
import { normalizeAccount } from "./record.js";

export type SqlValue = string | number | null;

export interface SqlInsert {
  /** The table name, unquoted, without a schema. */
  table: string;
  columns: string[];
  rows: SqlValue[][];
}

/** Why a row gives no record. */
export type EjabberdSkip = { user: string; host: string; reason: "plain-password" | "not-a-served-host" };

export interface EjabberdImport {
  accounts: ImportedAccount[];
  skipped: EjabberdSkip[];
}

const bad = (detail: string): CredentialError => new CredentialError("CREDENTIAL_FORMAT", detail);

/**
 * The accounts in an ejabberd SQL export. `host`: the domain of rows without server_host (required
 * when there are any); `served`: the domains to import (rows of other hosts are skipped). Throws
 * CredentialError(CREDENTIAL_FORMAT) for SQL it cannot read or a users row whose fields are wrong.
 */
export function ejabberdAccounts(sql: string, host: string | undefined, served: readonly string[]): EjabberdImport {
  const out: EjabberdImport = { accounts: [], skipped: [] };
  const byAccount = new Map<string, ImportedAccount>();
  for (const ins of parseSqlInserts(sql)) {
    if (ins.table.toLowerCase() !== "users") continue;
    const col = (name: string): number => ins.columns.findIndex((c) => c.toLowerCase() === name);
    const [iUser, iHost, iPass, iServerKey, iSalt, iIter] = ["username", "server_host", "password", "serverkey", "salt", "iterationcount"].map(col);
    if (iUser === undefined || iUser < 0 || iPass === undefined || iPass < 0) throw bad("users rows without username or password column");
    for (const row of ins.rows) {
      const user = row[iUser];
      if (typeof user !== "string" || user === "") throw bad("users row without a username");
      const rowHost = iHost !== undefined && iHost >= 0 ? row[iHost] : undefined;
      const h = typeof rowHost === "string" && rowHost !== "" ? rowHost.toLowerCase() : host;
      if (h === undefined) throw bad("users rows have no server_host column: give the host the export was made for");
      if (!served.includes(h)) {
        out.skipped.push({ user, host: h, reason: "not-a-served-host" });
        continue;
      }
      const serverKeyText = iServerKey !== undefined && iServerKey >= 0 ? row[iServerKey] : null;
      if (serverKeyText === null || serverKeyText === "" || serverKeyText === undefined) {
        out.skipped.push({ user, host: h, reason: "plain-password" });
        continue;
      }
      const account = normalizeAccount(`${user}@${h}`);
      if (account === null) throw bad("users row whose username and host do not make a JID");
      const storedKey = b64Field(row[iPass], "password (StoredKey)");
      const serverKey = b64Field(serverKeyText, "serverkey");
      const salt = b64Field(iSalt !== undefined && iSalt >= 0 ? row[iSalt] : null, "salt");
      const itv = iIter !== undefined && iIter >= 0 ? row[iIter] : null;
      const iterations = typeof itv === "string" && /^[0-9]{1,9}$/.test(itv) ? Number(itv) : itv;
      if (typeof iterations !== "number" || !Number.isSafeInteger(iterations) || iterations < 1) throw bad("iterationcount missing or not a positive integer");
      const hash = hashOfLength(storedKey.length);
      if (hash === undefined || serverKey.length !== storedKey.length) throw bad("StoredKey/ServerKey length fits no SCRAM hash");
      const acc = byAccount.get(account) ?? { account, records: {} };
      acc.records[hash] = { salt, iterations, storedKey, serverKey };
      byAccount.set(account, acc);
    }
  }
  out.accounts = [...byAccount.values()];
  return out;
}

function b64Field(v: SqlValue | undefined, name: string): Buffer {
  if (typeof v !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v) || v === "") {
    throw bad(`${name} is not base64`);
  }
  return Buffer.from(v, "base64");
}

// ---------------------------------------------------------------------------------------------------
// Just enough SQL: INSERT INTO name (columns) VALUES (...), (...);  everything else is skipped.

/** Every INSERT with a column list in `sql`. Throws CredentialError(CREDENTIAL_FORMAT) on a malformed one. */
export function parseSqlInserts(sql: string): SqlInsert[] {
  const out: SqlInsert[] = [];
  const lx = new SqlLexer(sql);
  for (;;) {
    const t = lx.next();
    if (t === null) break;
    if (t.kind === "word" && t.text.toUpperCase() === "INSERT" && lx.peekWord()?.toUpperCase() === "INTO") {
      lx.next();
      out.push(parseInsert(lx));
      continue;
    }
    // any other statement: skip to its end
    let s: Token | null = t;
    while (s !== null && !(s.kind === "punct" && s.text === ";")) s = lx.next();
  }
  return out;
}

type Token = { kind: "word" | "punct"; text: string } | { kind: "string"; text: string } | { kind: "number"; text: string };

function parseInsert(lx: SqlLexer): SqlInsert {
  // table: a.b.c, each part maybe quoted
  let name = lx.need("word", "a table name").text;
  while (lx.peekPunct() === ".") {
    lx.next();
    name = lx.need("word", "a table name").text;
  }
  if (lx.peekPunct() !== "(") throw bad("INSERT without a column list (dump with column names)");
  lx.next();
  const columns: string[] = [];
  for (;;) {
    columns.push(lx.need("word", "a column name").text);
    const p = lx.need("punct", ", or )").text;
    if (p === ")") break;
    if (p !== ",") throw bad("malformed column list");
  }
  const values = lx.need("word", "VALUES");
  if (values.text.toUpperCase() !== "VALUES") throw bad("INSERT without VALUES");
  const rows: SqlValue[][] = [];
  for (;;) {
    if (lx.need("punct", "(").text !== "(") throw bad("malformed VALUES");
    const row: SqlValue[] = [];
    for (;;) {
      const v = lx.next();
      if (v === null) throw bad("unterminated VALUES");
      if (v.kind === "string") row.push(v.text);
      else if (v.kind === "number") row.push(Number(v.text));
      else if (v.kind === "word" && v.text.toUpperCase() === "NULL") row.push(null);
      else throw bad("unsupported value in VALUES");
      const p = lx.need("punct", ", or )").text;
      if (p === ")") break;
      if (p !== ",") throw bad("malformed VALUES");
    }
    if (row.length !== columns.length) throw bad("a row has another number of values than columns");
    rows.push(row);
    const after = lx.next();
    if (after === null || (after.kind === "punct" && after.text === ";")) break;
    if (!(after.kind === "punct" && after.text === ",")) throw bad("malformed VALUES");
  }
  return { table: name, columns, rows };
}

class SqlLexer {
  #pos = 0;
  #peeked: Token | null | undefined;
  constructor(private readonly src: string) {}

  peekWord(): string | undefined {
    const t = this.#peek();
    return t?.kind === "word" ? t.text : undefined;
  }

  peekPunct(): string | undefined {
    const t = this.#peek();
    return t?.kind === "punct" ? t.text : undefined;
  }

  need(kind: "word" | "punct", what: string): Token {
    const t = this.next();
    if (t === null || t.kind !== kind) throw bad(`expected ${what}`);
    return t;
  }

  #peek(): Token | null {
    if (this.#peeked === undefined) this.#peeked = this.#read();
    return this.#peeked;
  }

  next(): Token | null {
    const t = this.#peek();
    this.#peeked = undefined;
    return t;
  }

  #read(): Token | null {
    const s = this.src;
    for (;;) {
      while (this.#pos < s.length && /\s/.test(s[this.#pos] as string)) this.#pos++;
      if (s.startsWith("--", this.#pos)) {
        const nl = s.indexOf("\n", this.#pos);
        this.#pos = nl < 0 ? s.length : nl + 1;
      } else if (s.startsWith("/*", this.#pos)) {
        const end = s.indexOf("*/", this.#pos + 2);
        if (end < 0) throw bad("unterminated comment");
        this.#pos = end + 2;
      } else break;
    }
    if (this.#pos >= s.length) return null;
    const c = s[this.#pos] as string;
    if (c === "'" || ((c === "E" || c === "e") && s[this.#pos + 1] === "'")) {
      if (c !== "'") this.#pos++;
      return { kind: "string", text: this.#string() };
    }
    if (c === '"' || c === "`") {
      const end = s.indexOf(c, this.#pos + 1);
      if (end < 0) throw bad("unterminated quoted name");
      const text = s.slice(this.#pos + 1, end);
      this.#pos = end + 1;
      return { kind: "word", text };
    }
    const num = /^-?[0-9]+(?:\.[0-9]+)?/.exec(s.slice(this.#pos, this.#pos + 40));
    if (num !== null) {
      this.#pos += num[0].length;
      return { kind: "number", text: num[0] };
    }
    const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(s.slice(this.#pos, this.#pos + 256));
    if (word !== null) {
      this.#pos += word[0].length;
      return { kind: "word", text: word[0] };
    }
    this.#pos++;
    return { kind: "punct", text: c };
  }

  #string(): string {
    const s = this.src;
    this.#pos++; // opening quote
    let out = "";
    for (;;) {
      const c = s[this.#pos++];
      if (c === undefined) throw bad("unterminated string");
      if (c === "'") {
        if (s[this.#pos] === "'") {
          out += "'";
          this.#pos++;
          continue;
        }
        return out;
      }
      if (c === "\\") {
        const e = s[this.#pos++];
        const map: Record<string, string> = { "0": "\0", n: "\n", r: "\r", t: "\t", b: "\b", Z: "\x1a", "\\": "\\", "'": "'", '"': '"' };
        if (e === undefined) throw bad("unterminated string");
        out += map[e] ?? e;
        continue;
      }
      out += c;
    }
  }
}
