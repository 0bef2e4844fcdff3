/**
 * Hot-path A/B: the room fan-out, the room replay and the TLS write coalescing of two builds in one
 * process, interleaved (the three "before → after" rows of bench/CHANGES.md for commit c40e770).
 *
 *   npm run bench:hotpath -- [--base <rev>] [--head <rev>|worktree] [--rounds N] [--ms N] [--only fanout,replay,coalesce]
 *   (= npm run build && node dist/bench/hotpath-ab.js …)
 *
 *   npm run bench:hotpath -- --base e2dabe7 --head c40e770     # the change itself
 *   npm run bench:hotpath -- --base e2dabe7 --head HEAD        # the change against today's code
 *
 * Defaults: base HEAD, head = the working tree, 51 rounds of ~20 ms of CPU per build and case.
 * Each build is core/ and proxy/stream/ of its revision, compiled the same way (bench/ab/load-rev.ts);
 * rounds, rotation, the noise control (the base loaded a second time) and the ratios are those of
 * bench/framer-ab.ts (bench/ab/rounds.ts). Figures are CPU time (process.cpuUsage) of this process.
 *
 *  - fanout: what the proxy does with one ≈ 300-byte groupchat message's bytes — the room fast path
 *    (machine.fromRoomBytes, issue 15) where the build has it, else parse (ltx, the build's
 *    parseStanza) + machine.fromRoom — and the serialization of each session's copy (action.xml()
 *    where the build has it, else stanza.toString()), for a room joined through the machine's public
 *    API with K = 4 sessions.
 *    µs per message and per delivery.
 *  - replay: a new session joins 50 rooms the account is in, each with 20 occupants (19 others and
 *    the account's own nick) and a subject; every stanza it is answered with from state is
 *    serialized. CPU ms per 50 joins (the session is then dropped with sessionGone, not timed).
 *    "first of a state": the same joins on a freshly built machine each time (built outside the
 *    timing), i.e. the first replay after the room state was received, templates not yet made.
 *  - coalesce: the build's XmppConnection writes 171-byte stanzas on the server end of a TLS
 *    loopback pair (one pair per build); the client end, plain node:tls and the same for every build,
 *    reads them. 4 stanzas per tick and 1 per tick (setImmediate between bursts). CPU of both ends
 *    (one process) per stanza. e2dabe7 writes each stanza on its own; c40e770 and later cork the TLS
 *    socket for the rest of the tick.
 *
 * The machine class is whichever the revision exports: RoomMachine (core/muc/room-machine.ts, today)
 * or AccountRooms (core/muc/account.ts, up to the renaming); their public methods are the same.
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { Element, parse } from "ltx";
import { generateSelfSigned } from "../tls/dev-cert.js";
import { type LoadedRev, loadRev } from "./ab/load-rev.js";
import { arg, compare, cpuUs, interleave, iterationsFor, loadTrio, ratioCell, type Comparison, type Trio } from "./ab/rounds.js";

// ---- what is used of a build (structural: the same for every revision measured) ----

interface ActionLike {
  kind: string;
  stanza?: Element;
  xml?(): string;
}
interface Machine {
  setAccountSessionJid(fullJid: string): void;
  fromSession(session: string, stanza: Element, now: number): ActionLike[];
  fromRoom(stanza: Element, now: number): ActionLike[];
  /** Builds from issue 15 on: the room fast path from bytes (undefined: parse and use fromRoom). */
  fromRoomBytes?(bytes: Buffer, now: number): ActionLike[] | undefined;
  accountSessionUp(now: number): ActionLike[];
  sessionGone(session: string, now: number): ActionLike[];
}
type MachineClass = new (accountBareJid: string) => Machine;
interface Connection {
  write(data: string | Buffer): boolean;
}
type ConnectionClass = new (socket: tls.TLSSocket, handler: object, opts: { limits: { maxStanzaSize: number; maxDepth: number }; keepaliveMs: number }) => Connection;

interface Build {
  label: string;
  machineName: string;
  Machine: MachineClass;
  parseStanza: (bytes: Buffer | string) => Element;
  Connection: ConnectionClass;
}

async function load(rev: string): Promise<Build> {
  const r: LoadedRev = await loadRev(rev, ["core", "proxy/stream"]);
  const [file, name] = r.has("core/muc/room-machine.js") ? ["core/muc/room-machine.js", "RoomMachine"] : ["core/muc/account.js", "AccountRooms"];
  const mm = await r.load<Record<string, unknown>>(file);
  const Machine = mm[name] as MachineClass | undefined;
  if (typeof Machine !== "function") throw new Error(`${r.label}: ${file} does not export ${name}`);
  const em = await r.load<{ parseStanza: Build["parseStanza"] }>("core/xml/element.js");
  const cm = await r.load<{ XmppConnection: ConnectionClass }>("proxy/stream/xmpp-connection.js");
  return { label: r.label, machineName: name, Machine, parseStanza: em.parseStanza, Connection: cm.XmppConnection };
}

/** Serializes what a toSession action carries, as the proxy writes it (sessionXml: xml() if present). */
function written(actions: ActionLike[]): { n: number; bytes: number } {
  let n = 0;
  let bytes = 0;
  for (const a of actions) {
    if (a.kind !== "toSession") continue;
    n++;
    bytes += (a.xml ? a.xml() : a.stanza!.toString()).length;
  }
  return { n, bytes };
}

// ---- fixtures (ltx is one package for every build: the elements are built the same way) ----

const ACCOUNT = "alice@example.org";
const ACCOUNT_SESSION = `${ACCOUNT}/minimix-4f2a9c`;
const SESSIONS = ["phone", "laptop", "tablet", "desktop"].map((r) => `${ACCOUNT}/${r}`);
const MUC = "conference.example.org";

function x(xml: string): Element {
  const el = parse(xml);
  if (!(el instanceof Element)) throw new Error("not an element");
  return el;
}
const joinOf = (room: string, nick: string): Element =>
  x(`<presence to='${room}/${nick}'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='np5kvDdYfcMAkyzbiKMb3H9JLnc='/><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
const occupantOf = (room: string, nick: string, codes: string[] = []): Element =>
  x(`<presence from='${room}/${nick}' to='${ACCOUNT_SESSION}'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='np5kvDdYfcMAkyzbiKMb3H9JLnc='/>` +
    `<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant' jid='${nick}@example.org/phone-77'/>` +
    `${codes.map((c) => `<status code='${c}'/>`).join("")}</x></presence>`);
const subjectOf = (room: string): Element =>
  x(`<message type='groupchat' from='${room}/bob' to='${ACCOUNT_SESSION}'><subject>Release planning, week 48</subject></message>`);

/** A room the account is in: `nicks` other occupants, its own presence (110), the subject. */
function fillRoom(m: Machine, room: string, nicks: number, now: number): void {
  for (let i = 0; i < nicks; i++) m.fromRoom(occupantOf(room, i === 0 ? "bob" : `user${i}`), now);
  m.fromRoom(occupantOf(room, "alice", ["110", "100", "170"]), now);
  m.fromRoom(subjectOf(room), now);
}

// ---- fan-out ----

const FANOUT_ROOM = `lounge@${MUC}`;
const GROUPCHAT = Buffer.from(
  `<message from='${FANOUT_ROOM}/bob' to='${ACCOUNT_SESSION}' type='groupchat' id='0b6e2f1c-77aa-4d1e'>` +
  "<body>Has anyone looked at the new release notes yet?</body>" +
  `<stanza-id xmlns='urn:xmpp:sid:0' id='5f3c9a1e-2b7d-4e8f-a1c3' by='${FANOUT_ROOM}'/></message>`,
);

function fanoutMachine(b: Build): Machine {
  const m = new b.Machine(ACCOUNT);
  m.setAccountSessionJid(ACCOUNT_SESSION);
  m.fromSession(SESSIONS[0]!, joinOf(FANOUT_ROOM, "alice"), 1000);
  m.accountSessionUp(1000);
  fillRoom(m, FANOUT_ROOM, 1, 1001);
  for (const s of SESSIONS.slice(1)) m.fromSession(s, joinOf(FANOUT_ROOM, "alice"), 1002); // answered from state
  const got = written(route(b, m, Buffer.from(GROUPCHAT), 1003));
  if (got.n !== SESSIONS.length) throw new Error(`${b.label}: fan-out gave ${got.n} copies, expected ${SESSIONS.length}`);
  return m;
}

/** What the proxy does with a room message's bytes: the fast path where the build has one, else parse + fromRoom. */
function route(b: Build, m: Machine, bytes: Buffer, now: number): ActionLike[] {
  return m.fromRoomBytes?.(bytes, now) ?? m.fromRoom(b.parseStanza(bytes), now);
}

function runFanout(b: Build, m: Machine, iterations: number): number {
  let sink = 0;
  const bytes = Buffer.from(GROUPCHAT);
  const us = cpuUs(() => {
    for (let i = 0; i < iterations; i++) sink += written(route(b, m, bytes, 2000)).bytes;
  });
  if (sink === 0) throw new Error("nothing written");
  return us;
}

// ---- replay ----

const REPLAY_ROOMS = Array.from({ length: 50 }, (_, i) => `room${i}@${MUC}`);
const NEWCOMER = `${ACCOUNT}/laptop`;

/** The account in 50 rooms of 20 occupants, joined by one session; nobody was answered from state yet. */
function roomsOf50(b: Build): Machine {
  const m = new b.Machine(ACCOUNT);
  m.setAccountSessionJid(ACCOUNT_SESSION);
  for (const room of REPLAY_ROOMS) m.fromSession(SESSIONS[0]!, joinOf(room, "alice"), 1000);
  m.accountSessionUp(1000);
  for (const room of REPLAY_ROOMS) fillRoom(m, room, 19, 1001);
  return m;
}

function replayMachine(b: Build): { m: Machine; stanzas: number } {
  const m = roomsOf50(b);
  const joins = REPLAY_ROOMS.map((room) => joinOf(room, "alice"));
  let stanzas = 0;
  for (const j of joins) stanzas += written(m.fromSession(NEWCOMER, j, 1002)).n;
  m.sessionGone(NEWCOMER, 1002);
  if (stanzas < REPLAY_ROOMS.length * 21) throw new Error(`${b.label}: replay gave ${stanzas} stanzas, expected ≥ ${REPLAY_ROOMS.length * 21}`);
  return { m, stanzas };
}

/** CPU µs of `iterations` rejoins of 50 rooms (join elements built and sessionGone run outside the timing). */
function runReplay(m: Machine, iterations: number): number {
  let us = 0;
  for (let i = 0; i < iterations; i++) {
    const joins = REPLAY_ROOMS.map((room) => joinOf(room, "alice"));
    us += cpuUs(() => {
      for (const j of joins) written(m.fromSession(NEWCOMER, j, 2000));
    });
    m.sessionGone(NEWCOMER, 2000);
  }
  return us;
}

/**
 * The same, but each time on a fresh machine (built outside the timing): the first replay of a
 * state, where c40e770 and later also make the per-element templates they then keep.
 */
function runReplayFirst(b: Build, iterations: number): number {
  let us = 0;
  for (let i = 0; i < iterations; i++) {
    const m = roomsOf50(b);
    const joins = REPLAY_ROOMS.map((room) => joinOf(room, "alice"));
    us += cpuUs(() => {
      for (const j of joins) written(m.fromSession(NEWCOMER, j, 2000));
    });
  }
  return us;
}

// ---- write coalescing ----

const STANZA = "<message to='bob@example.org/phone-1a2b' type='chat' id='a1b2c3d4-e5f6'><body>Hello Bob, are we still on for the meeting later today at five? Bring notes.</body></message>";

interface Pair {
  conn: Connection;
  received: number;
  wait(total: number): Promise<void>;
  close(): void;
}

async function tlsPair(b: Build, pem: { cert: string; key: string }): Promise<Pair> {
  const server = tls.createServer({ cert: pem.cert, key: pem.key });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "secureConnection") as Promise<[tls.TLSSocket]>;
  const client = tls.connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, ca: pem.cert, servername: "localhost" });
  await once(client, "secureConnect");
  const [sock] = await accepted;
  const noop = (): void => undefined;
  const conn = new b.Connection(sock, { onOpen: noop, onStanza: noop, onClose: noop, onFramingError: noop, onSocketClosed: noop },
    { limits: { maxStanzaSize: 1 << 16, maxDepth: 32 }, keepaliveMs: 0 });
  const pair: Pair = {
    conn,
    received: 0,
    wait: (total) => new Promise<void>((resolve) => {
      const check = (): void => {
        if (pair.received >= total) {
          client.off("data", check);
          resolve();
        }
      };
      client.on("data", check);
      check();
    }),
    close: () => {
      client.destroy();
      sock.destroy();
      server.close();
    },
  };
  client.on("data", (d: Buffer) => { pair.received += d.length; });
  return pair;
}

const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** CPU µs (both ends) of `bursts` bursts of `perTick` stanzas, one burst per event-loop turn, until all is read. */
async function runCoalesce(p: Pair, bursts: number, perTick: number): Promise<number> {
  const target = p.received + bursts * perTick * Buffer.byteLength(STANZA);
  const c0 = process.cpuUsage();
  for (let i = 0; i < bursts; i++) {
    for (let k = 0; k < perTick; k++) p.conn.write(STANZA);
    await nextTick();
  }
  await p.wait(target);
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

// ---- main ----

function line(name: string, unit: string, c: Comparison, scale: number, digits: number): string {
  const f = (v: number): string => (v * scale).toFixed(digits).padStart(9);
  return `${name.padEnd(32)} ${unit.padEnd(5)} ${f(c.base)} ${f(c.head)}   ${ratioCell(c.headRatio)}   ${ratioCell(c.controlRatio)}`;
}

async function main(): Promise<void> {
  const baseRev = arg("base", "HEAD");
  const headRev = arg("head", "worktree");
  const rounds = Number(arg("rounds", "51"));
  const targetMs = Number(arg("ms", "20"));
  const only = new Set(arg("only", "fanout,replay,coalesce").split(","));
  const trio: Trio<Build> = await loadTrio(baseRev, headRev, load);
  const { base, head } = trio;
  const builds = trio.all;
  console.log(`hot-path A/B: base ${base.label} (${baseRev}, ${base.machineName}) vs head ${head.label} (${headRev}, ${head.machineName}), ` +
    `control = base loaded again; ${rounds} rounds of ~${targetMs} ms per build; node ${process.version}`);
  console.log("CPU per unit, median over rounds; ratios: median of the per-round ratios (min–max), then the ratio of the fastest rounds");
  console.log("case                             unit       base      head   head÷base                      fastest   control÷base (noise)      fastest");

  if (only.has("fanout")) {
    const machines = new Map(builds.map((b) => [b, fanoutMachine(b)]));
    const probe = Math.ceil(250 * targetMs); // warm-up and calibration: 5000 at the default 20 ms
    for (const b of builds) runFanout(b, machines.get(b)!, probe);
    const n = iterationsFor(probe, runFanout(base, machines.get(base)!, probe), targetMs, 100);
    const us = await interleave(builds, rounds, (b) => runFanout(b, machines.get(b)!, n) / n);
    const c = compare(us, trio);
    console.log(line(`fanout K=4, ${GROUPCHAT.length} B, message`, "µs", c, 1, 2));
    console.log(line("fanout K=4, per delivery", "µs", c, 1 / SESSIONS.length, 2));
  }

  if (only.has("replay")) {
    const setups = new Map(builds.map((b) => [b, replayMachine(b)]));
    const probe = Math.ceil(targetMs); // 20 rejoins at 20 ms
    for (const b of builds) runReplay(setups.get(b)!.m, probe);
    const n = iterationsFor(probe, runReplay(setups.get(base)!.m, probe), targetMs, 1);
    const us = await interleave(builds, rounds, (b) => runReplay(setups.get(b)!.m, n) / n);
    const c = compare(us, trio);
    console.log(line(`replay 50×20 (${setups.get(base)!.stanzas} st.)`, "ms", c, 1 / 1000, 3));
    // the first replay of a fresh state: fewer rounds' worth of iterations, each needs a new machine
    for (const b of builds) runReplayFirst(b, 2);
    const nf = iterationsFor(2, runReplayFirst(base, 2), targetMs, 1);
    const first = compare(await interleave(builds, rounds, (b) => runReplayFirst(b, nf) / nf), trio);
    console.log(line("replay 50×20, first of a state", "ms", first, 1 / 1000, 3));
  }

  if (only.has("coalesce")) {
    const pem = generateSelfSigned(["localhost"]);
    const pairs = new Map<Build, Pair>();
    for (const b of builds) pairs.set(b, await tlsPair(b, pem));
    for (const perTick of [4, 1]) {
      const per = (b: Build, bursts: number): Promise<number> => runCoalesce(pairs.get(b)!, bursts, perTick);
      const probe = Math.ceil(100 * targetMs); // 2000 bursts at 20 ms
      for (const b of builds) await per(b, probe);
      const bursts = iterationsFor(probe, await per(base, probe), targetMs, 20);
      const us = await interleave(builds, rounds, async (b) => (await per(b, bursts)) / (bursts * perTick));
      const c = compare(us, trio);
      console.log(line(`TLS ${Buffer.byteLength(STANZA)} B, ${perTick} per tick, stanza`, "µs", c, 1, 2));
    }
    for (const p of pairs.values()) p.close();
  }
}

await main();
