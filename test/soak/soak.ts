/**
 * Soak engine (issue 5): hundreds of sessions connect, join, message, leave, drop and reconnect at
 * random against a real Prosody through the real proxy (child process); at the end every message
 * sent was delivered to every session that was joined when it was sent, exactly once, and the
 * proxy's RSS and open file descriptors are back near their baseline once everyone has left.
 *
 * Sessions are minimal clients built from the proxy's own stream code (openUpstream does STARTTLS +
 * SASL PLAIN against the proxy, the byte-level framer reads the stanzas), so thousands of
 * stanzas cost the test process little. Observers — one per room, straight on Prosody — keep the
 * rooms alive, send too, and timestamp each message's reflection.
 *
 * "Joined when it was sent": a session counts for a message when its self-presence (110) arrived
 * before the message was sent and it was still in the room (no leave, no drop) LEAVE_GRACE_MS after
 * the room reflected the message to the observer. Every other session may or may not get it, but
 * never twice.
 */
import { readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { openUpstream, type UpstreamTarget } from "../../proxy/upstream/connect.js";
import type { XmppConnection } from "../../proxy/stream/xmpp-connection.js";
import type { FrameQueue } from "../../proxy/stream/frame-queue.js";
import { peekAttr, bytesInclude } from "../../core/xml/peek.js";
import { establishedTo } from "../support/sockets.js";

export interface SoakOptions {
  proxyPort: number;
  proxyPid: number;
  /** The proxy's --metrics port (heap figures from prom-client's default metrics), if any. */
  metricsPort?: number;
  /**
   * Directory where the proxy writes a heap snapshot on SIGUSR2 (NODE_OPTIONS --heapsnapshot-signal,
   * --diagnostic-dir): writing one forces a full GC, so the heap measured afterwards is live data only.
   */
  heapSnapshotDir?: string;
  proxyCa: string;
  prosodyPort: number;
  prosodyCa: string;
  muc: string;
  users: { user: string; pass: string }[];
  /** The observers' account (straight on Prosody). */
  observer: { user: string; pass: string };
  durationMs: number;
  rooms?: number;
  maxSessions?: number;
  /** Action loop period. */
  tickMs?: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  durationMs: number;
  rooms: number;
  accounts: number;
  sessionsOpened: number;
  peakSessions: number;
  logins: number;
  loginFailures: number;
  joins: number;
  joinErrors: number;
  leaves: number;
  drops: number;
  cleanCloses: number;
  messagesSent: number;
  stanzasReceived: number;
  requiredDeliveries: number;
  delivered: number;
  losses: number;
  duplicates: number;
  unexpectedStreamErrors: number;
  rssBaselineKiB: number;
  rssPeakKiB: number;
  rssEndKiB: number;
  fdBaseline: number;
  fdEnd: number;
  heapBaselineKiB: number;
  heapPeakKiB: number;
  heapEndKiB: number;
  loginFailureSamples: string[];
  upstreamSocketsEnd: number;
  lossSamples: string[];
}

const LEAVE_GRACE_MS = 3000;
const NS_MUC = "http://jabber.org/protocol/muc";

interface Msg {
  id: string;
  room: string;
  sentAt: number;
  reflectedAt?: number;
}

interface Presence {
  room: string;
  joinedAt?: number;
  leftAt?: number;
  joinSentAt: number;
}

class Session {
  conn!: XmppConnection;
  jid = "";
  readonly rooms = new Map<string, Presence>();
  /** Every (room, joined interval) this session ever had, for the delivery check. */
  readonly history: Presence[] = [];
  readonly got = new Map<string, number>();
  closed = false;
  closedAt: number | undefined;
  streamError: string | undefined;
  expectedClose = false;
  /** Observers: called with each soak message id they see reflected. */
  onGroupchat: ((id: string) => void) | undefined;

  constructor(readonly user: string, readonly resource: string, private readonly engine: Engine) {}

  async open(target: UpstreamTarget, pass: string): Promise<void> {
    const up = await openUpstream(target, this.user, { password: pass });
    this.conn = up.conn;
    this.conn.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${this.resource}</resource></bind></iq>`);
    this.jid = await awaitBind(up.queue, target.timeoutMs);
    this.conn.setHandler({
      onOpen: () => undefined,
      onStanza: (name, bytes) => this.onStanza(name, bytes),
      onClose: () => this.gone(),
      onFramingError: (e) => {
        this.streamError = `framing: ${e.message}`;
        this.gone();
      },
      onSocketClosed: () => this.gone(),
    });
    for (const f of up.queue.drain()) if (f.kind === "stanza") this.onStanza(f.name, f.bytes);
  }

  private onStanza(name: string, bytes: Buffer): void {
    this.engine.stanzas++;
    if (name === "message") {
      const id = peekAttr(bytes, "id");
      if (id?.startsWith("soak-") && peekAttr(bytes, "type") === "groupchat") {
        this.got.set(id, (this.got.get(id) ?? 0) + 1);
        this.onGroupchat?.(id);
      }
    } else if (name === "presence") {
      const from = peekAttr(bytes, "from") ?? "";
      const slash = from.indexOf("/");
      const room = slash < 0 ? from : from.slice(0, slash);
      const p = this.rooms.get(room);
      if (!p) return;
      const type = peekAttr(bytes, "type");
      if (type === "error" && p.joinedAt === undefined) {
        this.engine.result.joinErrors++;
        this.rooms.delete(room);
      } else if (type !== "unavailable" && p.joinedAt === undefined && (bytesInclude(bytes, "code='110'") || bytesInclude(bytes, 'code="110"'))) {
        p.joinedAt = Date.now();
      }
    } else if (name === "stream:error") {
      if (!this.expectedClose) this.streamError = bytes.toString("utf8").slice(0, 200);
    }
  }

  join(room: string, nick: string): void {
    const p: Presence = { room, joinSentAt: Date.now() };
    this.rooms.set(room, p);
    this.history.push(p);
    this.conn.write(`<presence to='${room}/${nick}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
  }

  leave(room: string, nick: string): void {
    const p = this.rooms.get(room);
    if (!p) return;
    p.leftAt = Date.now();
    this.rooms.delete(room);
    this.conn.write(`<presence to='${room}/${nick}' type='unavailable'/>`);
  }

  send(room: string, id: string): void {
    this.conn.write(`<message to='${room}' type='groupchat' id='${id}'><body>${id}</body></message>`);
  }

  /** Abrupt drop (killed client) or a clean close. */
  close(abrupt: boolean): void {
    const now = Date.now();
    for (const p of this.rooms.values()) p.leftAt ??= now;
    this.rooms.clear();
    this.expectedClose = true;
    if (abrupt) this.conn.socket.destroy();
    else this.conn.end(1000);
    this.gone();
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = Date.now();
    for (const p of this.rooms.values()) p.leftAt ??= this.closedAt;
    this.rooms.clear();
    if (!this.expectedClose) this.engine.result.unexpectedStreamErrors++;
  }
}

async function awaitBind(queue: FrameQueue, timeoutMs: number): Promise<string> {
  for (;;) {
    const f = await queue.next(timeoutMs);
    if (f.kind !== "stanza") throw new Error("stream closed during bind");
    if (f.name === "iq" && peekAttr(f.bytes, "id") === "bind") {
      const m = /<jid>([^<]+)<\/jid>/.exec(f.bytes.toString("utf8"));
      if (!m) throw new Error(`bind refused: ${f.bytes.toString("utf8")}`);
      return m[1]!;
    }
  }
}

function procStatus(pid: number): { rssKiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssKiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** nodejs_heap_size_used_bytes from the proxy's /metrics (0 without a metrics port). */
async function heapKiB(port: number | undefined): Promise<number> {
  if (!port) return 0;
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)/m.exec(text);
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** SIGUSR2 → the proxy writes a heap snapshot (a full GC first); waits until the file is complete, then deletes it. */
async function forceGc(pid: number, dir: string): Promise<void> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, "SIGUSR2");
  const t = Date.now();
  let last = -1;
  while (Date.now() - t < 30_000) {
    await sleep(250);
    const f = readdirSync(dir).find((n) => !before.has(n) && n.endsWith(".heapsnapshot"));
    if (!f) continue;
    const size = statSync(join(dir, f)).size;
    if (size > 0 && size === last) {
      rmSync(join(dir, f), { force: true });
      return;
    }
    last = size;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Engine {
  readonly result: SoakResult;
  stanzas = 0;
  readonly sessions: Session[] = [];
  readonly msgs = new Map<string, Msg>();
  private seq = 0;

  constructor(private readonly o: SoakOptions) {
    this.result = {
      durationMs: o.durationMs, rooms: o.rooms ?? 6, accounts: o.users.length, sessionsOpened: 0, peakSessions: 0, logins: 0, loginFailures: 0,
      joins: 0, joinErrors: 0, leaves: 0, drops: 0, cleanCloses: 0, messagesSent: 0, stanzasReceived: 0, requiredDeliveries: 0,
      delivered: 0, losses: 0, duplicates: 0, unexpectedStreamErrors: 0, rssBaselineKiB: 0, rssPeakKiB: 0, rssEndKiB: 0,
      fdBaseline: 0, fdEnd: 0, upstreamSocketsEnd: 0, lossSamples: [], heapBaselineKiB: 0, heapPeakKiB: 0, heapEndKiB: 0,
      loginFailureSamples: [],
    };
  }

  private target(port: number, ca: string): UpstreamTarget {
    return { host: "127.0.0.1", port, tls: "starttls", domain: "localhost", ca: readFileSync(ca), insecure: false, timeoutMs: 20_000,
      limits: { maxStanzaSize: 1 << 20, maxDepth: 64 }, keepaliveMs: 0 };
  }

  live(): Session[] {
    return this.sessions.filter((s) => !s.closed);
  }

  async run(): Promise<SoakResult> {
    const o = this.o;
    const log = o.log ?? (() => undefined);
    const nRooms = o.rooms ?? 6;
    const maxSessions = o.maxSessions ?? 300;
    const rooms = Array.from({ length: nRooms }, (_, i) => `soak-${i}-${randomUUID().slice(0, 6)}@${o.muc}`);
    const proxyTarget = this.target(o.proxyPort, o.proxyCa);

    // observers: one per room, straight on Prosody; create the room without archiving
    const observers: Session[] = [];
    for (const room of rooms) {
      const obs = new Session(o.observer.user, `obs-${randomUUID().slice(0, 6)}`, this);
      await obs.open(this.target(o.prosodyPort, o.prosodyCa), o.observer.pass);
      obs.join(room, "observer");
      const t = Date.now();
      while (obs.rooms.get(room)?.joinedAt === undefined) {
        if (Date.now() - t > 10_000) throw new Error(`observer could not join ${room}`);
        await sleep(10);
      }
      obs.conn.write(`<iq type='set' id='cfg' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
        `<field var='muc#roomconfig_enablearchiving'><value>0</value></field></x></query></iq>`);
      observers.push(obs);
    }
    const observerOf = new Map(rooms.map((r, i) => [r, observers[i]!]));
    // the observer's copy of each message is its reflection time
    for (const [room, obs] of observerOf) {
      obs.onGroupchat = (id) => {
        const m = this.msgs.get(id);
        if (m && m.room === room && m.reflectedAt === undefined) m.reflectedAt = Date.now();
      };
    }

    await sleep(300);
    const base = procStatus(o.proxyPid);
    this.result.rssBaselineKiB = base.rssKiB;
    this.result.fdBaseline = base.fds;
    this.result.rssPeakKiB = base.rssKiB;
    if (o.heapSnapshotDir) await forceGc(o.proxyPid, o.heapSnapshotDir);
    this.result.heapBaselineKiB = await heapKiB(o.metricsPort);
    this.result.heapPeakKiB = this.result.heapBaselineKiB;
    log(`baseline: rss ${base.rssKiB} KiB, fds ${base.fds}`);

    const pick = <T>(a: T[]): T | undefined => a[Math.floor(Math.random() * a.length)];
    const nickOf = (s: Session): string => s.user; // one occupant per account: the account's nick
    let connecting = 0;
    const connect = (): void => {
      const u = pick(o.users)!;
      const s = new Session(u.user, `s${++this.seq}`, this);
      connecting++;
      this.result.sessionsOpened++;
      s.open(proxyTarget, u.pass).then(() => {
        this.sessions.push(s);
        this.result.logins++;
      }, (err: unknown) => {
        this.result.loginFailures++;
        if (this.result.loginFailureSamples.length < 5) this.result.loginFailureSamples.push((err as Error).message);
        log(`login failed: ${(err as Error).message}`);
      }).finally(() => connecting--);
    };

    const started = Date.now();
    const churnEnd = started + o.durationMs;
    const tick = o.tickMs ?? 10;
    let lastSample = 0;
    // ramp-up: half the sessions at once, then churn
    for (let i = 0; i < Math.floor(maxSessions / 2); i++) connect();
    while (Date.now() < churnEnd) {
      const live = this.live();
      const r = Math.random();
      if (r < 0.15) {
        if (live.length + connecting < maxSessions) connect();
      } else if (r < 0.40) {
        const s = pick(live);
        const room = pick(rooms)!;
        if (s && !s.rooms.has(room)) {
          s.join(room, nickOf(s));
          this.result.joins++;
        }
      } else if (r < 0.47) {
        const s = pick(live.filter((x) => x.rooms.size > 0));
        const p = s && pick([...s.rooms.values()].filter((x) => x.joinedAt !== undefined));
        if (s && p) {
          s.leave(p.room, nickOf(s));
          this.result.leaves++;
        }
      } else if (r < 0.50) {
        const s = pick(live);
        if (s) {
          const abrupt = Math.random() < 0.5;
          s.close(abrupt);
          if (abrupt) this.result.drops++;
          else this.result.cleanCloses++;
        }
      } else {
        // a message from a joined session through the proxy, or (1 in 5) from an observer
        const id = `soak-${++this.seq}`;
        if (Math.random() < 0.2) {
          const room = pick(rooms)!;
          this.msgs.set(id, { id, room, sentAt: Date.now() });
          observerOf.get(room)!.send(room, id);
          this.result.messagesSent++;
        } else {
          const s = pick(live.filter((x) => [...x.rooms.values()].some((p) => p.joinedAt !== undefined)));
          const p = s && pick([...s.rooms.values()].filter((x) => x.joinedAt !== undefined));
          if (s && p) {
            this.msgs.set(id, { id, room: p.room, sentAt: Date.now() });
            s.send(p.room, id);
            this.result.messagesSent++;
          }
        }
      }
      this.result.peakSessions = Math.max(this.result.peakSessions, this.live().length);
      if (Date.now() - lastSample > 1000) {
        lastSample = Date.now();
        const st = procStatus(o.proxyPid);
        this.result.rssPeakKiB = Math.max(this.result.rssPeakKiB, st.rssKiB);
        this.result.heapPeakKiB = Math.max(this.result.heapPeakKiB, await heapKiB(o.metricsPort));
        log(`t=${Math.round((Date.now() - started) / 1000)}s live=${this.live().length} msgs=${this.result.messagesSent} stanzas=${this.stanzas} rss=${st.rssKiB}KiB fds=${st.fds}`);
      }
      await sleep(tick);
    }

    // drain: no new actions; let in-flight traffic and logins settle
    const drainStart = Date.now();
    while (connecting > 0 && Date.now() - drainStart < 20_000) await sleep(50);
    await sleep(LEAVE_GRACE_MS + 500);
    const checkAt = Date.now();

    // everybody leaves every room explicitly, then disconnects
    for (const s of this.live()) {
      for (const p of [...s.rooms.values()]) s.leave(p.room, nickOf(s));
      s.close(false);
    }
    this.check(checkAt);
    this.result.stanzasReceived = this.stanzas;

    // back to baseline: no upstream sockets (account sessions leave with their last session), fds and RSS
    const settleStart = Date.now();
    for (;;) {
      const st = procStatus(o.proxyPid);
      const up = establishedTo(o.proxyPid, o.prosodyPort);
      this.result.rssEndKiB = st.rssKiB;
      this.result.fdEnd = st.fds;
      this.result.upstreamSocketsEnd = up;
      // idle rooms are left on the registry's 5 s tick after --room-idle-leave
      if ((up === 0 && st.fds <= this.result.fdBaseline) || Date.now() - settleStart > 30_000) break;
      await sleep(200);
    }
    if (o.heapSnapshotDir) await forceGc(o.proxyPid, o.heapSnapshotDir);
    this.result.heapEndKiB = await heapKiB(o.metricsPort);
    this.result.rssEndKiB = procStatus(o.proxyPid).rssKiB;
    for (const obs of observers) obs.close(false);
    this.result.durationMs = Date.now() - started;
    return this.result;
  }

  /** Every message vs every session interval. */
  private check(checkAt: number): void {
    const res = this.result;
    for (const m of this.msgs.values()) {
      if (m.reflectedAt === undefined) {
        // the room never reflected it (e.g. sender dropped right after writing): nobody owes it
        continue;
      }
      for (const s of this.sessions) {
        const n = s.got.get(m.id) ?? 0;
        if (n > 1) res.duplicates += n - 1;
        const required = s.history.some((p) => p.room === m.room && p.joinedAt !== undefined && p.joinedAt < m.sentAt &&
          (p.leftAt ?? checkAt) > m.reflectedAt! + LEAVE_GRACE_MS);
        if (!required) continue;
        res.requiredDeliveries++;
        if (n >= 1) res.delivered++;
        else {
          res.losses++;
          if (res.lossSamples.length < 10) res.lossSamples.push(`${m.id} in ${m.room} sent ${m.sentAt} reflected ${m.reflectedAt} → ${s.jid}`);
        }
      }
    }
  }
}

export function runSoak(o: SoakOptions): Promise<SoakResult> {
  return new Engine(o).run();
}

export function formatResult(r: SoakResult): string {
  const mib = (k: number): string => `${(k / 1024).toFixed(1)} MiB`;
  return [
    `| figure | value |`,
    `|---|---|`,
    `| duration (churn + drain + leave) | ${(r.durationMs / 1000).toFixed(0)} s |`,
    `| rooms / accounts | ${r.rooms} / ${r.accounts} |`,
    `| sessions opened (logins ok / failed) | ${r.sessionsOpened} (${r.logins} / ${r.loginFailures}) |`,
    `| peak concurrent sessions | ${r.peakSessions} |`,
    `| joins / join errors / explicit leaves | ${r.joins} / ${r.joinErrors} / ${r.leaves} |`,
    `| drops (killed) / clean closes | ${r.drops} / ${r.cleanCloses} |`,
    `| groupchat messages sent | ${r.messagesSent} |`,
    `| stanzas received by sessions | ${r.stanzasReceived} |`,
    `| deliveries owed / delivered | ${r.requiredDeliveries} / ${r.delivered} |`,
    `| **losses** / duplicates | **${r.losses}** / ${r.duplicates} |`,
    `| unexpected stream errors | ${r.unexpectedStreamErrors} |`,
    `| proxy RSS baseline / peak / end | ${mib(r.rssBaselineKiB)} / ${mib(r.rssPeakKiB)} / ${mib(r.rssEndKiB)} |`,
    `| proxy JS heap used baseline / peak / end | ${mib(r.heapBaselineKiB)} / ${mib(r.heapPeakKiB)} / ${mib(r.heapEndKiB)} |`,
    `| proxy open fds baseline / end | ${r.fdBaseline} / ${r.fdEnd} |`,
    `| proxy upstream sockets at end | ${r.upstreamSocketsEnd} |`,
  ].join("\n");
}
