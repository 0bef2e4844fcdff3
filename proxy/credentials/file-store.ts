/**
 * The embedded credential store: one JSON file per account (core/credentials/record.ts's form) in
 * STATE_DIR/credentials, directory 0700, files 0600. A write goes to a temporary file in the same
 * directory, is fsync'ed, renamed over the account's file (atomic on POSIX) and the directory is
 * fsync'ed, so a crash leaves either the old or the new record, never a torn one. Every read stats
 * the file and reads it again only when it changed (inode, size, mtime, ctime: a rename-over is a new
 * inode): records written by `minimix-proxy import-credentials` while the proxy runs are seen at the
 * next login, and a login costs one stat instead of open, fstat, read and close. The texts of at most
 * TEXT_CACHE_SIZE records are kept (public salts and keys, as on disk; decoded afresh at each read).
 *
 * open() checks the whole store before the proxy takes a client: a record that does not decode, or a
 * directory or file that other users can read, is a CredentialStoreError with a stable code, at
 * start-up rather than in the middle of someone's login.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, lstat, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { CredentialError } from "../../core/credentials/errors.js";
import {
  decodeAccountCredentials,
  normalizeAccount,
  type AccountCredentials,
} from "../../core/credentials/record.js";
import { CredentialStoreError, type CredentialStore, encodeForStore } from "./store.js";

export const CREDENTIALS_SUBDIR = "credentials";
const SUFFIX = ".json";
const TEMP_PREFIX = ".tmp-";
/** A temporary file older than this is what a crash left behind; younger ones may be another writer's. */
const STALE_TEMP_MS = 10 * 60_000;
/** Longer encoded names become a hash: file names are limited to 255 octets. */
const MAX_ENCODED_NAME = 200;

/**
 * The file name of an account: the bare JID with every byte outside [a-z0-9@._-] as %XX (and a
 * leading "." too, so no record is a dot file), or "h-" + SHA-256 for very long JIDs. Injective: an
 * account always contains "@", a hashed name never does.
 */
export function fileNameFor(account: string): string {
  let enc = "";
  for (const byte of Buffer.from(account, "utf8")) {
    const c = String.fromCharCode(byte);
    enc += /[a-z0-9@._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (enc.startsWith(".")) enc = `%2E${enc.slice(1)}`;
  if (enc.length > MAX_ENCODED_NAME) enc = `h-${createHash("sha256").update(account, "utf8").digest("hex")}`;
  return `${enc}${SUFFIX}`;
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** How many record texts a store keeps in memory (least recently read dropped first). */
export const TEXT_CACHE_SIZE = 4096;

export class FileCredentialStore implements CredentialStore {
  /** Record texts by path, with the stat signature they were read under (see the file comment). */
  readonly #texts = new Map<string, { sig: string; text: string }>();
  readonly dir: string;
  /** The directory's owner: records written by root (an import) are given to it, so the proxy can read them. */
  readonly #owner: { uid: number; gid: number };

  private constructor(dir: string, owner: { uid: number; gid: number }) {
    this.dir = dir;
    this.#owner = owner;
  }

  get description(): string {
    return `file:${this.dir}`;
  }

  /**
   * Opens (creating it 0700 if missing) STATE_DIR/credentials and checks every record. Rejects with
   * CredentialStoreError: CREDENTIAL_STORE_UNREADABLE (cannot create, read or write the directory or a
   * record), CREDENTIAL_STORE_PERMISSIONS (group or others have access), CREDENTIAL_STORE_CORRUPT (a
   * record that does not decode, or whose name does not fit its account). Returns the number of
   * accounts with it.
   */
  static async open(stateDir: string, now: number = Date.now()): Promise<{ store: FileCredentialStore; accounts: number }> {
    const dir = join(stateDir, CREDENTIALS_SUBDIR);
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await mkdir(dir, { mode: 0o700 }).catch((err: unknown) => {
        if (errnoCode(err) !== "EEXIST") throw err;
      });
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${dir}: cannot create it (${errnoCode(cause) ?? "error"})`, dir, { cause });
    }
    let st;
    try {
      st = await stat(dir);
      await access(dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${dir}: not accessible (${errnoCode(cause) ?? "error"})`, dir, { cause });
    }
    if (!st.isDirectory()) throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${dir}: not a directory`, dir);
    if ((st.mode & 0o077) !== 0) {
      throw new CredentialStoreError("CREDENTIAL_STORE_PERMISSIONS", `credential store ${dir}: group or others have access (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 on it`, dir);
    }
    const store = new FileCredentialStore(dir, { uid: st.uid, gid: st.gid });
    const accounts = await store.#check(now);
    return { store, accounts };
  }

  /**
   * For `minimix-proxy check`: like open(), but creates nothing; `missing` when the store does not
   * exist yet (the proxy creates it at its first start).
   */
  static async inspect(stateDir: string): Promise<{ dir: string; accounts: number } | { dir: string; missing: true }> {
    const dir = join(stateDir, CREDENTIALS_SUBDIR);
    try {
      await stat(dir);
    } catch (cause) {
      if (errnoCode(cause) === "ENOENT") return { dir, missing: true };
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${dir}: not accessible (${errnoCode(cause) ?? "error"})`, dir, { cause });
    }
    const { accounts } = await FileCredentialStore.open(stateDir);
    return { dir, accounts };
  }

  /** Every record decodes and sits under its own name; stale temporary files are removed. */
  async #check(now: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${this.dir}: cannot list it (${errnoCode(cause) ?? "error"})`, this.dir, { cause });
    }
    let accounts = 0;
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        const st = await lstat(path).catch(() => undefined);
        if (st !== undefined && now - st.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue; // not ours: left alone
      const st = await lstat(path).catch((cause: unknown) => {
        throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential record ${path}: cannot read it (${errnoCode(cause) ?? "error"})`, path, { cause });
      });
      if (!st.isFile()) throw new CredentialStoreError("CREDENTIAL_STORE_CORRUPT", `credential record ${path}: not a regular file`, path);
      if ((st.mode & 0o077) !== 0) {
        throw new CredentialStoreError("CREDENTIAL_STORE_PERMISSIONS", `credential record ${path}: group or others have access (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`, path);
      }
      const c = await this.#read(path);
      if (c === undefined) continue; // removed meanwhile
      if (fileNameFor(c.account) !== name) throw new CredentialStoreError("CREDENTIAL_STORE_CORRUPT", `credential record ${path}: its account does not match its file name`, path);
      accounts++;
    }
    return accounts;
  }

  /** The file's text: from the cache while its stat signature is unchanged, else read (and kept). */
  async #text(path: string): Promise<string> {
    const st = await stat(path);
    const sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const hit = this.#texts.get(path);
    if (hit !== undefined && hit.sig === sig) {
      this.#texts.delete(path); // most recently read last
      this.#texts.set(path, hit);
      return hit.text;
    }
    const text = await readFile(path, "utf8");
    this.#texts.delete(path);
    this.#texts.set(path, { sig, text });
    if (this.#texts.size > TEXT_CACHE_SIZE) this.#texts.delete(this.#texts.keys().next().value!);
    return text;
  }

  async #read(path: string, expectAccount?: string): Promise<AccountCredentials | undefined> {
    let text: string;
    try {
      text = await this.#text(path);
    } catch (cause) {
      this.#texts.delete(path);
      if (errnoCode(cause) === "ENOENT") return undefined;
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential record ${path}: cannot read it (${errnoCode(cause) ?? "error"})`, path, { cause });
    }
    try {
      return decodeAccountCredentials(text, expectAccount);
    } catch (cause) {
      const why = cause instanceof CredentialError ? cause.message : "cannot decode it";
      throw new CredentialStoreError("CREDENTIAL_STORE_CORRUPT", `credential record ${path}: ${why}`, path, { cause });
    }
  }

  async get(account: string): Promise<AccountCredentials | undefined> {
    const key = normalizeAccount(account);
    if (key === null) return undefined;
    return this.#read(join(this.dir, fileNameFor(key)), key);
  }

  async put(credentials: AccountCredentials): Promise<void> {
    const text = encodeForStore(credentials);
    const path = join(this.dir, fileNameFor(credentials.account));
    const tmp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
    try {
      const fh = await open(tmp, "wx", 0o600);
      try {
        // root running `import-credentials` for a proxy that runs as its own user
        if (process.getuid?.() === 0 && this.#owner.uid !== 0) await fh.chown(this.#owner.uid, this.#owner.gid);
        await fh.writeFile(text, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      this.#texts.delete(path);
      await this.#syncDir();
    } catch (cause) {
      await unlink(tmp).catch(() => undefined);
      throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", `credential record ${path}: cannot write it (${errnoCode(cause) ?? "error"})`, path, { cause });
    }
  }

  async delete(account: string): Promise<boolean> {
    const key = normalizeAccount(account);
    if (key === null) return false;
    const path = join(this.dir, fileNameFor(key));
    this.#texts.delete(path);
    try {
      await unlink(path);
    } catch (cause) {
      if (errnoCode(cause) === "ENOENT") return false;
      throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", `credential record ${path}: cannot delete it (${errnoCode(cause) ?? "error"})`, path, { cause });
    }
    await this.#syncDir().catch(() => undefined);
    return true;
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential store ${this.dir}: cannot list it (${errnoCode(cause) ?? "error"})`, this.dir, { cause });
    }
    const out: string[] = [];
    for (const name of names) {
      if (!name.endsWith(SUFFIX) || name.startsWith(TEMP_PREFIX)) continue;
      const c = await this.#read(join(this.dir, name));
      if (c !== undefined) out.push(c.account);
    }
    return out;
  }

  /** fsync the directory so a rename or unlink survives a crash (POSIX leaves it to the directory entry). */
  async #syncDir(): Promise<void> {
    const fh = await open(this.dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
