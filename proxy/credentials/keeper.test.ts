import { describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import type { AccountCredentials } from "../../core/credentials/record.js";
import { CredentialError } from "../../core/credentials/errors.js";
import { keysFromSaltedPassword, scramHi } from "../../core/sasl/scram-primitives.js";
import { createLogger } from "../log.js";
import { CredentialKeeper, StoreUnavailable, upstreamSecretFor } from "./keeper.js";
import { CredentialStoreError, type CredentialStore } from "./store.js";

/** An in-memory store (a fake for this unit test): counts writes, fails on demand. */
class MemoryStore implements CredentialStore {
  readonly records = new Map<string, AccountCredentials>();
  puts = 0;
  failGet = false;
  failPut = false;
  readonly description = "memory";
  async get(account: string): Promise<AccountCredentials | undefined> {
    if (this.failGet) throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", "cannot read");
    return this.records.get(account);
  }
  async put(c: AccountCredentials): Promise<void> {
    if (this.failPut) throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", "cannot write");
    this.puts++;
    this.records.set(c.account, c);
  }
  async delete(account: string): Promise<boolean> {
    return this.records.delete(account);
  }
  async list(): Promise<string[]> {
    return [...this.records.keys()];
  }
}

function setup(): { store: MemoryStore; keeper: CredentialKeeper; logs: () => string } {
  let out = "";
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => ((out += chunk.toString()), cb()) });
  const store = new MemoryStore();
  const keeper = new CredentialKeeper(store, { log: createLogger("trace", sink), iterations: 4096 });
  return { store, keeper, logs: () => out };
}

const salt = Buffer.from("server-salt-1234");
const upstream = (password: string, s = salt) => ({ hash: "SHA-1" as const, salt: s, iterations: 4096, saltedPassword: scramHi("SHA-1", password, s, 4096) });

describe("CredentialKeeper", () => {
  it("a password login makes records: the server's hash mirrors its salt, the others are the proxy's with the secret sealed", async () => {
    const { store, keeper, logs } = setup();
    await keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-512", "SHA-256", "SHA-1"]);
    const c = store.records.get("alice@example.org")!;
    expect(c.source).toBe("login");
    expect(c.scram["SHA-1"]).toMatchObject({ origin: "server", salt, iterations: 4096 });
    expect(c.scram["SHA-256"]).toMatchObject({ origin: "proxy", iterations: 4096 });
    expect(c.scram["SHA-256"]!.upstream).toBeDefined();
    expect(logs()).toContain("SCRAM records created after a password login");
    expect(logs()).not.toContain("pencil");
  });

  it("the same password again writes nothing; a changed server salt (password change) replaces the records", async () => {
    const { store, keeper, logs } = setup();
    await keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-256", "SHA-1"]);
    await keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-256", "SHA-1"]);
    expect(store.puts).toBe(1);
    // a hash wanted now that the records lack: made
    await keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-512", "SHA-256", "SHA-1"]);
    expect(store.puts).toBe(2);
    const newSalt = Buffer.from("server-salt-5678");
    await keeper.afterPasswordLogin("alice@example.org", "eraser", upstream("eraser", newSalt), ["SHA-256", "SHA-1"]);
    expect(store.puts).toBe(3);
    expect(store.records.get("alice@example.org")!.scram["SHA-1"]!.salt).toEqual(newSalt);
    expect(logs()).toContain("SCRAM records replaced after a password login");
  });

  it("two logins at once derive once", async () => {
    const { store, keeper } = setup();
    await Promise.all([1, 2, 3].map(() => keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-256", "SHA-1"])));
    expect(store.puts).toBe(1);
  });

  it("no records when the server was logged in with PLAIN (nothing could log a SCRAM client in upstream)", async () => {
    const { store, keeper } = setup();
    await keeper.afterPasswordLogin("alice@example.org", "pencil", undefined, ["SHA-1"]);
    expect(store.records.size).toBe(0);
  });

  it("store failures are logged with their code and never thrown; a lookup failure is StoreUnavailable", async () => {
    const { store, keeper, logs } = setup();
    store.failPut = true;
    await expect(keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-1"])).resolves.toBeUndefined();
    expect(logs()).toContain("CREDENTIAL_STORE_WRITE");
    store.failGet = true;
    await expect(keeper.lookup("alice@example.org")).rejects.toBeInstanceOf(StoreUnavailable);
    expect(logs()).toContain("CREDENTIAL_STORE_UNREADABLE");
    // a password SASLprep refuses: logged, no record
    store.failGet = false;
    store.failPut = false;
    await keeper.afterPasswordLogin("bob@example.org", "a\u0007b", upstream("a\u0007b"), ["SHA-256"]);
    expect(store.records.has("bob@example.org")).toBe(false);
  });

  it("forget drops the account's records", async () => {
    const { store, keeper, logs } = setup();
    await keeper.afterPasswordLogin("alice@example.org", "pencil", upstream("pencil"), ["SHA-1"]);
    await keeper.forget("alice@example.org", "test");
    expect(store.records.size).toBe(0);
    expect(logs()).toContain("SCRAM records dropped");
  });
});

describe("upstreamSecretFor", () => {
  it("a server record gives ClientKey + ServerKey; a proxy record opens its sealed SaltedPassword; a wrong ClientKey does not open it", async () => {
    const { store, keeper } = setup();
    const up = upstream("pencil");
    await keeper.afterPasswordLogin("alice@example.org", "pencil", up, ["SHA-256", "SHA-1"]);
    const c = store.records.get("alice@example.org")!;

    const sha1 = c.scram["SHA-1"]!;
    const k1 = keysFromSaltedPassword("SHA-1", up.saltedPassword);
    expect(upstreamSecretFor("alice@example.org", "SHA-1", sha1, k1.clientKey)).toEqual({ hash: "SHA-1", salt, iterations: 4096, clientKey: k1.clientKey, serverKey: sha1.serverKey });

    const sha256 = c.scram["SHA-256"]!;
    const k256 = keysFromSaltedPassword("SHA-256", scramHi("SHA-256", "pencil", sha256.salt, sha256.iterations));
    expect(upstreamSecretFor("alice@example.org", "SHA-256", sha256, k256.clientKey)).toEqual({ hash: "SHA-1", salt, iterations: 4096, saltedPassword: up.saltedPassword });
    const wrong = keysFromSaltedPassword("SHA-256", scramHi("SHA-256", "pencils", sha256.salt, sha256.iterations));
    expect(() => upstreamSecretFor("alice@example.org", "SHA-256", sha256, wrong.clientKey)).toThrow(CredentialError);
    // the record of another account does not open either (the account is in the sealing context)
    expect(() => upstreamSecretFor("mallory@example.org", "SHA-256", sha256, k256.clientKey)).toThrow(CredentialError);
    // a proxy record without a sealed secret: nothing logs in upstream
    expect(upstreamSecretFor("alice@example.org", "SHA-256", { ...sha256, upstream: undefined }, k256.clientKey)).toBeUndefined();
  });
});
