/** The Redis credential and room-mark stores against a real redis-server (test/support/redis.ts). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import type { AccountCredentials } from "../../core/credentials/record.js";
import { startRedis, type RedisServer } from "../../test/support/redis.js";
import { CredentialStoreError } from "../credentials/store.js";
import { RoomMarkError } from "../state/room-marks.js";
import { connectRedis } from "./redis.js";
import { RedisCredentialStore, RedisRoomMarkStore } from "./redis-stores.js";

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = await connectRedis(server.url, 3000);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

function creds(account: string, fill = 1): AccountCredentials {
  return {
    account,
    source: "login",
    updatedAt: "2026-12-01T10:00:00.000Z",
    scram: {
      "SHA-1": { origin: "server", salt: Buffer.from("89ace65f-03d5-4fdc-aa18-04c15ecf31fd"), iterations: 4096, storedKey: Buffer.alloc(20, fill), serverKey: Buffer.alloc(20, fill + 1) },
    },
  };
}

async function rejection<E>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error("did not reject");
}

describe("RedisCredentialStore", () => {
  it("get / put / delete / list, accounts normalised, last writer wins", async () => {
    const s = new RedisCredentialStore(redis, "redis:test");
    expect(await s.get("alice@example.org")).toBeUndefined();
    await s.put(creds("alice@example.org"));
    await s.put(creds("alice@example.org", 7));
    await s.put(creds("bob@example.org"));
    const got = await s.get("Alice@Example.org");
    expect(got?.scram["SHA-1"]?.storedKey).toEqual(Buffer.alloc(20, 7));
    expect((await s.list()).sort()).toEqual(["alice@example.org", "bob@example.org"]);
    expect(await s.delete("bob@example.org")).toBe(true);
    expect(await s.delete("bob@example.org")).toBe(false);
    expect(await s.get("not a jid")).toBeUndefined();
  });

  it("a damaged record is CREDENTIAL_STORE_CORRUPT, naming no content; an invalid record is not written", async () => {
    const s = new RedisCredentialStore(redis, "redis:test");
    await redis.hset("minimix:credentials", "carol@example.org", "{\"not\":\"ours\"}");
    const e = await rejection<CredentialStoreError>(s.get("carol@example.org"));
    expect(e.code).toBe("CREDENTIAL_STORE_CORRUPT");
    const bad = { ...creds("dave@example.org"), account: "not a jid" };
    expect((await rejection<CredentialStoreError>(s.put(bad))).code).toBe("CREDENTIAL_STORE_WRITE");
  });

  it("Redis down: every method rejects with a CredentialStoreError (a login then gets temporary-auth-failure)", async () => {
    const s = new RedisCredentialStore(redis, "redis:test");
    await server.halt();
    try {
      expect((await rejection<CredentialStoreError>(s.get("alice@example.org"))).code).toBe("CREDENTIAL_STORE_UNREADABLE");
      expect((await rejection<CredentialStoreError>(s.put(creds("alice@example.org")))).code).toBe("CREDENTIAL_STORE_WRITE");
      expect((await rejection<CredentialStoreError>(s.delete("alice@example.org"))).code).toBe("CREDENTIAL_STORE_WRITE");
      expect((await rejection<CredentialStoreError>(s.list())).code).toBe("CREDENTIAL_STORE_UNREADABLE");
    } finally {
      await server.start();
      for (let i = 0; i < 60 && redis.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    }
  });
});

describe("RedisRoomMarkStore", () => {
  it("save replaces the account's marks, load reads them back; none saved: empty", async () => {
    const s = new RedisRoomMarkStore(redis);
    expect(await s.load("alice@example.org")).toEqual(new Map());
    await s.save("alice@example.org", new Map([["a@muc.example.org", 1_700_000_000_123], ["b@muc.example.org", 5]]));
    await s.save("alice@example.org", new Map([["a@muc.example.org", 1_700_000_000_999]]));
    expect(await s.load("alice@example.org")).toEqual(new Map([["a@muc.example.org", 1_700_000_000_999]]));
    await s.save("alice@example.org", new Map());
    expect(await redis.exists("minimix:marks:alice@example.org")).toBe(0);
  });

  it("a damaged mark is ROOM_MARKS_CORRUPT; Redis down: UNREADABLE / WRITE", async () => {
    const s = new RedisRoomMarkStore(redis);
    await redis.hset("minimix:marks:bob@example.org", "r@muc", "yesterday");
    expect((await rejection<RoomMarkError>(s.load("bob@example.org"))).code).toBe("ROOM_MARKS_CORRUPT");
    await server.halt();
    try {
      expect((await rejection<RoomMarkError>(s.load("bob@example.org"))).code).toBe("ROOM_MARKS_UNREADABLE");
      expect((await rejection<RoomMarkError>(s.save("bob@example.org", new Map([["r@muc", 1]])))).code).toBe("ROOM_MARKS_WRITE");
    } finally {
      await server.start();
      for (let i = 0; i < 60 && redis.status !== "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    }
  });
});
