import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileRoomMarkStore, ROOM_MARKS_SUBDIR, RoomMarkError, decodeMarks, markFileFor } from "./room-marks.js";

const A = "alice@example.org";
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "room-marks-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("FileRoomMarkStore", () => {
  it("round-trips an account's marks in a 0600 file in a 0700 directory, named by hash", async () => {
    const s = new FileRoomMarkStore(dir);
    expect(await s.load(A)).toEqual(new Map());
    await s.save(A, new Map([["b@conf", 2000], ["a@conf", 1000]]));
    expect(await s.load(A)).toEqual(new Map([["a@conf", 1000], ["b@conf", 2000]]));
    expect(await new FileRoomMarkStore(dir).load(A)).toEqual(new Map([["a@conf", 1000], ["b@conf", 2000]]));
    const d = join(dir, ROOM_MARKS_SUBDIR);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(readdirSync(d)).toEqual([markFileFor(A)]);
    expect(statSync(join(d, markFileFor(A))).mode & 0o777).toBe(0o600);
    expect(markFileFor(A)).not.toContain("alice");
    await s.save(A, new Map([["a@conf", 3000]]));
    expect(await s.load(A)).toEqual(new Map([["a@conf", 3000]]));
  });

  it("no marks: the file goes (twice is fine)", async () => {
    const s = new FileRoomMarkStore(dir);
    await s.save(A, new Map([["a@conf", 1]]));
    await s.save(A, new Map());
    await s.save(A, new Map());
    expect(readdirSync(join(dir, ROOM_MARKS_SUBDIR))).toEqual([]);
  });

  it("a damaged file or one of another account is ROOM_MARKS_CORRUPT", async () => {
    const s = new FileRoomMarkStore(dir);
    mkdirSync(join(dir, ROOM_MARKS_SUBDIR), { mode: 0o700 });
    writeFileSync(join(dir, ROOM_MARKS_SUBDIR, markFileFor(A)), "{ torn");
    await expect(s.load(A)).rejects.toMatchObject({ code: "ROOM_MARKS_CORRUPT" });
    writeFileSync(join(dir, ROOM_MARKS_SUBDIR, markFileFor(A)), JSON.stringify({ version: 1, account: "bob@example.org", rooms: {} }));
    await expect(s.load(A)).rejects.toBeInstanceOf(RoomMarkError);
  });

  it("an unreadable or unwritable directory is reported with a code", async () => {
    if (process.getuid?.() === 0) {
      // root reads and writes through modes: make the path a file instead
      writeFileSync(join(dir, "f"), "");
      const s = new FileRoomMarkStore(join(dir, "f"));
      await expect(s.save(A, new Map([["a@conf", 1]]))).rejects.toMatchObject({ code: "ROOM_MARKS_WRITE" });
      await expect(s.load(A)).rejects.toMatchObject({ code: "ROOM_MARKS_UNREADABLE" });
      return;
    }
    chmodSync(dir, 0o500);
    const s = new FileRoomMarkStore(dir);
    await expect(s.save(A, new Map([["a@conf", 1]]))).rejects.toMatchObject({ code: "ROOM_MARKS_WRITE" });
    chmodSync(dir, 0o700);
  });

  it("an unwritable account file is ROOM_MARKS_WRITE, and no temporary file is left", async () => {
    const s = new FileRoomMarkStore(dir);
    mkdirSync(join(dir, ROOM_MARKS_SUBDIR, markFileFor(A)), { recursive: true }); // a directory where the file goes
    writeFileSync(join(dir, ROOM_MARKS_SUBDIR, markFileFor(A), "x"), "");
    await expect(s.save(A, new Map([["a@conf", 1]]))).rejects.toMatchObject({ code: "ROOM_MARKS_WRITE" });
    await expect(s.save(A, new Map())).rejects.toMatchObject({ code: "ROOM_MARKS_WRITE" });
    expect(readdirSync(join(dir, ROOM_MARKS_SUBDIR))).toEqual([markFileFor(A)]);
    expect(readFileSync(join(dir, ROOM_MARKS_SUBDIR, markFileFor(A), "x"), "utf8")).toBe("");
  });
});

describe("decodeMarks", () => {
  it("is strict", () => {
    const ok = (rooms: unknown) => JSON.stringify({ version: 1, account: A, rooms });
    expect(decodeMarks(ok({ "a@c": 5 }), A)).toEqual(new Map([["a@c", 5]]));
    for (const [text, why] of [
      ["[", "not JSON"],
      ["null", "not an object"],
      [JSON.stringify({ version: 2, account: A, rooms: {} }), "unknown version"],
      [ok([]), "no rooms"],
      [ok({ "a@c": -1 }), "bad time for a@c"],
      [ok({ "a@c": "1" }), "bad time for a@c"],
    ] as const) expect(() => decodeMarks(text, A)).toThrow(why);
  });
});
