/**
 * The five measurements of issue 4. Each function runs one round on one path and returns raw
 * figures; bench/run.ts interleaves paths and rounds and summarizes.
 */
import { parseStanza } from "../../core/xml/element.js";
import { Framer } from "../../core/xml/framer.js";
import { attrOf, chat, connect, groupchat, isSelfPresence, joinPresence, joinRooms, type Path, resource, stanzaId } from "./paths.js";
import { cpuSeconds, nowMs, rssBytes } from "./procs.js";
import { quantile, sortNum } from "./stats.js";
import { BenchClient, pool, sleep } from "./xmpp.js";

type Cred = { user: string; pass: string };

// ============================================================================ 1. pass-through

/** A connected alice/bob pair on one path; bob answers every "ping" with a "pong" of the same id. */
export class ChatPair {
  private constructor(readonly path: Path, readonly a: BenchClient, readonly b: BenchClient) {}
  /** A chat stanza as bob received it (for the parser floor). */
  sample: Buffer | undefined;
  private echo = false;
  /** Messages bob received in throughput mode. */
  received = 0;
  private onReceived: (() => void) | undefined;

  static async open(path: Path, alice: Cred, bob: Cred): Promise<ChatPair> {
    const [a, b] = await Promise.all([connect(path, alice, resource("m1a")), connect(path, bob, resource("m1b"))]);
    const p = new ChatPair(path, a, b);
    b.onStanza((name, bytes) => {
      if (name !== "message") return;
      p.sample ??= Buffer.from(bytes);
      if (p.echo) {
        const id = stanzaId(bytes);
        if (id) b.send(chat(a.jid, id, "pong"));
      } else {
        p.received++;
        p.onReceived?.();
      }
    });
    return p;
  }

  /** `n` sequential round trips alice → bob → alice; returns each RTT in ms. */
  async pingPong(n: number): Promise<number[]> {
    this.echo = true;
    const rtts: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const id = `p${i}-${Math.random().toString(36).slice(2, 8)}`;
        const back = this.a.waitFor((name, bytes) => name === "message" && stanzaId(bytes) === id, 10_000, `pong ${id}`);
        const t0 = nowMs();
        this.a.send(chat(this.b.jid, id, "ping"));
        await back;
        rtts.push(nowMs() - t0);
      }
    } finally {
      this.echo = false;
    }
    return rtts;
  }

  /**
   * Closed-loop throughput: alice keeps `window` messages in flight to bob for `seconds` (after a
   * short warm-up). Returns messages/s delivered and the CPU seconds of the given processes.
   */
  async throughput(window: number, seconds: number, pids: number[]): Promise<{ rate: number; delivered: number; cpu: number[]; wall: number }> {
    let sent = 0;
    this.received = 0;
    let running = true;
    const body = "x".repeat(48);
    const fill = (): void => {
      if (!running) return;
      let batch = "";
      while (sent - this.received < window) {
        batch += chat(this.b.jid, `t${sent}`, body);
        sent++;
      }
      if (batch) this.a.send(batch);
    };
    this.onReceived = fill;
    fill();
    await sleep(Math.min(300, seconds * 300));
    const r0 = this.received;
    const c0 = pids.map(cpuSeconds);
    const t0 = nowMs();
    await sleep(seconds * 1000);
    const r1 = this.received;
    const c1 = pids.map(cpuSeconds);
    const wall = (nowMs() - t0) / 1000;
    running = false;
    this.onReceived = undefined;
    // let the pipe drain before the next measurement
    const deadline = Date.now() + 10_000;
    while (this.received < sent && Date.now() < deadline) await sleep(20);
    return { rate: (r1 - r0) / wall, delivered: r1 - r0, cpu: c1.map((c, i) => c - c0[i]!), wall };
  }

  close(): void {
    this.a.close();
    this.b.close();
  }
}

export function latencyStats(samples: number[]): { p50: number; p99: number; p90: number; mean: number } {
  const s = sortNum(samples);
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

// ============================================================================ 2. CPU per stanza

/** K sessions of alice on `path` in one room; bob (straight on the server) sends groupchat. */
export class FanOut {
  delivered = 0;
  sample: Buffer | undefined;
  private onDelivered: (() => void) | undefined;
  private constructor(readonly path: Path, readonly sessions: BenchClient[], readonly sender: BenchClient, readonly room: string) {}

  static async open(path: Path, direct: Path, alice: Cred, bob: Cred, k: number, room: string): Promise<FanOut> {
    const sessions = await Promise.all(Array.from({ length: k }, () => connect(path, alice, resource("m2a"))));
    const sender = await connect(direct, bob, resource("m2b"));
    const f = new FanOut(path, sessions, sender, room);
    for (const s of sessions) await joinRooms(s, [room], "alice");
    await joinRooms(sender, [room], "bob");
    for (const s of sessions) {
      s.onStanza((name, bytes) => {
        if (name !== "message" || !bytes.includes("gcx")) return;
        f.sample ??= Buffer.from(bytes);
        f.delivered++;
        f.onDelivered?.();
      });
    }
    return f;
  }

  /** Closed loop: `window` room messages in flight (a message is done when all K sessions have it). */
  async run(window: number, seconds: number, pids: number[]): Promise<{ rate: number; delivered: number; cpu: number[]; wall: number }> {
    const k = this.sessions.length;
    let sent = 0;
    this.delivered = 0;
    let running = true;
    const fill = (): void => {
      if (!running) return;
      let batch = "";
      while (sent - Math.floor(this.delivered / k) < window) {
        batch += groupchat(this.room, `g${sent}`, "gcx", false);
        sent++;
      }
      if (batch) this.sender.send(batch);
    };
    this.onDelivered = fill;
    fill();
    await sleep(Math.min(300, seconds * 300));
    const d0 = this.delivered;
    const c0 = pids.map(cpuSeconds);
    const t0 = nowMs();
    await sleep(seconds * 1000);
    const d1 = this.delivered;
    const c1 = pids.map(cpuSeconds);
    const wall = (nowMs() - t0) / 1000;
    running = false;
    this.onDelivered = undefined;
    const deadline = Date.now() + 15_000;
    while (this.delivered < sent * k && Date.now() < deadline) await sleep(20);
    return { rate: (d1 - d0) / wall, delivered: d1 - d0, cpu: c1.map((c, i) => c - c0[i]!), wall };
  }

  close(): void {
    for (const s of this.sessions) s.close();
    this.sender.close();
  }
}

/**
 * The parser floor: CPU per stanza of a bare loop that builds the element tree of the stanza (the
 * proxy's own parseStanza, ltx) and serializes it again — and, for reference, of the byte framer alone.
 */
export function parserFloor(stanza: Buffer, iterations: number): { parseSerialize: number; framer: number } {
  let sink = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) sink += parseStanza(stanza).toString().length;
  const c1 = process.cpuUsage(c0);
  const framer = new Framer({ maxStanzaSize: 1 << 20, maxDepth: 64 });
  framer.push(Buffer.from("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"));
  const c2 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) sink += framer.push(stanza).length;
  const c3 = process.cpuUsage(c2);
  if (sink < 0) throw new Error("unreachable");
  return { parseSerialize: (c1.user + c1.system) / 1e6 / iterations, framer: (c3.user + c3.system) / 1e6 / iterations };
}

// ============================================================================ 3. account-level win

export interface AccountWinRound {
  k: number;
  rooms: number;
  messages: number;
  /** What Prosody sent, on connections bound to the account, while the messages were delivered. */
  stanzas: number;
  groupchat: number;
  bytes: number;
  /** Per message: time until the last of the K sessions had it (ms). */
  latencies: number[];
}

/** K sessions of alice on `path`, joined to `rooms`. Kept across rounds; `grow` adds sessions/rooms. */
export class AccountGroup {
  readonly sessions: BenchClient[] = [];
  private joined = 0;
  constructor(readonly path: Path, private readonly alice: Cred) {}

  async grow(k: number, rooms: string[]): Promise<void> {
    while (this.sessions.length < k) {
      const s = await connect(this.path, this.alice, resource("m3a"));
      this.sessions.push(s);
      await joinRooms(s, rooms.slice(0, this.joined), "alice");
    }
    if (rooms.length > this.joined) {
      const more = rooms.slice(this.joined);
      await Promise.all(this.sessions.map((s) => joinRooms(s, more, "alice")));
      this.joined = rooms.length;
    }
  }

  close(): void {
    for (const s of this.sessions.splice(0)) s.close();
    this.joined = 0;
  }

  /**
   * `m` messages from the sender, round-robin over `rooms`, one at a time: each is done when all K
   * sessions received it. `count()` is read around the messages (the tap's per-account counters).
   */
  async round(sender: BenchClient, rooms: string[], m: number, reset: () => void, count: () => { stanzas: number; groupchat: number; bytes: number }): Promise<AccountWinRound> {
    const k = this.sessions.length;
    const latencies: number[] = [];
    await sleep(100);
    reset();
    for (let i = 0; i < m; i++) {
      const tag = `aw${i}x${Math.random().toString(36).slice(2, 8)}`;
      const room = rooms[i % rooms.length]!;
      const all = Promise.all(this.sessions.map((s) => s.waitFor((name, bytes) => name === "message" && bytes.includes(tag), 15_000, `room message ${tag}`)));
      const t0 = nowMs();
      sender.send(groupchat(room, tag, tag));
      await all;
      latencies.push(nowMs() - t0);
    }
    await sleep(150); // anything else the server sends as a consequence is counted too
    const c = count();
    return { k, rooms: rooms.length, messages: m, stanzas: c.stanzas, groupchat: c.groupchat, bytes: c.bytes, latencies };
  }
}

// ============================================================================ 4. reconnect

export interface ReconnectRound {
  rooms: number;
  /** connect → every room's occupant list and missed message (ms). */
  totalMs: number;
  /** bound → every room's occupant list and missed message (ms): the rejoin alone. */
  rejoinMs: number;
  loginMs: number;
  /** Occupant presences (others) received, summed over rooms. */
  occupantsSeen: number;
  missedSeen: number;
}

/**
 * One drop-and-rejoin of alice on `path` in `rooms` (each with the occupants already there): join,
 * drop the connection, let the sender post one message per room, reconnect and rejoin with
 * <history since=drop>; timed until every room delivered its self-presence and the missed message.
 */
export async function reconnectRound(path: Path, alice: Cred, sender: BenchClient, rooms: string[], round: number, pauseMs = 250): Promise<ReconnectRound> {
  const res = `rc${round}`;
  const first = await connect(path, alice, res);
  await joinRooms(first, rooms, "alice");
  const dropAt = Date.now();
  first.close();
  await sleep(pauseMs);
  // the messages the session misses while it is away; each room reflects it to the sender
  const tags = rooms.map((_, i) => `miss-${round}-${i}-${Math.random().toString(36).slice(2, 7)}`);
  const echoes = Promise.all(tags.map((t) => sender.waitFor((name, bytes) => name === "message" && bytes.includes(t), 30_000, `echo ${t}`)));
  sender.send(rooms.map((r, i) => groupchat(r, tags[i]!, tags[i]!)).join(""));
  await echoes;
  await sleep(pauseMs / 2);

  const since = new Date(dropAt - 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const t0 = nowMs();
  const c = await connect(path, alice, res);
  const tLogin = nowMs();
  const pendingSelf = new Set(rooms);
  const pendingMissed = new Set(tags);
  let occupantsSeen = 0;
  const roomSet = new Set(rooms);
  const done = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`reconnect ${path.name} R=${rooms.length}: ${pendingSelf.size} joins and ${pendingMissed.size} missed messages outstanding`)), 60_000);
    const off = c.onStanza((name, bytes) => {
      if (name === "presence") {
        const from = attrOf(bytes, "from") ?? "";
        const slash = from.indexOf("/");
        const room = slash < 0 ? from : from.slice(0, slash);
        if (!roomSet.has(room)) return;
        if (isSelfPresence(name, bytes, room)) pendingSelf.delete(room);
        else if (attrOf(bytes, "type") === undefined) occupantsSeen++;
      } else if (name === "message") {
        for (const tag of pendingMissed) {
          if (bytes.includes(tag)) {
            pendingMissed.delete(tag);
            break;
          }
        }
      }
      if (pendingSelf.size === 0 && pendingMissed.size === 0) {
        clearTimeout(t);
        off();
        resolve();
      }
    });
  });
  c.send(rooms.map((r) => joinPresence(r, "alice", `<history since='${since}'/>`)).join(""));
  await done;
  const tDone = nowMs();
  c.close();
  await sleep(pauseMs);
  return { rooms: rooms.length, totalMs: tDone - t0, rejoinMs: tDone - tLogin, loginMs: tLogin - t0, occupantsSeen, missedSeen: tags.length - pendingMissed.size };
}

/** `n` occupants (resources of one user, nicks occ-i) joined to every room; the first one is the sender. */
export async function occupy(direct: Path, user: Cred, rooms: string[], n: number): Promise<BenchClient[]> {
  const occ = await pool(Array.from({ length: n }, (_, i) => i), 8, (i) => connect(direct, user, resource(`occ${i}`)));
  await pool(occ, 4, (c, i) => joinRooms(c, rooms, `occ-${i}`, "<history maxstanzas='0'/>", 120_000));
  return occ;
}

// ============================================================================ 5. memory and scale

export interface IdleSessions {
  clients: BenchClient[];
  loginSeconds: number;
}

/** Opens `n` more authenticated idle sessions on `path`, rotating over `users`. */
export async function openIdle(path: Path, users: Cred[], n: number, into: BenchClient[], concurrency = 32): Promise<number> {
  const t0 = nowMs();
  const base = into.length;
  const made = await pool(Array.from({ length: n }, (_, i) => base + i), concurrency, async (i) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await connect(path, users[i % users.length]!, `idle${i}-${process.pid.toString(36)}`);
      } catch (err) {
        if (attempt >= 2) throw err;
        await sleep(200);
      }
    }
  });
  into.push(...made);
  return (nowMs() - t0) / 1000;
}

/** RSS of `pid`: median of `samples` readings `everyMs` apart. */
export async function settledRss(pid: number, samples = 5, everyMs = 200): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < samples; i++) {
    xs.push(rssBytes(pid));
    await sleep(everyMs);
  }
  return quantile(sortNum(xs), 0.5);
}
