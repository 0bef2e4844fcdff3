/**
 * The cluster's Redis connection and its lease commands (docs/architecture.md §8.7). Every lease
 * command is one Lua script, so each check-and-change is atomic in Redis:
 *  - acquire: if the key is free, INCR the fencing counter and `SET key <node>:<token> PX ttl`
 *    (equivalent to SET NX PX with the token from INCR, in one step); if not, who holds it and for how long;
 *  - renew: compare-and-extend (PEXPIRE only if the stored value is still ours);
 *  - release: compare-and-delete.
 * Commands fail fast while Redis is unreachable (no offline queue, a command timeout): the caller
 * decides (core/cluster/lease.ts: a held lease is kept until its local deadline).
 */
import { Redis } from "ioredis";
import type { ClientAddress } from "../../core/cluster/redirect.js";

const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur, redis.call('PTTL', KEYS[1])} end
local t = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. ':' .. t
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
local prev = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[3], v, 'PX', ARGV[3])
return {1, v, t, prev or ''}
`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/** How long the last owner of an account is remembered (to tell a takeover from a clean hand-over). */
const LAST_OWNER_MS = 86_400_000;

export type AcquireAnswer =
  /** `previous`: the last owner's value when it never released the lease (it died or was cut off), else undefined. */
  | { kind: "granted"; value: string; token: number; previous: string | undefined }
  | { kind: "held"; value: string; remainingMs: number };

export interface NodeInfo {
  id: string;
  advertise: string | undefined;
  /** Where clients reach the node directly (--cluster-client-address), for <see-other-host/>. */
  client?: ClientAddress | undefined;
}

/** What the lease keeper needs from Redis; the unit tests give it a fake. */
export interface LeaseBackend {
  acquire(account: string, nodeId: string, ttlMs: number): Promise<AcquireAnswer>;
  /** True: extended; false: the key holds another value or none. Rejects when Redis did not answer. */
  renew(account: string, value: string, ttlMs: number): Promise<boolean>;
  release(account: string, value: string): Promise<boolean>;
  /** The live nodes (heartbeat keys) and this node's own heartbeat. */
  heartbeat(node: NodeInfo, ttlMs: number): Promise<void>;
  nodes(): Promise<NodeInfo[]>;
  /** The value stored under the account's lease (`<node>:<token>`), or undefined when free. */
  holder(account: string): Promise<string | undefined>;
  /** Removes this node's heartbeat (a clean stop). */
  leave(nodeId: string): Promise<void>;
}

/** Key names: one prefix, so a Redis shared with other software is not polluted. */
export function keys(prefix = "minimix:"): { lease: (a: string) => string; last: (a: string) => string; fence: string; node: (id: string) => string; nodes: string } {
  return {
    lease: (a) => `${prefix}lease:${a}`,
    last: (a) => `${prefix}last:${a}`,
    fence: `${prefix}fence`,
    node: (id) => `${prefix}node:${id}`,
    nodes: `${prefix}nodes`,
  };
}

/** Opens the connection; resolves once Redis answered a PING, rejects after `timeoutMs` (the node then does not start). */
export async function connectRedis(url: string, timeoutMs: number): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: timeoutMs,
    // reconnect forever, at most every 2 s: a Redis restart must find the nodes back by themselves
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
  redis.on("error", () => undefined); // reported by the keeper through the failures of its commands
  try {
    await withTimeout(redis.connect(), timeoutMs);
    await withTimeout(redis.ping(), timeoutMs);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

export class RedisLeaseBackend implements LeaseBackend {
  private readonly k = keys();
  constructor(private readonly redis: Redis) {}

  async acquire(account: string, nodeId: string, ttlMs: number): Promise<AcquireAnswer> {
    const r = (await this.redis.eval(ACQUIRE, 3, this.k.lease(account), this.k.fence, this.k.last(account), nodeId, String(ttlMs), String(LAST_OWNER_MS))) as [number, string, number, string?];
    return r[0] === 1 ? { kind: "granted", value: r[1], token: Number(r[2]), previous: r[3] ? r[3] : undefined } : { kind: "held", value: r[1], remainingMs: Number(r[2]) };
  }

  async renew(account: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.k.lease(account), value, String(ttlMs))) === 1;
  }

  async release(account: string, value: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 2, this.k.lease(account), this.k.last(account), value)) === 1;
  }

  async heartbeat(node: NodeInfo, ttlMs: number): Promise<void> {
    await this.redis.multi().set(this.k.node(node.id), JSON.stringify({ advertise: node.advertise ?? null, client: node.client ?? null }), "PX", ttlMs).sadd(this.k.nodes, node.id).exec();
  }

  async holder(account: string): Promise<string | undefined> {
    return (await this.redis.get(this.k.lease(account))) ?? undefined;
  }

  async leave(nodeId: string): Promise<void> {
    await this.redis.multi().del(this.k.node(nodeId)).srem(this.k.nodes, nodeId).exec();
  }

  /** The members whose heartbeat key is alive; the dead are dropped from the set. */
  async nodes(): Promise<NodeInfo[]> {
    const ids = (await this.redis.smembers(this.k.nodes)).sort();
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.k.node(id)));
    const out: NodeInfo[] = [];
    const dead: string[] = [];
    ids.forEach((id, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) return void dead.push(id);
      let advertise: string | undefined;
      let client: ClientAddress | undefined;
      try {
        const v = JSON.parse(raw) as { advertise?: unknown; client?: unknown };
        if (typeof v.advertise === "string") advertise = v.advertise;
        client = clientAddress(v.client);
      } catch {
        // a damaged heartbeat still says the node is alive
      }
      out.push({ id, advertise, ...(client ? { client } : {}) });
    });
    if (dead.length > 0) await this.redis.srem(this.k.nodes, ...dead);
    return out;
  }
}

/** A published client address, if well-formed (a node of another version may publish something else). */
function clientAddress(v: unknown): ClientAddress | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const { host, ports, ws } = v as { host?: unknown; ports?: unknown; ws?: unknown };
  if (typeof host !== "string" || host === "" || typeof ports !== "object" || ports === null) return undefined;
  const out: ClientAddress = { host, ports: {} };
  for (const t of ["starttls", "direct-tls"] as const) {
    const p = (ports as Record<string, unknown>)[t];
    if (typeof p === "number" && Number.isInteger(p) && p > 0 && p < 65536) out.ports[t] = p;
  }
  // RFC 7395 §3.6.1 see-other-uri: only a wss URI (a client never follows wss to ws)
  if (typeof ws === "string" && /^wss:\/\/[^\s'"<>&]+$/.test(ws)) out.ws = ws;
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
