/**
 * Soak engine (issue 5): hundreds of sessions connect, join, message, leave, drop and reconnect at
 * random against a real server (Prosody or ejabberd) through the real proxy (child process); at the end every message
 * sent was delivered to every session that was joined when it was sent, exactly once, and the
 * proxy's RSS and open file descriptors are back near their baseline once everyone has left.
 *
 * Sessions are minimal clients built from the proxy's own stream code (openPreAuth does STARTTLS,
 * loginOn SASL PLAIN against the proxy, the byte-level framer reads the stanzas), so thousands of
 * stanzas cost the test process little. Observers — one per room, straight on the server — keep the
 * rooms alive, send too, timestamp each message's reflection, and see each account's occupant come and go.
 *
 * "Joined when it was sent": a session counts for a message when its self-presence (110) arrived
 * before the message was sent and it was still in the room (no leave, no drop) LEAVE_GRACE_MS after
 * the room reflected the message to the observer. Every other session may or may not get it, but
 * never twice.
 *
 * Phones come back (issue 10, "what real phones do"). Most sessions that go (a drop or a clean close)
 * reconnect a moment later as the same user and rejoin the rooms they were in; half of those
 * reconnects bind the SAME resource again, as Conversations, Dino and Gajim do. Some of the
 * same-resource reconnects are network changes: the new connection binds while the old one is
 * still open and silent (neither closed nor used), and the server gives the resource to the new
 * stream and ends the old one with <conflict/> (RFC 6120 §7.7.2.2) — expected, counted, and
 * required: every takeover's old stream must end that way. Deliveries are keyed by session object,
 * never by JID: the old and the new stream share a full JID but are two sessions. The old one is
 * owed nothing from the moment the new one's bind result arrives (or its own stream ended, if
 * earlier); the new one is owed from its own 110, like any session.
 *
 * History on the way back (XEP-0045 §7.2.15), as Conversations does without MAM: a phone that comes
 * back joins each room it was in with <history since=T/>, T being the time of the last message it
 * saw there (the message's XEP-0203 stamp if it came delayed, else when it arrived; or, if it saw
 * none, when its join was answered), carried over from connection to connection of that phone.
 * Fresh joins ask <history maxstanzas='0'/> as before. The proxy's `since` is strict: it replays
 * the buffered messages whose room time (the proxy's arrival time, or the room's stamp) is after T.
 * What that means for the accounting:
 *  - Owed through history: the comeback is also owed (once, replayed in its history or live) every
 *    message of that room sent after T — its room time is then after T too — provided the proxy
 *    can have it: the account's occupant was in the room, as the room's observer saw it, from before
 *    the message's reflection until LEAVE_GRACE_MS after the comeback's self-presence (had it left,
 *    its buffer went with it), fewer than --room-history (200) messages of the room were reflected
 *    between the message and that self-presence, and the comeback stayed LEAVE_GRACE_MS past both.
 *  - Duplicates: a session that receives a message twice; and a comeback that receives a message
 *    one of its phone's earlier connections had seen at or before the T it asked with. Such a
 *    message's room time is at most T (it reached the proxy before it reached the phone, or carries
 *    the stamp the phone kept), so replaying it is the proxy sending it twice. A message an earlier
 *    connection saw only after T (a takeover's old stream still reading) is not a duplicate: the
 *    phone had not seen it when it asked.
 */
import { readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { loginOn, openPreAuth, type UpstreamTarget } from "../../proxy/upstream/connect.js";
import { NS_SASL } from "../../core/xml/ns.js";
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
  /** The real server behind the proxy (observers connect to it directly). */
  upstreamPort: number;
  upstreamCa: string;
  /** Room config form field that turns archiving off: Prosody `muc#roomconfig_enablearchiving`, ejabberd `mam`. */
  archivingField: string;
  muc: string;
  users: { user: string; pass: string }[];
  /** The observers' account (straight on the server). */
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
  /** Sessions that came back as the same user (after a drop, a clean close or a network change) and bound. */
  reconnects: number;
  /** Of those, the ones that bound the resource they had before (takeovers included). */
  sameResourceReconnects: number;
  /** Same-resource reconnects that bound while the old connection was still open (network change). */
  takeovers: number;
  /** Old streams of a takeover that the server (through the proxy) ended with <conflict/>. */
  takeoverConflicts: number;
  /** Old streams of a completed takeover still open at the end, never told <conflict/> (must be 0). */
  takeoversUnresolved: number;
  /** Comeback joins that asked <history since=…/> (the phone had seen the room before). */
  sinceJoins: number;
  /** Owed deliveries that only the history rule owes (sent after a comeback's since, not owed by the live rule). */
  historyOwed: number;
  /** Soak messages sessions received with a delay (replayed history). */
  historyReceived: number;
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
  streamErrorSamples: string[];
  upstreamSocketsEnd: number;
  lossSamples: string[];
  duplicateSamples: string[];
}

const LEAVE_GRACE_MS = 3000;
/** The proxy's --room-history (default, as the soak runs it): what a room's buffer holds. */
const HISTORY_LIMIT = 200;
const NS_MUC = "http://jabber.org/protocol/muc";

interface Msg {
  id: string;
  room: string;
  sentAt: number;
  reflectedAt?: number;
  /** Position of the reflection in the observer's stream (orders it against occupant presences). */
  reflectedSeq?: number;
}

interface Presence {
  room: string;
  joinedAt?: number;
  leftAt?: number;
  joinSentAt: number;
  /** A comeback's <history since=…/> (ms), if it asked one. */
  since?: number;
}

/** An occupant's presence as the room's observer saw it. */
interface OccupantEvent {
  seq: number;
  at: number;
  present: boolean;
}

const DELAY_STAMP = /<delay[^>]*\sstamp=["']([^"']+)["']/;

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
  /** When the bind result arrived. */
  boundAt: number | undefined;
  /**
   * Set when a new connection takes this session's resource over while this one is left open and
   * silent (a network change): the server must end this stream with <conflict/>.
   */
  replaced = false;
  /** This stream ended with <conflict/> after a takeover. */
  conflictSeen = false;
  /** Observers: called with each soak message id they see reflected, and the stanza's position. */
  onGroupchat: ((id: string, seq: number) => void) | undefined;
  /** Observers: each occupant's presences (room → nick → events, in stream order). */
  occupantEvents: Map<string, Map<string, OccupantEvent[]>> | undefined;
  /** Observers: called with the result or error of the room configuration. */
  onIq: ((id: string, type: string | undefined, bytes: Buffer) => void) | undefined;
  /**
   * The phone's time of each soak message it got (first copy): the XEP-0203 stamp when it came
   * delayed, else when it arrived. A client keeps this, and quotes it in <history since/>.
   */
  readonly seen = new Map<string, number>();
  /** The phone's last-seen time per room, carried over from its earlier connections (comebacks). */
  lastSeen = new Map<string, number>();
  /** The connection this one came back from (same phone), if it is a comeback. */
  predecessor: Session | undefined;
  private seq = 0;

  constructor(readonly user: string, readonly resource: string, private readonly engine: Engine) {}

  async open(target: UpstreamTarget, pass: string): Promise<void> {
    const pre = await openPreAuth(target);
    // PLAIN: the soak is about the account layer, which needs the password or a SCRAM record; a SCRAM
    // login without a record would be relayed and bypass it (docs/architecture.md §3.5)
    const mechs = pre.features.getChild("mechanisms", NS_SASL);
    if (mechs) mechs.children = mechs.children.filter((c) => typeof c !== "string" && c.getText().trim() === "PLAIN");
    const up = await loginOn(pre, target, this.user, { password: pass });
    this.conn = up.conn;
    this.conn.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${this.resource}</resource></bind></iq>`);
    this.jid = await awaitBind(up.queue, target.timeoutMs);
    this.boundAt = Date.now();
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
    const seq = ++this.seq;
    if (name === "message") {
      const id = peekAttr(bytes, "id");
      if (id?.startsWith("soak-") && peekAttr(bytes, "type") === "groupchat") {
        const n = (this.got.get(id) ?? 0) + 1;
        this.got.set(id, n);
        const now = Date.now();
        let at = now;
        if (bytesInclude(bytes, "urn:xmpp:delay")) {
          this.engine.result.historyReceived++;
          const stamp = DELAY_STAMP.exec(bytes.toString("utf8"))?.[1];
          const t = stamp === undefined ? Number.NaN : Date.parse(stamp);
          if (!Number.isNaN(t)) at = t;
        }
        if (n === 1) this.seen.set(id, at);
        const from = peekAttr(bytes, "from") ?? "";
        const slash = from.indexOf("/");
        const room = slash < 0 ? from : from.slice(0, slash);
        this.lastSeen.set(room, Math.max(this.lastSeen.get(room) ?? 0, at));
        this.onGroupchat?.(id, seq);
      }
    } else if (name === "presence") {
      const from = peekAttr(bytes, "from") ?? "";
      const slash = from.indexOf("/");
      const room = slash < 0 ? from : from.slice(0, slash);
      const p = this.rooms.get(room);
      if (!p) return;
      const type = peekAttr(bytes, "type");
      if (this.occupantEvents && slash >= 0 && type !== "error") {
        const nick = from.slice(slash + 1);
        let byNick = this.occupantEvents.get(room);
        if (!byNick) this.occupantEvents.set(room, (byNick = new Map()));
        let evs = byNick.get(nick);
        if (!evs) byNick.set(nick, (evs = []));
        evs.push({ seq, at: Date.now(), present: type !== "unavailable" });
      }
      if (type === "error" && p.joinedAt === undefined) {
        this.engine.result.joinErrors++;
        this.rooms.delete(room);
      } else if (type !== "unavailable" && p.joinedAt === undefined && (bytesInclude(bytes, "code='110'") || bytesInclude(bytes, 'code="110"'))) {
        p.joinedAt = Date.now();
        this.lastSeen.set(room, Math.max(this.lastSeen.get(room) ?? 0, p.joinedAt));
      }
    } else if (name === "iq") {
      this.onIq?.(peekAttr(bytes, "id") ?? "", peekAttr(bytes, "type"), bytes);
    } else if (name === "stream:error") {
      if (this.replaced && !this.conflictSeen && bytesInclude(bytes, "<conflict")) {
        this.conflictSeen = true;
        this.engine.result.takeoverConflicts++;
      } else if (!this.expectedClose) this.streamError = bytes.toString("utf8").slice(0, 200);
    }
  }

  /**
   * A new stream bound this session's resource (network change): from now on this session is owed
   * nothing; its connection stays open, silent, until the server's <conflict/> ends it.
   */
  replacedAt(at: number): void {
    for (const p of this.rooms.values()) p.leftAt ??= at;
    this.rooms.clear();
  }

  /** Joins `room`: with <history since/> when `since` is given (a phone coming back), else no history. */
  join(room: string, nick: string, since?: number): void {
    const p: Presence = { room, joinSentAt: Date.now() };
    if (since !== undefined) p.since = since;
    this.rooms.set(room, p);
    this.history.push(p);
    const history = since === undefined ? "<history maxstanzas='0'/>" : `<history since='${new Date(since).toISOString()}'/>`;
    this.conn.write(`<presence to='${room}/${nick}'><x xmlns='${NS_MUC}'>${history}</x></presence>`);
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
    if (!this.expectedClose && !this.conflictSeen) {
      this.engine.result.unexpectedStreamErrors++;
      if (this.engine.result.streamErrorSamples.length < 5) {
        this.engine.result.streamErrorSamples.push(`${this.jid}${this.replaced ? " (replaced)" : ""}: ${this.streamError ?? "closed without a stream error"}`);
      }
    }
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
  /** Each room's observer (straight on the server). */
  private observerOf = new Map<string, Session>();
  private seq = 0;

  constructor(private readonly o: SoakOptions) {
    this.result = {
      durationMs: o.durationMs, rooms: o.rooms ?? 6, accounts: o.users.length, sessionsOpened: 0, peakSessions: 0, logins: 0, loginFailures: 0,
      joins: 0, joinErrors: 0, leaves: 0, drops: 0, cleanCloses: 0, reconnects: 0, sameResourceReconnects: 0, takeovers: 0,
      takeoverConflicts: 0, takeoversUnresolved: 0, sinceJoins: 0, historyOwed: 0, historyReceived: 0, messagesSent: 0, stanzasReceived: 0, requiredDeliveries: 0,
      delivered: 0, losses: 0, duplicates: 0, unexpectedStreamErrors: 0, rssBaselineKiB: 0, rssPeakKiB: 0, rssEndKiB: 0,
      fdBaseline: 0, fdEnd: 0, upstreamSocketsEnd: 0, lossSamples: [], duplicateSamples: [], heapBaselineKiB: 0, heapPeakKiB: 0, heapEndKiB: 0,
      loginFailureSamples: [], streamErrorSamples: [],
    };
  }

  private target(port: number, ca: string): UpstreamTarget {
    return { host: "127.0.0.1", port, tls: "starttls", domain: "localhost", ca: readFileSync(ca), insecure: false, timeoutMs: 20_000,
      limits: { maxStanzaSize: 1 << 20, maxDepth: 64 }, keepaliveMs: 0 };
  }

  /** Sessions the engine acts on: open and not replaced by a newer connection. */
  live(): Session[] {
    return this.sessions.filter((s) => !s.closed && !s.replaced);
  }

  async run(): Promise<SoakResult> {
    const o = this.o;
    const log = o.log ?? (() => undefined);
    const nRooms = o.rooms ?? 6;
    const maxSessions = o.maxSessions ?? 300;
    const rooms = Array.from({ length: nRooms }, (_, i) => `soak-${i}-${randomUUID().slice(0, 6)}@${o.muc}`);
    const proxyTarget = this.target(o.proxyPort, o.proxyCa);

    // observers: one per room, straight on the server; create the room without archiving (the
    // configuration also unlocks the new room, XEP-0045 §10.1.2: it must be accepted)
    const observers: Session[] = [];
    for (const room of rooms) {
      const obs = new Session(o.observer.user, `obs-${randomUUID().slice(0, 6)}`, this);
      await obs.open(this.target(o.upstreamPort, o.upstreamCa), o.observer.pass);
      obs.occupantEvents = new Map();
      obs.join(room, "observer");
      const t = Date.now();
      while (obs.rooms.get(room)?.joinedAt === undefined) {
        if (Date.now() - t > 10_000) throw new Error(`observer could not join ${room}`);
        await sleep(10);
      }
      const configured = new Promise<void>((resolve, reject) => {
        obs.onIq = (id, type, bytes) => {
          if (id !== "cfg") return;
          if (type === "result") resolve();
          else reject(new Error(`room configuration of ${room} refused: ${bytes.toString("utf8").slice(0, 300)}`));
        };
      });
      obs.conn.write(`<iq type='set' id='cfg' to='${room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>` +
        `<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
        `<field var='${o.archivingField}'><value>0</value></field></x></query></iq>`);
      await Promise.race([configured, sleep(10_000).then(() => Promise.reject(new Error(`no answer to the configuration of ${room}`)))]);
      obs.onIq = undefined;
      observers.push(obs);
    }
    const observerOf = new Map(rooms.map((r, i) => [r, observers[i]!]));
    this.observerOf = observerOf;
    // the observer's copy of each message is its reflection time
    for (const [room, obs] of observerOf) {
      obs.onGroupchat = (id, seq) => {
        const m = this.msgs.get(id);
        if (m && m.room === room && m.reflectedAt === undefined) {
          m.reflectedAt = Date.now();
          m.reflectedSeq = seq;
        }
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
    const started = Date.now();
    const churnEnd = started + o.durationMs;
    let connecting = 0;
    const passOf = new Map(o.users.map((u) => [u.user, u.pass]));
    /**
     * A session for `user`: a fresh one, or a phone coming back (`comeback`), which rejoins the rooms
     * it was in once bound, as a real client does. `takeoverOf`: the old session, still open and
     * silent, whose resource this one binds (a network change).
     */
    const connect = (user: string, resource: string, comeback?: { rooms: string[]; sameResource: boolean; from: Session; takeoverOf?: Session }): void => {
      const s = new Session(user, resource, this);
      connecting++;
      this.result.sessionsOpened++;
      s.open(proxyTarget, passOf.get(user)!).then(() => {
        this.sessions.push(s);
        this.result.logins++;
        if (!comeback) return;
        this.result.reconnects++;
        if (comeback.sameResource) this.result.sameResourceReconnects++;
        if (comeback.takeoverOf) {
          this.result.takeovers++;
          comeback.takeoverOf.replacedAt(s.boundAt!);
        }
        if (Date.now() >= churnEnd) return;
        // the same phone: it remembers what it saw, and asks the rooms for what came since (§7.2.15)
        s.predecessor = comeback.from;
        s.lastSeen = new Map(comeback.from.lastSeen);
        for (const room of comeback.rooms) {
          const since = s.lastSeen.get(room);
          s.join(room, nickOf(s), since);
          this.result.joins++;
          if (since !== undefined) this.result.sinceJoins++;
        }
      }, (err: unknown) => {
        this.result.loginFailures++;
        if (this.result.loginFailureSamples.length < 5) this.result.loginFailureSamples.push((err as Error).message);
        log(`login failed: ${(err as Error).message}`);
        // the phone gives up on its old connection too
        const old = comeback?.takeoverOf;
        if (old && !old.closed) old.close(true);
      }).finally(() => connecting--);
    };
    const connectFresh = (): void => connect(pick(o.users)!.user, `s${++this.seq}`);
    /** Phones that went and come back at `at`, with the same resource or a new one. */
    const comebacks: { at: number; user: string; resource: string | undefined; rooms: string[]; from: Session }[] = [];

    const tick = o.tickMs ?? 10;
    let lastSample = 0;
    // ramp-up: half the sessions at once, then churn
    for (let i = 0; i < Math.floor(maxSessions / 2); i++) connectFresh();
    while (Date.now() < churnEnd) {
      // phones coming back whose time has come (each replaces a session that went: not capped)
      for (let i = comebacks.length - 1; i >= 0; i--) {
        const c = comebacks[i]!;
        if (c.at > Date.now()) continue;
        comebacks.splice(i, 1);
        connect(c.user, c.resource ?? `s${++this.seq}`, { rooms: c.rooms, sameResource: c.resource !== undefined, from: c.from });
      }
      const live = this.live();
      const r = Math.random();
      if (r < 0.15) {
        if (live.length + connecting + comebacks.length < maxSessions) connectFresh();
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
        // a session goes; most come back (80 %), half of those on the same resource, and 40 % of
        // those without closing the old connection first (network change: a takeover)
        const s = pick(live);
        if (s) {
          const rooms = [...s.rooms.keys()];
          const back = Math.random() < 0.8;
          const same = back && Math.random() < 0.5;
          if (same && Math.random() < 0.4) {
            s.replaced = true; // silent from now on; its <conflict/> is expected
            connect(s.user, s.resource, { rooms, sameResource: true, from: s, takeoverOf: s });
          } else {
            const abrupt = Math.random() < 0.5;
            s.close(abrupt);
            if (abrupt) this.result.drops++;
            else this.result.cleanCloses++;
            // back at once (racing the old stream's end on the server) or within 3 s
            if (back) comebacks.push({ at: Date.now() + (Math.random() < 0.3 ? 0 : Math.random() * 3000), user: s.user, resource: same ? s.resource : undefined, rooms, from: s });
          }
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
    // old connections of completed takeovers that were never told <conflict/>
    for (const s of this.sessions) {
      if (s.replaced && !s.closed) {
        this.result.takeoversUnresolved++;
        s.close(false);
      }
    }
    this.check(checkAt);
    this.result.stanzasReceived = this.stanzas;

    // back to baseline: no upstream sockets (account sessions close after their last session and room,
    // and the linger the soak's proxy runs with), fds and RSS
    const settleStart = Date.now();
    for (;;) {
      const st = procStatus(o.proxyPid);
      const up = establishedTo(o.proxyPid, o.upstreamPort);
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

  /** Every message vs every session interval (the rules: see the top of this file). */
  private check(checkAt: number): void {
    const res = this.result;
    // per room, the reflection times in order: how many messages the proxy's buffer had to hold
    const reflections = new Map<string, number[]>();
    for (const m of this.msgs.values()) {
      if (m.reflectedAt === undefined) continue;
      let xs = reflections.get(m.room);
      if (!xs) reflections.set(m.room, (xs = []));
      xs.push(m.reflectedAt);
    }
    for (const xs of reflections.values()) xs.sort((a, b) => a - b);
    for (const m of this.msgs.values()) {
      if (m.reflectedAt === undefined) {
        // the room never reflected it (e.g. sender dropped right after writing): nobody owes it
        continue;
      }
      for (const s of this.sessions) {
        const n = s.got.get(m.id) ?? 0;
        if (n > 1) {
          res.duplicates += n - 1;
          if (res.duplicateSamples.length < 10) res.duplicateSamples.push(`${m.id} ${n}× to ${s.jid}`);
        }
        let live = false;
        let history = false;
        for (const p of s.history) {
          if (p.room !== m.room || p.joinedAt === undefined) continue;
          const left = p.leftAt ?? checkAt;
          if (p.joinedAt < m.sentAt && left > m.reflectedAt + LEAVE_GRACE_MS) {
            live = true;
            break;
          }
          history ||= this.owedThroughHistory(s, p, m, left, reflections.get(m.room) ?? []);
        }
        if (!live && !history) continue;
        res.requiredDeliveries++;
        if (!live) res.historyOwed++;
        if (n >= 1) res.delivered++;
        else {
          res.losses++;
          if (res.lossSamples.length < 10) res.lossSamples.push(`${m.id} in ${m.room} sent ${m.sentAt} reflected ${m.reflectedAt} → ${s.jid}${live ? "" : " (owed through history)"}`);
        }
      }
    }
    // the proxy replayed to a comeback what its phone had already seen when it asked
    for (const s of this.sessions) {
      if (!s.predecessor) continue;
      for (const id of s.got.keys()) {
        const m = this.msgs.get(id);
        const since = m && s.history.find((p) => p.room === m.room && p.since !== undefined)?.since;
        if (since === undefined) continue;
        for (let p: Session | undefined = s.predecessor; p; p = p.predecessor) {
          const at = p.seen.get(id);
          if (at === undefined || at > since) continue;
          res.duplicates++;
          if (res.duplicateSamples.length < 10) res.duplicateSamples.push(`${id}: seen by ${p.jid} at ${at}, replayed to its comeback ${s.jid} (since ${since})`);
          break;
        }
      }
    }
  }

  /**
   * A comeback's join `p` with <history since/> owes `m` (sent after since) when the proxy can have
   * it in the room's buffer: the account's occupant was in the room when the room reflected it and
   * stayed until LEAVE_GRACE_MS after the comeback's self-presence (as the observer saw it), fewer
   * than HISTORY_LIMIT messages came between, and the comeback stayed LEAVE_GRACE_MS past both.
   */
  private owedThroughHistory(s: Session, p: Presence, m: Msg, left: number, reflections: number[]): boolean {
    if (p.since === undefined || p.joinedAt === undefined || m.reflectedAt === undefined || m.reflectedSeq === undefined) return false;
    if (m.sentAt <= p.since) return false;
    if (left <= Math.max(m.reflectedAt, p.joinedAt) + LEAVE_GRACE_MS) return false;
    if (countIn(reflections, m.reflectedAt, p.joinedAt) + 1 > HISTORY_LIMIT) return false;
    const evs = this.observerOf.get(m.room)?.occupantEvents?.get(m.room)?.get(s.user) ?? [];
    let presentAtM = false;
    for (const e of evs) {
      if (e.seq < m.reflectedSeq) presentAtM = e.present;
      else if (!e.present && e.at <= p.joinedAt + LEAVE_GRACE_MS) return false; // left after m: its buffer went
    }
    return presentAtM;
  }
}

/** How many of the sorted `xs` are in (from, to]. */
function countIn(xs: number[], from: number, to: number): number {
  const upper = (v: number): number => {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[mid] as number) <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return to <= from ? 0 : upper(to) - upper(from);
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
    `| reconnects (same user, rooms rejoined) / of them on the same resource | ${r.reconnects} / ${r.sameResourceReconnects} |`,
    `| takeovers: same-resource reconnects with the old connection open / old streams ended by \`<conflict/>\` / never ended | ${r.takeovers} / ${r.takeoverConflicts} / ${r.takeoversUnresolved} |`,
    `| comeback joins with \`<history since/>\` / deliveries owed only through that history / soak messages received as history | ${r.sinceJoins} / ${r.historyOwed} / ${r.historyReceived} |`,
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
