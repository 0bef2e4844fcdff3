/**
 * The credential store and the room-mark store of a cluster member, in Redis (docs/architecture.md
 * §8.7), behind the interfaces of proxy/credentials/store.ts and proxy/state/room-marks.ts, so that
 * a record made at a PLAIN login on one node verifies a SCRAM login on any other, and an account
 * taken over by another node rejoins its bookmarked rooms with `<history since>` its marks.
 *
 * Credentials: one hash `minimix:credentials`, field = the normalised account, value = the record set
 * in its JSON form (core/credentials/record.ts; validated on read and write, last writer wins).
 * Marks: one hash per account, `minimix:marks:<account>`, field = room, value = ms since the epoch.
 * A Redis that does not answer is a store error for that one call (a login gets temporary-auth-failure;
 * marks are logged and the rooms' default history used), never a crash.
 */
import type { Redis } from "ioredis";
import { CredentialError } from "../../core/credentials/errors.js";
import { decodeAccountCredentials, normalizeAccount, type AccountCredentials } from "../../core/credentials/record.js";
import { CredentialStoreError, type CredentialStore, encodeForStore } from "../credentials/store.js";
import { RoomMarkError, type RoomMarks, type RoomMarkStore } from "../state/room-marks.js";

const CREDENTIALS_KEY = "minimix:credentials";
const marksKey = (account: string): string => `minimix:marks:${account}`;

export class RedisCredentialStore implements CredentialStore {
  constructor(private readonly redis: Redis, readonly description: string) {}

  async get(account: string): Promise<AccountCredentials | undefined> {
    const key = normalizeAccount(account);
    if (key === null) return undefined;
    let text: string | null;
    try {
      text = await this.redis.hget(CREDENTIALS_KEY, key);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential record in ${this.description}: Redis did not answer (${(cause as Error).message})`, undefined, { cause });
    }
    if (text === null) return undefined;
    try {
      return decodeAccountCredentials(text, key);
    } catch (cause) {
      const why = cause instanceof CredentialError ? cause.message : "cannot decode it";
      throw new CredentialStoreError("CREDENTIAL_STORE_CORRUPT", `credential record in ${this.description}: ${why}`, undefined, { cause });
    }
  }

  async put(credentials: AccountCredentials): Promise<void> {
    const text = encodeForStore(credentials);
    try {
      await this.redis.hset(CREDENTIALS_KEY, credentials.account, text);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", `credential record in ${this.description}: not written, Redis did not answer (${(cause as Error).message})`, undefined, { cause });
    }
  }

  async delete(account: string): Promise<boolean> {
    const key = normalizeAccount(account);
    if (key === null) return false;
    try {
      return (await this.redis.hdel(CREDENTIALS_KEY, key)) === 1;
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", `credential record in ${this.description}: not deleted, Redis did not answer (${(cause as Error).message})`, undefined, { cause });
    }
  }

  async list(): Promise<string[]> {
    try {
      return await this.redis.hkeys(CREDENTIALS_KEY);
    } catch (cause) {
      throw new CredentialStoreError("CREDENTIAL_STORE_UNREADABLE", `credential records in ${this.description}: Redis did not answer (${(cause as Error).message})`, undefined, { cause });
    }
  }
}

export class RedisRoomMarkStore implements RoomMarkStore {
  constructor(private readonly redis: Redis) {}

  async load(account: string): Promise<Map<string, number>> {
    let raw: Record<string, string>;
    try {
      raw = await this.redis.hgetall(marksKey(account));
    } catch (cause) {
      throw new RoomMarkError("ROOM_MARKS_UNREADABLE", `room marks of an account in Redis: no answer (${(cause as Error).message})`, { cause });
    }
    const out = new Map<string, number>();
    for (const [room, v] of Object.entries(raw)) {
      const t = Number(v);
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(t)) throw new RoomMarkError("ROOM_MARKS_CORRUPT", `room marks of an account in Redis: bad time for ${room}`);
      out.set(room, t);
    }
    return out;
  }

  async save(account: string, marks: RoomMarks): Promise<void> {
    const key = marksKey(account);
    const m = this.redis.multi().del(key);
    if (marks.size > 0) m.hset(key, Object.fromEntries([...marks].map(([room, t]) => [room, String(Math.round(t))])));
    try {
      const r = await m.exec();
      const failed = r?.find(([err]) => err !== null);
      if (failed) throw failed[0];
    } catch (cause) {
      throw new RoomMarkError("ROOM_MARKS_WRITE", `room marks of an account in Redis: not written (${(cause as Error).message})`, { cause });
    }
  }
}
