/**
 * Framer A/B: two builds of core/xml/framer.ts in one process, interleaved on realistic stanzas.
 *
 *   npm run bench:framer -- [--base <rev>] [--head <rev>|worktree] [--rounds N] [--ms N] [--peek]
 *   (= npm run build && node dist/bench/framer-ab.js …)
 *
 * Defaults: base HEAD, head = the working tree, 101 rounds of ~20 ms per build and stanza kind.
 * Each build is compiled from its own sources the same way (bench/ab/load-rev.ts; rounds and ratios:
 * bench/ab/rounds.ts, shared with bench/hotpath-ab.ts). Every round runs
 * the builds back to back, in rotating order, on the same Buffers; the figure is CPU time
 * (process.cpuUsage) per stanza. Per kind it prints the median ns/stanza of each build, the median
 * and spread of the per-round ratios head ÷ base (machine load moves the builds of one round alike,
 * so it mostly cancels out) and the ratio of each build's fastest round (the least disturbed one).
 * A third build, the base loaded a second time, is measured the same way: its ratio to the base is
 * the noise of the run, against which head ÷ base is to be read. --peek adds the routing peek (peekAttr(bytes, "to")) to each stanza,
 * as the proxy does for every client stanza.
 */
import { loadRev } from "./ab/load-rev.js";
import { arg, compare, interleave, iterationsFor, loadTrio, ratioCell } from "./ab/rounds.js";

interface FramerLike {
  push(data: Buffer): unknown[];
}
interface FramerModule {
  Framer: new (limits?: { maxStanzaSize?: number; maxDepth?: number }) => FramerLike;
}
interface PeekModule {
  peekAttr(bytes: Buffer, name: string): string | undefined;
}
interface Build {
  label: string;
  Framer: FramerModule["Framer"];
  peekAttr: PeekModule["peekAttr"];
}

/**
 * A stanza as a socket delivers it: a chunk that owns its memory (Buffer.from(string) would come
 * from the shared pool, which makes the framer copy where a socket's chunk would not be copied).
 */
function chunk(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}

const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

const KINDS: { name: string; bytes: Buffer }[] = [
  {
    name: "chat",
    bytes: chunk("<message to='bob@localhost/phone-1a2b' type='chat' id='a1b2c3d4-e5f6'><body>Hello Bob, are we still on for the meeting later today at five?</body></message>"),
  },
  {
    name: "groupchat",
    bytes: chunk("<message from='lounge@conference.localhost/bob' to='alice@localhost/minimix-4f2a9c' type='groupchat' id='0b6e2f1c-77aa'>" +
      "<body>Has anyone looked at the new release notes yet? The changelog is long.</body>" +
      "<stanza-id xmlns='urn:xmpp:sid:0' id='5f3c9a1e-2b7d-4e8f' by='lounge@conference.localhost'/></message>"),
  },
  {
    name: "presence+caps",
    bytes: chunk("<presence from='lounge@conference.localhost/carol' to='alice@localhost/minimix-4f2a9c' id='pr-9d81'>" +
      "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='np5kvDdYfcMAkyzbiKMb3H9JLnc='/>" +
      "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant' jid='carol@localhost/phone-77'/></x>" +
      "<show>away</show><status>On the train &amp; offline soon</status></presence>"),
  },
  {
    name: "large message",
    bytes: chunk("<message to='bob@localhost' type='chat' id='big-1'><body>" +
      "Ünïcödé text, quotes &quot;like this&quot; &amp; brackets ] — 日本語のテキスト. ".repeat(90) +
      "</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"),
  },
];

/** CPU µs for `iterations` stanzas through a fresh framer of `b`. */
function runOnce(b: Build, stanza: Buffer, iterations: number, peek: boolean): number {
  const f = new b.Framer({ maxStanzaSize: 1 << 20, maxDepth: 64 });
  f.push(Buffer.from(HEADER));
  let sink = 0;
  const c0 = process.cpuUsage();
  if (peek) {
    for (let i = 0; i < iterations; i++) {
      const ev = f.push(stanza) as { bytes?: Buffer }[];
      sink += ev.length + (b.peekAttr(ev[0]!.bytes!, "to")?.length ?? 0);
    }
  } else {
    for (let i = 0; i < iterations; i++) sink += f.push(stanza).length;
  }
  const c = process.cpuUsage(c0);
  if (sink !== iterations && !peek) throw new Error(`${b.label}: expected one frame per push`);
  return c.user + c.system;
}

async function load(rev: string): Promise<Build> {
  const r = await loadRev(rev, "core/xml");
  const fm = await r.load<FramerModule>("core/xml/framer.js");
  const pm = await r.load<PeekModule>("core/xml/peek.js");
  return { label: r.label, Framer: fm.Framer, peekAttr: pm.peekAttr };
}

async function main(): Promise<void> {
  const baseRev = arg("base", "HEAD");
  const headRev = arg("head", "worktree");
  const rounds = Number(arg("rounds", "101"));
  const targetMs = Number(arg("ms", "20"));
  const peek = process.argv.includes("--peek");
  const trio = await loadTrio(baseRev, headRev, load);
  const { base, head } = trio;
  const builds = trio.all;
  console.log(`framer A/B: base ${base.label} (${baseRev}) vs head ${head.label} (${headRev}), control = base loaded again; ` +
    `${rounds} rounds of ~${targetMs} ms per build; ${peek ? "framer + peekAttr" : "framer only"}; node ${process.version}`);
  console.log("CPU ns per stanza, median over rounds; ratios: median of the per-round ratios (min–max), then the ratio of the fastest rounds");
  console.log("kind            bytes   base ns   head ns   head÷base                      fastest   control÷base (noise)      fastest");
  for (const kind of KINDS) {
    // calibrate: iterations for ~targetMs with the base build, after a warm-up of every build
    for (const b of builds) runOnce(b, kind.bytes, 20_000, peek);
    const iterations = iterationsFor(20_000, runOnce(base, kind.bytes, 20_000, peek), targetMs);
    const ns = await interleave(builds, rounds, (b) => (runOnce(b, kind.bytes, iterations, peek) * 1000) / iterations);
    const c = compare(ns, trio);
    const f = (x: number, w: number): string => x.toFixed(0).padStart(w);
    console.log(`${kind.name.padEnd(14)} ${f(kind.bytes.length, 6)} ${f(c.base, 9)} ${f(c.head, 9)}   ${ratioCell(c.headRatio)}   ${ratioCell(c.controlRatio)}`);
  }
}

await main();
