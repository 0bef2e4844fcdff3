import { chmod, copyFile, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AccountCredentials } from "../../core/credentials/record.js";
import { FileCredentialStore, fileNameFor } from "./file-store.js";
import { CredentialStoreError } from "./store.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "minimix-credstore-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function creds(account: string, fill = 1): AccountCredentials {
  return {
    account,
    source: "import-prosody",
    updatedAt: "2026-12-01T10:00:00.000Z",
    scram: {
      "SHA-1": { origin: "server", salt: Buffer.from("89ace65f-03d5-4fdc-aa18-04c15ecf31fd"), iterations: 4096, storedKey: Buffer.alloc(20, fill), serverKey: Buffer.alloc(20, fill + 1) },
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<CredentialStoreError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CredentialStoreError);
    return e as CredentialStoreError;
  }
  throw new Error("expected a CredentialStoreError");
}

describe("fileNameFor", () => {
  it("keeps plain JIDs readable and encodes the rest", () => {
    expect(fileNameFor("alice@localhost")).toBe("alice@localhost.json");
    expect(fileNameFor("j\u00fcrgen@example.org")).toBe("j%C3%BCrgen@example.org.json");
    expect(fileNameFor(".hidden@example.org")).toBe("%2Ehidden@example.org.json");
    expect(fileNameFor("a+b@example.org")).toBe("a%2Bb@example.org.json");
    expect(fileNameFor(`${"x".repeat(300)}@example.org`)).toMatch(/^h-[0-9a-f]{64}\.json$/);
  });
});

describe("FileCredentialStore", () => {
  it("creates STATE_DIR/credentials with mode 0700 and starts empty", async () => {
    const stateDir = join(root, "state", "nested");
    const { store, accounts } = await FileCredentialStore.open(stateDir);
    expect(accounts).toBe(0);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect(store.description).toBe(`file:${join(stateDir, "credentials")}`);
    expect(await store.list()).toEqual([]);
  });

  it("puts, gets, replaces, lists and deletes; files are 0600; records survive a reopen", async () => {
    const { store } = await FileCredentialStore.open(root);
    expect(await store.get("alice@localhost")).toBeUndefined();
    await store.put(creds("alice@localhost"));
    await store.put(creds("bob@localhost"));
    expect(await store.get("alice@localhost")).toEqual(creds("alice@localhost"));
    expect(await store.get("Alice@LOCALHOST")).toEqual(creds("alice@localhost")); // normalised
    expect((await stat(join(store.dir, "alice@localhost.json"))).mode & 0o777).toBe(0o600);
    await store.put(creds("alice@localhost", 7));
    expect((await store.get("alice@localhost"))?.scram["SHA-1"]?.storedKey).toEqual(Buffer.alloc(20, 7));
    expect((await store.list()).sort()).toEqual(["alice@localhost", "bob@localhost"]);
    expect(await readdir(store.dir)).not.toContainEqual(expect.stringMatching(/^\.tmp-/)); // no temporary file left

    const again = await FileCredentialStore.open(root);
    expect(again.accounts).toBe(2);
    expect(await again.store.get("alice@localhost")).toEqual(creds("alice@localhost", 7));

    expect(await store.delete("bob@localhost")).toBe(true);
    expect(await store.delete("bob@localhost")).toBe(false);
    expect(await store.get("bob@localhost")).toBeUndefined();
    expect(await store.get("not a jid")).toBeUndefined();
    expect(await store.delete("not a jid")).toBe(false);
  });

  it("stores a very long account under a hashed name", async () => {
    const { store } = await FileCredentialStore.open(root);
    const long = `${"x".repeat(300)}@example.org`;
    await store.put(creds(long));
    expect(await store.get(long)).toEqual(creds(long));
    expect((await FileCredentialStore.open(root)).accounts).toBe(1);
  });

  it("a damaged record is a start-up error (CREDENTIAL_STORE_CORRUPT) naming the file, not its content", async () => {
    const { store } = await FileCredentialStore.open(root);
    await writeFile(join(store.dir, "alice@localhost.json"), "{ \"version\": 1, \"secret\": \"hunter2\"", { mode: 0o600 });
    const e = await rejection(FileCredentialStore.open(root));
    expect(e.code).toBe("CREDENTIAL_STORE_CORRUPT");
    expect(e.path).toBe(join(store.dir, "alice@localhost.json"));
    expect(e.message).toContain("alice@localhost.json");
    expect(e.message).not.toContain("hunter2");
  });

  it("a record under another account's name is corrupt, at start-up and at run time", async () => {
    const { store } = await FileCredentialStore.open(root);
    await store.put(creds("alice@localhost"));
    await copyFile(join(store.dir, "alice@localhost.json"), join(store.dir, "bob@localhost.json"));
    await chmod(join(store.dir, "bob@localhost.json"), 0o600);
    expect((await rejection(FileCredentialStore.open(root))).code).toBe("CREDENTIAL_STORE_CORRUPT");
    expect((await rejection(store.get("bob@localhost"))).code).toBe("CREDENTIAL_STORE_CORRUPT");
  });

  it("sees what another process writes at the next read (the texts it keeps are checked against the file's stat)", async () => {
    const { store } = await FileCredentialStore.open(root);
    const { store: importer } = await FileCredentialStore.open(root); // as `import-credentials` would, from outside
    await store.put(creds("alice@localhost", 1));
    const first = await store.get("alice@localhost");
    expect(first?.scram["SHA-1"]?.storedKey).toEqual(Buffer.alloc(20, 1));
    const again = await store.get("alice@localhost");
    expect(again).toEqual(first);
    expect(again).not.toBe(first); // decoded afresh: a caller cannot change what the next login gets
    await importer.put(creds("alice@localhost", 7)); // rename over: another inode
    expect((await store.get("alice@localhost"))?.scram["SHA-1"]?.storedKey).toEqual(Buffer.alloc(20, 7));
    // rewritten in place, same size: mtime/ctime tell
    const path = join(store.dir, "alice@localhost.json");
    const text = (await readFile(path, "utf8")).replace(Buffer.alloc(20, 7).toString("base64"), Buffer.alloc(20, 9).toString("base64"));
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(path, text);
    expect((await store.get("alice@localhost"))?.scram["SHA-1"]?.storedKey).toEqual(Buffer.alloc(20, 9));
    await importer.delete("alice@localhost");
    expect(await store.get("alice@localhost")).toBeUndefined();
  });

  it("a record damaged while running makes get() reject, not throw", async () => {
    const { store } = await FileCredentialStore.open(root);
    await store.put(creds("alice@localhost"));
    await writeFile(join(store.dir, "alice@localhost.json"), "garbage");
    const p = store.get("alice@localhost");
    expect(p).toBeInstanceOf(Promise);
    expect((await rejection(p)).code).toBe("CREDENTIAL_STORE_CORRUPT");
    expect((await rejection(store.list())).code).toBe("CREDENTIAL_STORE_CORRUPT");
  });

  it("refuses a directory or record others can read (CREDENTIAL_STORE_PERMISSIONS)", async () => {
    const { store } = await FileCredentialStore.open(root);
    await store.put(creds("alice@localhost"));
    await chmod(join(store.dir, "alice@localhost.json"), 0o640);
    expect((await rejection(FileCredentialStore.open(root))).code).toBe("CREDENTIAL_STORE_PERMISSIONS");
    await chmod(join(store.dir, "alice@localhost.json"), 0o600);
    await chmod(store.dir, 0o755);
    const e = await rejection(FileCredentialStore.open(root));
    expect(e.code).toBe("CREDENTIAL_STORE_PERMISSIONS");
    expect(e.message).toContain("chmod 700");
  });

  it("refuses what it cannot use as its directory (CREDENTIAL_STORE_UNREADABLE)", async () => {
    await writeFile(join(root, "credentials"), "a file where the directory should be");
    expect((await rejection(FileCredentialStore.open(root))).code).toBe("CREDENTIAL_STORE_UNREADABLE");
    await writeFile(join(root, "plainfile"), "x");
    expect((await rejection(FileCredentialStore.open(join(root, "plainfile", "state")))).code).toBe("CREDENTIAL_STORE_UNREADABLE");
  });

  it("refuses a record that is a symbolic link", async () => {
    const { store } = await FileCredentialStore.open(root);
    await writeFile(join(root, "elsewhere.json"), "{}");
    await symlink(join(root, "elsewhere.json"), join(store.dir, "alice@localhost.json"));
    expect((await rejection(FileCredentialStore.open(root))).code).toBe("CREDENTIAL_STORE_CORRUPT");
  });

  it("removes temporary files a crash left behind, keeps young ones (another writer's) and ignores other files", async () => {
    const { store } = await FileCredentialStore.open(root);
    await store.put(creds("alice@localhost"));
    const stale = join(store.dir, ".tmp-1-aaaa");
    const young = join(store.dir, ".tmp-2-bbbb");
    await writeFile(stale, "{ half a rec");
    await writeFile(young, "{ half a rec");
    const old = new Date(Date.now() - 3600_000);
    await utimes(stale, old, old);
    await writeFile(join(store.dir, "README"), "notes");
    const { accounts } = await FileCredentialStore.open(root);
    expect(accounts).toBe(1);
    const names = await readdir(store.dir);
    expect(names).not.toContain(".tmp-1-aaaa");
    expect(names).toContain(".tmp-2-bbbb");
    expect(names).toContain("README");
    expect(await store.get("alice@localhost")).toEqual(creds("alice@localhost")); // the old record is whole
  });

  it("put: invalid records and a vanished directory are CREDENTIAL_STORE_WRITE", async () => {
    const { store } = await FileCredentialStore.open(root);
    const broken = creds("alice@localhost");
    broken.scram["SHA-1"]!.storedKey = Buffer.alloc(3);
    expect((await rejection(store.put(broken))).code).toBe("CREDENTIAL_STORE_WRITE");
    await rm(store.dir, { recursive: true });
    expect((await rejection(store.put(creds("alice@localhost")))).code).toBe("CREDENTIAL_STORE_WRITE");
    await mkdir(store.dir, { mode: 0o700 });
  });

  it.skipIf(process.getuid?.() !== 0)("as root, gives records to the directory's owner (an import run for a proxy with its own user)", async () => {
    const { store } = await FileCredentialStore.open(root);
    const { chown } = await import("node:fs/promises");
    await chown(store.dir, 65534, 65534);
    const reopened = (await FileCredentialStore.open(root)).store;
    await reopened.put(creds("alice@localhost"));
    const st = await stat(join(store.dir, "alice@localhost.json"));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o600]);
  });

  it("writes what core/credentials encodes, nothing else", async () => {
    const { store } = await FileCredentialStore.open(root);
    await store.put(creds("alice@localhost"));
    const doc = JSON.parse(await readFile(join(store.dir, "alice@localhost.json"), "utf8")) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(["account", "scram", "source", "updatedAt", "version"]);
  });
});
