/**
 * Measurement 7 (issue 11): an inactive phone in busy rooms. alice's phone joins R rooms and sends
 * `<inactive xmlns='urn:xmpp:csi:0'/>` (XEP-0352); for S seconds a driver (resources of bob, each in
 * every room) makes the rooms busy — status changes, occupants leaving and coming back, chat states
 * (XEP-0085, no body), and a few messages with a body; then the phone sends `<active/>` and gets what
 * was held. Counted on the wire in front of the phone (bench/lib/wire.ts: TLS bytes, TLS records,
 * bursts), from `<inactive/>` until the flush after `<active/>` has gone quiet.
 *
 * The phones run at the same time, in the same rooms, under the same traffic:
 * - `direct`: straight to Prosody 0.12 with mod_csi_simple (holds presences and body-less messages,
 *   flushes on a body, a subject, an IQ, anything the client sends, or 256 held stanzas);
 * - `active`: straight to Prosody, never inactive — the reference for what CSI saves at all;
 * - `proxy`: through the proxy — only when it offers `<csi xmlns='urn:xmpp:csi:0'/>` and an inactive
 *   phone is really spared a room presence (a probe before the rounds); otherwise the path is reported
 *   as not supported.
 * No phone enables stream management here, so `<r/>`/`<a/>` traffic is on no path.
 */
import { occupy } from "./measure.js";
import { BenchClient, escapeAttr, NS_CSI, sleep } from "./xmpp.js";
import { joinPresence, joinRooms, type Path, resource } from "./paths.js";
import { type Summary, ratioOf, summarize } from "./stats.js";
import type { Unsupported } from "./switch.js";
import { type WireConn, type WireCounts, WirePipe } from "./wire.js";

type Cred = { user: string; pass: string };

export type PhoneKind = "direct" | "active" | "proxy";

export interface InactiveOptions {
  rooms: number;
  /** Driver occupants (resources of bob), each in every room. */
  occupants: number;
  /** How long the phone stays inactive while the rooms are busy. */
  seconds: number;
  /** Presence changes and chat states per second, over all rooms. */
  eventsPerSecond: number;
  /** Messages with a body, evenly spread over the window. */
  bodies: number;
  /** Silence that separates two bursts on the wire (ms). */
  burstGapMs: number;
  /** Rounds of this measurement (each `seconds` long). */
  rounds: number;
}

export interface PhoneRound {
  /** While inactive (the driver's window). */
  window: WireCounts;
  /** After `<active/>`, until quiet: what was held and is delivered then. */
  flush: WireCounts;
  /** Stanzas the phone received in both. */
  stanzas: number;
  /** Messages with a body the phone received, of the round's `bodies`. */
  bodies: number;
}

export interface PhoneSide {
  /** window + flush */
  bytes: Summary;
  records: Summary;
  bursts: Summary;
  windowBytes: Summary;
  windowBursts: Summary;
  flushBytes: Summary;
  stanzas: Summary;
  /** Fewest bodies delivered in any round, of `bodiesSent` per round. */
  bodiesDelivered: number;
  bodiesSent: number;
}

export interface DriverCounts {
  presences: number;
  chatStates: number;
  bodies: number;
}

export interface InactiveResults {
  options: InactiveOptions;
  /** What the driver sent per round (median). */
  driven: DriverCounts;
  direct: PhoneSide;
  active: PhoneSide;
  proxy: PhoneSide | Unsupported;
  /** direct ÷ active per round: what Prosody's own CSI saves. */
  directVsActive: { bytes: Summary; bursts: Summary };
  /** proxy ÷ direct per round (targets ≤ 0.5); absent when the proxy path is not supported. */
  proxyVsDirect?: { bytes: Summary; bursts: Summary; records: Summary };
}

// ---------------------------------------------------------------------------- the driver

/** mulberry32: a small seeded PRNG, so every round's traffic is generated the same way. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  at: number;
  kind: "presence" | "chatstate" | "body";
  occ: number;
  room: number;
}

/** The round's schedule: random times and kinds for the churn, bodies evenly spread. */
export function schedule(o: InactiveOptions, seed: number): Event[] {
  const rnd = prng(seed);
  const ms = o.seconds * 1000;
  const out: Event[] = [];
  const n = Math.round(o.seconds * o.eventsPerSecond);
  for (let i = 0; i < n; i++) {
    out.push({ at: rnd() * ms, kind: rnd() < 0.6 ? "presence" : "chatstate", occ: Math.floor(rnd() * o.occupants), room: Math.floor(rnd() * o.rooms) });
  }
  for (let k = 0; k < o.bodies; k++) out.push({ at: ((k + 0.5) * ms) / o.bodies, kind: "body", occ: 0, room: k % o.rooms });
  return out.sort((a, b) => a.at - b.at);
}

const CAPS = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='np49dMnbMaBX2Hn3rQ83MnHm0tQ='/>";
const SHOWS = ["away", "xa", "dnd", "chat", ""];
const STATES = ["composing", "paused", "active"];

/**
 * Plays `events` from the occupants (nick occ-i in every room). A presence event is a status change,
 * or, one time in four, the occupant leaving the room (and coming back at its next presence event
 * there); occupant 0 never leaves, so a body always has a sender in the room.
 */
export async function drive(occ: BenchClient[], rooms: string[], events: Event[], tag: string, rnd: () => number, present: Set<string>): Promise<DriverCounts & { tags: string[] }> {
  const counts = { presences: 0, chatStates: 0, bodies: 0, tags: [] as string[] };
  const t0 = performance.now();
  let seq = 0;
  for (let i = 0; i < events.length; ) {
    const wait = events[i]!.at - (performance.now() - t0);
    if (wait > 1) await sleep(wait);
    const now = performance.now() - t0;
    const batch = new Map<number, string>();
    for (; i < events.length && events[i]!.at <= now + 1; i++) {
      const e = events[i]!;
      const room = rooms[e.room]!;
      const nick = `occ-${e.occ}`;
      const key = `${e.occ}:${e.room}`;
      let xml: string;
      if (e.kind === "body") {
        const t = `ib-${tag}-${counts.bodies}`;
        counts.tags.push(t);
        counts.bodies++;
        xml = `<message to='${escapeAttr(room)}' type='groupchat' id='${t}'><body>${t}</body></message>`;
      } else if (!present.has(key)) {
        present.add(key);
        counts.presences++;
        xml = joinPresence(room, nick, "<history maxstanzas='0'/>").replace("</presence>", `${CAPS}</presence>`);
      } else if (e.kind === "presence" && e.occ !== 0 && rnd() < 0.25) {
        present.delete(key);
        counts.presences++;
        xml = `<presence type='unavailable' to='${escapeAttr(room)}/${nick}'/>`;
      } else if (e.kind === "presence") {
        counts.presences++;
        const show = SHOWS[Math.floor(rnd() * SHOWS.length)]!;
        xml = `<presence to='${escapeAttr(room)}/${nick}'>${show ? `<show>${show}</show>` : ""}<status>busy ${seq++}</status>${CAPS}</presence>`;
      } else {
        counts.chatStates++;
        const state = STATES[Math.floor(rnd() * STATES.length)]!;
        xml = `<message to='${escapeAttr(room)}' type='groupchat' id='cs${seq++}'><${state} xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>`;
      }
      batch.set(e.occ, (batch.get(e.occ) ?? "") + xml);
    }
    for (const [o, xml] of batch) occ[o]!.send(xml);
  }
  return counts;
}

// ---------------------------------------------------------------------------- the phones

interface Phone {
  kind: PhoneKind;
  client: BenchClient;
  wire: WireConn;
  bodies: Set<string>;
}

async function openPhone(kind: PhoneKind, pipe: WirePipe, path: Path, alice: Cred, rooms: string[]): Promise<Phone> {
  const wire = pipe.nextConn();
  const client = await BenchClient.open({ ...path.ep, port: pipe.port }, alice.user, alice.pass);
  if (kind !== "active" && !client.offers(NS_CSI)) {
    client.close();
    throw new Error(`the ${path.name} does not offer <csi xmlns='${NS_CSI}'/>`);
  }
  await client.bind(resource(`ip${kind}`));
  const phone: Phone = { kind, client, wire: await wire, bodies: new Set() };
  client.onStanza((name, b) => {
    if (name !== "message" || !b.includes("<body>ib-")) return;
    const m = /<body>(ib-[^<]+)<\/body>/.exec(b.toString());
    if (m) phone.bodies.add(m[1]!);
  });
  client.send("<presence/>");
  await joinRooms(client, rooms, `alice-${kind}`);
  return phone;
}

/** Whether `path` offers CSI to alice after authentication: undefined if it does, else why not. */
export async function csiUnsupported(path: Path, alice: Cred): Promise<string | undefined> {
  const c = await BenchClient.open(path.ep, alice.user, alice.pass);
  try {
    return c.offers(NS_CSI) ? undefined : `the ${path.name} does not offer \`<csi xmlns='${NS_CSI}'/>\` after authentication`;
  } finally {
    c.end();
  }
}

/**
 * Whether an inactive `phone` is spared a room presence: the proxy offers `<csi/>` today because it
 * passes Prosody's feature through (its `<inactive/>` then reaches only the upstream leg), so the
 * feature alone cannot tell whether the proxy holds the room traffic it fans out itself. One status
 * change in a room: held if it has not arrived within `ms`. Undefined if held, else why not.
 */
async function roomTrafficNotHeld(phone: Phone, sender: BenchClient, room: string, ms: number): Promise<string | undefined> {
  phone.client.setInactive();
  await sleep(300);
  const probe = `csi-probe-${Math.random().toString(36).slice(2, 9)}`;
  const got = phone.client.waitFor((n, b) => n === "presence" && b.includes(probe), ms, "probe").then(() => true, () => false);
  sender.send(`<presence to='${escapeAttr(room)}/occ-0'><show>away</show><status>${probe}</status></presence>`);
  const arrived = await got;
  phone.client.setActive();
  await sleep(300);
  return arrived ? `the proxy offers \`<csi xmlns='${NS_CSI}'/>\` but does not hold room traffic for an inactive client (a room presence reached it within ${ms} ms)` : undefined;
}

const minus = (a: WireCounts, b: WireCounts): WireCounts => ({ bytes: a.bytes - b.bytes, records: a.records - b.records, bursts: a.bursts - b.bursts });

/** Waits until no phone has received anything for `quietMs` (at most `maxMs`). */
async function quiet(phones: Phone[], quietMs: number, maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    await sleep(100);
    const now = performance.now();
    if (now > deadline) return;
    if (phones.every((p) => p.wire.lastAt === undefined || now - p.wire.lastAt >= quietMs)) return;
  }
}

export interface InactiveEnv {
  direct: Path;
  proxy: Path;
  /** Direct-TLS ports the wire pipes connect to. */
  directPort: number;
  proxyPort: number;
  muc: string;
}

export async function measureInactive(o: InactiveOptions, env: InactiveEnv, u: { alice: Cred; bob: Cred }, log: (m: string) => void): Promise<InactiveResults> {
  let why = await csiUnsupported(env.proxy, u.alice);
  if (why) log(`  proxy path: not supported (${why})`);
  const kinds: PhoneKind[] = why ? ["direct", "active"] : ["direct", "active", "proxy"];
  const tag = process.pid.toString(36);
  const rooms = Array.from({ length: o.rooms }, (_, i) => `ip-${tag}-${i}@${env.muc}`);
  const pipes = { direct: new WirePipe(env.directPort, o.burstGapMs), proxy: new WirePipe(env.proxyPort, o.burstGapMs) };
  const occ = await occupy(env.direct, u.bob, rooms, Math.max(1, o.occupants));
  const present = new Set(occ.flatMap((_, i) => rooms.map((_r, j) => `${i}:${j}`)));
  const phones: Phone[] = [];
  const raw: Record<PhoneKind, PhoneRound[]> = { direct: [], active: [], proxy: [] };
  const driven: DriverCounts[] = [];
  try {
    await pipes.direct.start();
    await pipes.proxy.start();
    for (const k of kinds) phones.push(await openPhone(k, k === "proxy" ? pipes.proxy : pipes.direct, k === "proxy" ? env.proxy : env.direct, u.alice, rooms));
    const proxyPhone = phones.find((p) => p.kind === "proxy");
    if (proxyPhone) {
      why = await roomTrafficNotHeld(proxyPhone, occ[0]!, rooms[0]!, 1000);
      if (why) {
        log(`  proxy path: not supported (${why})`);
        proxyPhone.client.close();
        phones.splice(phones.indexOf(proxyPhone), 1);
      }
    }
    for (let r = 0; r < o.rounds; r++) {
      for (const p of phones) if (p.kind !== "active") p.client.setInactive();
      await sleep(300);
      for (const p of phones) {
        p.wire.reset();
        p.client.stanzasIn = 0;
        p.bodies.clear();
      }
      const d = await drive(occ, rooms, schedule(o, r + 1), `${tag}r${r}`, prng(1000 + r), present);
      driven.push(d);
      const window = new Map(phones.map((p) => [p.kind, p.wire.snapshot()]));
      for (const p of phones) if (p.kind !== "active") p.client.setActive();
      await quiet(phones, 1000, 15_000);
      for (const p of phones) {
        const total = p.wire.snapshot();
        const w = window.get(p.kind)!;
        raw[p.kind].push({ window: w, flush: minus(total, w), stanzas: p.client.stanzasIn, bodies: d.tags.filter((t) => p.bodies.has(t)).length });
      }
      log(`  round ${r + 1}: ${d.presences} presences, ${d.chatStates} chat states, ${d.bodies} bodies; ` +
        phones.map((p) => { const x = raw[p.kind][r]!; return `${p.kind} ${x.window.bytes + x.flush.bytes} B / ${x.window.bursts + x.flush.bursts} bursts / ${x.bodies} bodies`; }).join(", "));
    }
  } finally {
    for (const p of phones) p.client.close();
    for (const c of occ) c.close();
    await pipes.direct.stop();
    await pipes.proxy.stop();
  }
  const total = (k: PhoneKind, f: keyof WireCounts): number[] => raw[k].map((x) => x.window[f] + x.flush[f]);
  const side = (k: PhoneKind): PhoneSide => ({
    bytes: summarize(total(k, "bytes")),
    records: summarize(total(k, "records")),
    bursts: summarize(total(k, "bursts")),
    windowBytes: summarize(raw[k].map((x) => x.window.bytes)),
    windowBursts: summarize(raw[k].map((x) => x.window.bursts)),
    flushBytes: summarize(raw[k].map((x) => x.flush.bytes)),
    stanzas: summarize(raw[k].map((x) => x.stanzas)),
    bodiesDelivered: Math.min(...raw[k].map((x) => x.bodies)),
    bodiesSent: o.bodies,
  });
  const med = (f: keyof DriverCounts): number => summarize(driven.map((x) => x[f])).median;
  return {
    options: o,
    driven: { presences: med("presences"), chatStates: med("chatStates"), bodies: med("bodies") },
    direct: side("direct"),
    active: side("active"),
    proxy: why ? { supported: false, reason: why } : side("proxy"),
    directVsActive: { bytes: ratioOf(total("direct", "bytes"), total("active", "bytes")), bursts: ratioOf(total("direct", "bursts"), total("active", "bursts")) },
    ...(why ? {} : {
      proxyVsDirect: {
        bytes: ratioOf(total("proxy", "bytes"), total("direct", "bytes")),
        bursts: ratioOf(total("proxy", "bursts"), total("direct", "bursts")),
        records: ratioOf(total("proxy", "records"), total("direct", "records")),
      },
    }),
  };
}
