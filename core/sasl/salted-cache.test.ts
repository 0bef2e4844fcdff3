import { pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SaltedPasswordCache } from "./salted-cache.js";
import { ScramClient } from "./scram.js";

// RFC 5802 §5 (SCRAM-SHA-1), user "user", password "pencil".
const RFC = {
  nonce: "fyko+d2lbbFgONRv9qkxdawL",
  serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};
const SALT = Buffer.from("QSXCR+Q6sek8bf92", "base64");
const SALTED = pbkdf2Sync("pencil", SALT, 4096, 20, "sha1");

function exchange(cache: SaltedPasswordCache, password: string, async = false): Promise<string> | string {
  const c = new ScramClient("SHA-1", "user", { password }, { nonce: RFC.nonce, saltedPasswords: cache });
  c.clientFirst();
  if (async) return c.clientFinalAsync(RFC.serverFirst);
  return c.clientFinal(RFC.serverFirst);
}

describe("SaltedPasswordCache", () => {
  it("remembers a SaltedPassword only after the server's signature verified, and gives the same proof from it", async () => {
    const cache = new SaltedPasswordCache();
    const c = new ScramClient("SHA-1", "user", { password: "pencil" }, { nonce: RFC.nonce, saltedPasswords: cache });
    c.clientFirst();
    expect(await c.clientFinalAsync(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(cache.size).toBe(0);
    c.verifyServerFinal(RFC.serverFinal);
    expect(cache.size).toBe(1);
    expect(cache.get("SHA-1", "pencil", SALT, 4096)?.equals(SALTED)).toBe(true);
    // from the cache: the same client-final, sync and async
    expect(exchange(cache, "pencil")).toBe(RFC.clientFinal);
    expect(await exchange(cache, "pencil", true)).toBe(RFC.clientFinal);
  });

  it("a wrong password, another salt, count or hash never hits", () => {
    const cache = new SaltedPasswordCache();
    cache.remember("SHA-1", "pencil", SALT, 4096, SALTED);
    expect(cache.get("SHA-1", "pencil!", SALT, 4096)).toBeUndefined();
    expect(cache.get("SHA-1", "pencil", Buffer.from("other"), 4096)).toBeUndefined();
    expect(cache.get("SHA-1", "pencil", SALT, 4097)).toBeUndefined();
    expect(cache.get("SHA-256", "pencil", SALT, 4096)).toBeUndefined();
    // a wrong password computes its own (wrong) proof
    expect(exchange(cache, "pencil!")).not.toBe(RFC.clientFinal);
  });

  it("forgets what a server signature did not verify", () => {
    const cache = new SaltedPasswordCache();
    const c = new ScramClient("SHA-1", "user", { password: "pencil" }, { nonce: RFC.nonce, saltedPasswords: cache });
    c.clientFirst();
    c.clientFinal(RFC.serverFirst);
    expect(() => c.verifyServerFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")).toThrow();
    expect(cache.size).toBe(0);
  });

  it("is bounded: the least recently used entry goes first; hands out copies", () => {
    const cache = new SaltedPasswordCache(2);
    cache.remember("SHA-1", "a", SALT, 4096, Buffer.alloc(20, 1));
    cache.remember("SHA-1", "b", SALT, 4096, Buffer.alloc(20, 2));
    const a = cache.get("SHA-1", "a", SALT, 4096); // a is now the most recent
    a?.fill(9);
    cache.remember("SHA-1", "c", SALT, 4096, Buffer.alloc(20, 3));
    expect(cache.size).toBe(2);
    expect(cache.get("SHA-1", "b", SALT, 4096)).toBeUndefined();
    expect(cache.get("SHA-1", "a", SALT, 4096)?.equals(Buffer.alloc(20, 1))).toBe(true);
    expect(new SaltedPasswordCache(0).size).toBe(0);
    const off = new SaltedPasswordCache(0);
    off.remember("SHA-1", "a", SALT, 4096, SALTED);
    expect(off.size).toBe(0);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it("its keys hold no password: the same inputs give other keys in another instance", () => {
    const one = new SaltedPasswordCache();
    const two = new SaltedPasswordCache();
    one.remember("SHA-1", "pencil", SALT, 4096, SALTED);
    expect(two.get("SHA-1", "pencil", SALT, 4096)).toBeUndefined();
  });
});
