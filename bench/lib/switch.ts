/**
 * Measurement 6 (issue 11): back after a network switch. alice is in R rooms (with other occupants);
 * her connection is cut abruptly (socket destroyed, no `</stream:stream>`); while she is away a room
 * occupant posts room messages and carol sends her 1:1 messages; then she comes back. Timed from
 * the new TCP connect until every missed message has reached her, three ways:
 *
 * - `full`: direct to Prosody without stream management — log in, bind, a MAM query (XEP-0313) for
 *   the 1:1 messages since the cut, available presence, and every room rejoined with `<history since>`,
 *   pipelined in one write. The MAM query goes first as MAM clients do it: Prosody then skips its
 *   offline-storage copies at the presence (mod_mam sets `mam_requested`), so each message arrives once.
 *   No roster, disco or carbons: the least a client can do.
 * - `sm`: direct to Prosody with its own XEP-0198 (mod_smacks): `<enable resume='true'/>` after bind,
 *   and `<resume previd h/>` after SASL on the new connection; Prosody resends what it queued.
 * - `proxy`: the same protocol against the proxy — only when the proxy offers `<sm xmlns='urn:xmpp:sm:3'/>`
 *   after authentication and grants resumption; otherwise the path is reported as not supported.
 *
 * The paths use separate rooms (the same number, the same occupants) and their rounds are interleaved.
 */
import { occupy } from "./measure.js";
import { joinPresence, joinRooms, type Path, resource } from "./paths.js";
import { nowMs } from "./procs.js";
import { type Summary, perRound, ratioOf, summarize } from "./stats.js";
import { BenchClient, NS_SM, escapeAttr, sleep } from "./xmpp.js";

type Cred = { user: string; pass: string };

export type SwitchKind = "full" | "sm" | "proxy";

export interface SwitchOptions {
  /** Rooms alice is in. */
  rooms: number;
  /** Occupants per room besides alice (resources of bob; the first one posts the room messages). */
  occupants: number;
  /** Room messages posted while she is away (round-robin over the rooms). */
  roomMessages: number;
  /** 1:1 messages carol sends to her bare JID while she is away. */
  chats: number;
  /** How long the messages are spread over while she is away (ms). */
  outageMs: number;
}

export interface SwitchRound {
  /** new TCP connect → every missed message received (ms). */
  totalMs: number;
  /** new TCP connect → authenticated (TLS, SASL PLAIN, stream restart). */
  loginMs: number;
  /** authenticated → every missed message received: bind+rejoin+MAM, or the resume. */
  restoreMs: number;
  /** Application bytes and stanzas received on the new connection until then. */
  bytes: number;
  stanzas: number;
  /** Missed messages received (once each), and extra copies seen up to 200 ms after the last. */
  delivered: number;
  duplicates: number;
}

export interface SwitchSide {
  totalMs: Summary;
  loginMs: Summary;
  restoreMs: Summary;
  bytes: Summary;
  stanzas: Summary;
  /** Fewest missed messages delivered in any round, of `expected`; most duplicates in any round. */
  delivered: number;
  expected: number;
  duplicates: number;
}

export interface Unsupported {
  supported: false;
  reason: string;
}

export interface SwitchResults {
  options: SwitchOptions;
  full: SwitchSide;
  sm: SwitchSide;
  proxy: SwitchSide | Unsupported;
  /** full ÷ sm, per round: how much faster the server's own resume is than a full reconnect. */
  smSpeedup: Summary;
  /** proxy ÷ sm (target ≤ 1) and full ÷ proxy (target ≥ 10), per round; absent when the proxy path is not supported. */
  proxyVsSm?: Summary;
  proxySpeedup?: Summary;
}

export function isSupported<T extends object>(x: T | Unsupported): x is T {
  return !("supported" in x && x.supported === false);
}

/** Whether `path` offers XEP-0198 with resumption to alice: undefined if it does, else why not. */
export async function smUnsupported(path: Path, alice: Cred): Promise<string | undefined> {
  const c = await BenchClient.open(path.ep, alice.user, alice.pass);
  try {
    if (!c.offers(NS_SM)) return `the ${path.name} does not offer \`<sm xmlns='${NS_SM}'/>\` after authentication`;
    await c.bind(resource("swprobe"));
    const sm = await c.enableSm().catch((err: Error) => err);
    if (sm instanceof Error) return `the ${path.name} refused \`<enable/>\`: \`${sm.message}\``;
    if (sm.id === undefined) return `the ${path.name} enabled stream management without resumption`;
    return undefined;
  } finally {
    c.end();
  }
}

/** Everything a round needs besides the path: the occupant posting room messages and carol's connection. */
export interface SwitchPeers {
  roomSender: BenchClient;
  carol: BenchClient;
  alice: Cred;
}

function chatTo(to: string, id: string, body: string): string {
  // no no-store hint: Prosody's MAM archives it, which is how a full reconnect gets it back
  return `<message to='${escapeAttr(to)}' type='chat' id='${id}'><body>${body}</body></message>`;
}

function roomMessage(room: string, id: string, body: string): string {
  return `<message to='${escapeAttr(room)}' type='groupchat' id='${id}'><body>${body}</body></message>`;
}

function mamSince(id: string, since: string): string {
  return `<iq type='set' id='${id}'><query xmlns='urn:xmpp:mam:2' queryid='${id}'><x xmlns='jabber:x:data' type='submit'>` +
    `<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='start'><value>${since}</value></field></x>` +
    `<set xmlns='http://jabber.org/protocol/rsm'><max>500</max></set></query></iq>`;
}

/**
 * One switch of alice on `path` (`kind`): connect, join `rooms`, cut, miss messages, come back.
 * Throws when the way back fails (e.g. `<failed/>` to a resume) or a missed message never arrives.
 */
export async function switchRound(kind: SwitchKind, path: Path, peers: SwitchPeers, rooms: string[], round: number, o: SwitchOptions): Promise<SwitchRound> {
  const { alice } = peers;
  const res = `sw${kind}${round}-${process.pid.toString(36)}`;
  const first = await BenchClient.open(path.ep, alice.user, alice.pass);
  await first.bind(res);
  if (kind !== "full") {
    const sm = await first.enableSm();
    if (sm.id === undefined) throw new Error(`${kind}: stream management enabled without resumption`);
  }
  first.send("<presence/>");
  await joinRooms(first, rooms, "alice");
  const bare = first.jid.slice(0, first.jid.indexOf("/"));
  const prev = { jid: first.jid, sm: first.sm };

  // the cut: no </stream:stream>; give the server a moment to see the connection go
  const dropAt = Date.now();
  first.close();
  await sleep(Math.min(100, o.outageMs / 4));

  // what she misses, spread over the outage
  const tag = `${kind}${round}x${Math.random().toString(36).slice(2, 7)}`;
  const roomTags = Array.from({ length: o.roomMessages }, (_, i) => `swr-${tag}-${i}z`);
  const chatTags = Array.from({ length: o.chats }, (_, i) => `swc-${tag}-${i}z`);
  const echoes = Promise.all(roomTags.map((t) => peers.roomSender.waitFor((n, b) => n === "message" && b.includes(t), 30_000, `echo ${t}`)));
  const steps = 10;
  for (let s = 0; s < steps; s++) {
    const part = (xs: string[]): string[] => xs.slice(Math.floor((xs.length * s) / steps), Math.floor((xs.length * (s + 1)) / steps));
    const rm = part(roomTags).map((t) => roomMessage(rooms[roomTags.indexOf(t) % rooms.length]!, t, t)).join("");
    if (rm) peers.roomSender.send(rm);
    const cm = part(chatTags).map((t) => chatTo(bare, t, t)).join("");
    if (cm) peers.carol.send(cm);
    await sleep(o.outageMs / steps);
  }
  await echoes;
  // carol's messages are handled in order: once her ping is answered, every one of them was routed
  const pingId = `swp-${tag}`;
  const pong = peers.carol.waitFor((n, b) => n === "iq" && b.includes(pingId), 30_000, "carol's ping");
  peers.carol.send(`<iq type='get' id='${pingId}'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await pong;
  await sleep(50);

  // back
  const since = new Date(dropAt - 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const pending = new Set([...roomTags, ...chatTags]);
  const seen = new Map<string, number>();
  const t0 = nowMs();
  const c = await BenchClient.open(path.ep, alice.user, alice.pass);
  const tAuth = nowMs();
  let tDone = 0;
  let bytes = 0;
  let stanzas = 0;
  try {
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} R=${rooms.length}: ${pending.size} missed messages never arrived (${[...pending].slice(0, 6).join(", ")}${pending.size > 6 ? ", …" : ""})`)), 60_000);
      c.onStanza((name, b) => {
        if (name !== "message" || !b.includes("sw")) return;
        for (const t of [...roomTags, ...chatTags]) {
          if (!b.includes(t)) continue;
          seen.set(t, (seen.get(t) ?? 0) + 1);
          pending.delete(t);
          break;
        }
        if (pending.size === 0 && tDone === 0) {
          tDone = nowMs();
          bytes = c.bytesTotal;
          stanzas = c.stanzasIn;
          clearTimeout(timer);
          resolve();
        }
      });
    });
    if (kind === "full") {
      await c.bind(res);
      // MAM first, as MAM clients do: Prosody then does not also push its offline copies at the presence (mod_mam's mam_requested)
      c.send(mamSince(`mam-${tag}`, since) + "<presence/>" + rooms.map((r) => joinPresence(r, "alice", `<history since='${since}'/>`)).join(""));
    } else {
      if (!prev.sm) throw new Error(`${kind}: no stream management state to resume`);
      const r = await c.resume({ jid: prev.jid, sm: prev.sm });
      if (!r.resumed) throw new Error(`${kind}: resume refused: ${r.answer}`);
    }
    await done;
    await sleep(200); // duplicates, if any, arrive right behind
  } finally {
    c.end();
  }
  await sleep(150);
  const delivered = [...seen.keys()].length;
  const duplicates = [...seen.values()].reduce((a, n) => a + n - 1, 0);
  return { totalMs: tDone - t0, loginMs: tAuth - t0, restoreMs: tDone - tAuth, bytes, stanzas, delivered, duplicates };
}

export function switchSide(rs: SwitchRound[], expected: number): SwitchSide {
  return {
    totalMs: summarize(rs.map((x) => x.totalMs)),
    loginMs: summarize(rs.map((x) => x.loginMs)),
    restoreMs: summarize(rs.map((x) => x.restoreMs)),
    bytes: summarize(rs.map((x) => x.bytes)),
    stanzas: summarize(rs.map((x) => x.stanzas)),
    delivered: Math.min(...rs.map((x) => x.delivered)),
    expected,
    duplicates: Math.max(...rs.map((x) => x.duplicates)),
  };
}

/** The per-round ratios of the three paths. */
export function switchRatios(raw: Record<SwitchKind, SwitchRound[]>, proxySupported: boolean): Pick<SwitchResults, "smSpeedup" | "proxyVsSm" | "proxySpeedup"> {
  const t = (k: SwitchKind): number[] => raw[k].map((x) => x.totalMs);
  return {
    smSpeedup: ratioOf(t("full"), t("sm")),
    ...(proxySupported ? { proxyVsSm: ratioOf(t("proxy"), t("sm")), proxySpeedup: ratioOf(t("full"), t("proxy")) } : {}),
  };
}

// ---------------------------------------------------------------------------- the measurement

export interface SwitchEnv {
  direct: Path;
  proxy: Path;
  muc: string;
}

/**
 * The whole measurement: occupants in every room, one warm-up round per path (the proxy's account
 * joins its rooms there), then `rounds` rounds with the paths' order rotating.
 */
export async function measureSwitch(o: SwitchOptions, rounds: number, env: SwitchEnv, u: { alice: Cred; bob: Cred; carol: Cred }, log: (m: string) => void): Promise<SwitchResults> {
  const why = await smUnsupported(env.proxy, u.alice);
  if (why) log(`  proxy path: not supported (${why})`);
  const kinds: SwitchKind[] = why ? ["full", "sm"] : ["full", "sm", "proxy"];
  const tag = process.pid.toString(36);
  const roomsOf = (k: SwitchKind): string[] => Array.from({ length: o.rooms }, (_, i) => `sw-${k}-${tag}-${i}@${env.muc}`);
  const pathOf = (k: SwitchKind): Path => (k === "proxy" ? env.proxy : env.direct);
  const occ = await occupy(env.direct, u.bob, kinds.flatMap(roomsOf), Math.max(1, o.occupants));
  const carol = await BenchClient.connect(env.direct.ep, u.carol.user, u.carol.pass, resource("swcarol"));
  const peers: SwitchPeers = { roomSender: occ[0]!, carol, alice: u.alice };
  const raw: Record<SwitchKind, SwitchRound[]> = { full: [], sm: [], proxy: [] };
  try {
    let round = 0;
    for (const k of kinds) await switchRound(k, pathOf(k), peers, roomsOf(k), round++, o); // warm-up
    await perRound(rounds, kinds, async (k) => {
      const r = await switchRound(k, pathOf(k), peers, roomsOf(k), round++, o);
      raw[k].push(r);
      log(`  ${k}: ${r.totalMs.toFixed(0)} ms (login ${r.loginMs.toFixed(0)}), ${r.delivered} delivered, ${r.duplicates} duplicates`);
    });
  } finally {
    carol.close();
    for (const c of occ) c.close();
  }
  const expected = o.roomMessages + o.chats;
  return {
    options: o,
    full: switchSide(raw.full, expected),
    sm: switchSide(raw.sm, expected),
    proxy: why ? { supported: false, reason: why } : switchSide(raw.proxy, expected),
    ...switchRatios(raw, !why),
  };
}
