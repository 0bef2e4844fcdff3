/**
 * Per account, per room: the time of the last stanza the account saw from a room it holds for an
 * autojoin bookmark (docs/architecture.md §4.6). After a proxy restart the account rejoins with
 * `<history since>` it, so nothing posted meanwhile is lost when the room's history holds it.
 *
 * `RoomMarkStore` is what the account layer needs; `FileRoomMarkStore` keeps one JSON file per
 * account in STATE_DIR/room-marks (directory 0700, files 0600), written like the credential store
 * (proxy/credentials/file-store.ts): a temporary file in the same directory, fsync'ed, renamed over
 * the account's file, the directory fsync'ed — a crash leaves the old or the new marks, never a torn
 * file. A store shared by several nodes (Redis) can implement the same interface later.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

export const ROOM_MARKS_SUBDIR = "room-marks";
const TEMP_PREFIX = ".tmp-";

/** room (lower-case bare JID) → ms since the epoch. */
export type RoomMarks = ReadonlyMap<string, number>;

export interface RoomMarkStore {
  /** The account's marks; none when it has no file. Rejects with RoomMarkError (unreadable, damaged). */
  load(account: string): Promise<Map<string, number>>;
  /** Replaces the account's marks (none: its file goes). Rejects with RoomMarkError. */
  save(account: string, marks: RoomMarks): Promise<void>;
}

export class RoomMarkError extends Error {
  override readonly name = "RoomMarkError";
  constructor(
    readonly code: "ROOM_MARKS_UNREADABLE" | "ROOM_MARKS_CORRUPT" | "ROOM_MARKS_WRITE",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** The file of an account: a hash, so no JID (personal data) shows in a directory listing. */
export function markFileFor(account: string): string {
  return `${createHash("sha256").update(account, "utf8").digest("hex").slice(0, 40)}.json`;
}

interface MarkFile {
  version: 1;
  account: string;
  rooms: Record<string, number>;
}

/** Strict reading of a marks file: the right account, and a finite non-negative time per room. */
export function decodeMarks(text: string, account: string): Map<string, number> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  if (typeof v !== "object" || v === null) throw new Error("not an object");
  const f = v as Partial<MarkFile>;
  if (f.version !== 1) throw new Error("unknown version");
  if (f.account !== account) throw new Error("written for another account");
  if (typeof f.rooms !== "object" || f.rooms === null || Array.isArray(f.rooms)) throw new Error("no rooms");
  const out = new Map<string, number>();
  for (const [room, t] of Object.entries(f.rooms)) {
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) throw new Error(`bad time for ${room}`);
    out.set(room, t);
  }
  return out;
}

export class FileRoomMarkStore implements RoomMarkStore {
  readonly dir: string;
  private ready: Promise<void> | undefined;

  constructor(stateDir: string) {
    this.dir = join(stateDir, ROOM_MARKS_SUBDIR);
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (cause: unknown) => {
        this.ready = undefined;
        throw new RoomMarkError("ROOM_MARKS_WRITE", `room marks ${this.dir}: cannot create it (${errnoCode(cause) ?? "error"})`, { cause });
      },
    );
    return this.ready;
  }

  async load(account: string): Promise<Map<string, number>> {
    const path = join(this.dir, markFileFor(account));
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (cause) {
      if (errnoCode(cause) === "ENOENT") return new Map();
      throw new RoomMarkError("ROOM_MARKS_UNREADABLE", `room marks ${path}: cannot read it (${errnoCode(cause) ?? "error"})`, { cause });
    }
    try {
      return decodeMarks(text, account);
    } catch (cause) {
      throw new RoomMarkError("ROOM_MARKS_CORRUPT", `room marks ${path}: ${(cause as Error).message}`, { cause });
    }
  }

  async save(account: string, marks: RoomMarks): Promise<void> {
    const path = join(this.dir, markFileFor(account));
    if (marks.size === 0) {
      await unlink(path).catch((cause: unknown) => {
        if (errnoCode(cause) !== "ENOENT") throw new RoomMarkError("ROOM_MARKS_WRITE", `room marks ${path}: cannot delete it (${errnoCode(cause) ?? "error"})`, { cause });
      });
      return;
    }
    await this.ensureDir();
    const body: MarkFile = { version: 1, account, rooms: Object.fromEntries([...marks].sort(([a], [b]) => (a < b ? -1 : 1))) };
    const tmp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
    try {
      const fh = await open(tmp, "wx", 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(body)}\n`, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      const d = await open(this.dir, "r");
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (cause) {
      await unlink(tmp).catch(() => undefined);
      throw new RoomMarkError("ROOM_MARKS_WRITE", `room marks ${path}: cannot write it (${errnoCode(cause) ?? "error"})`, { cause });
    }
  }
}
