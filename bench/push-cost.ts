/**
 * What a sleeping device costs the account session per room message (docs/architecture.md §8.6):
 * the push check (core/push roomTrigger + PushDevices.offerRoom) on a ≈ 300-byte groupchat message
 * already parsed by the hub, next to parsing it (which the hub does anyway). Four cases: no device
 * asleep (the fast path: one flag), a sleeping device and a message that does not mention the
 * account, one that does (coalesced: counted, no publish), and --push-rooms all.
 *
 *   npm run build && node dist/bench/push-cost.js [--ms 2000]
 *
 * CPU time of this process (process.cpuUsage), the median of 11 rounds; ns per message.
 */
import { parseStanza } from "../core/xml/element.js";
import { PushDevices } from "../core/push/devices.js";
import { roomTrigger, type PushRoomsMode, type RoomView } from "../core/push/trigger.js";

const ROOM = "bench@conference.example.org";
const rooms: RoomView = { nickIn: (r) => (r === ROOM ? "alice" : undefined) };
const msg = (body: string): string =>
  `<message xmlns='jabber:client' type='groupchat' from='${ROOM}/bob' to='alice@example.org/minimix-1a2b3c4d' id='5f1c2a9e-3b7d-4c1e-9a0f-1d2e3f4a5b6c'>` +
  `<body>${body}</body><stanza-id xmlns='urn:xmpp:sid:0' id='a1b2c3d4' by='${ROOM}'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='b0b'/></message>`;
const PLAIN = msg("the quick brown fox jumps over the lazy dog, again and again, all day long");
const MENTION = msg("the quick brown fox jumps over alice, the lazy dog, again and again, all day");

const msArg = process.argv.indexOf("--ms");
const roundMs = msArg > 0 ? Number(process.argv[msArg + 1]) : 2000;

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** ns per call of `f`, median of 11 rounds of about roundMs / 11 each. */
function measure(f: (i: number) => void): number {
  const perRound: number[] = [];
  let n = 1000;
  for (let r = 0; r < 12; r++) {
    const t0 = cpuNs();
    for (let i = 0; i < n; i++) f(i);
    const dt = cpuNs() - t0;
    if (r === 0) {
      n = Math.max(1000, Math.round((n * (roundMs / 11) * 1e6) / Math.max(dt, 1)));
      continue; // warm-up, and sizing
    }
    perRound.push(dt / n);
  }
  perRound.sort((a, b) => a - b);
  return perRound[5]!;
}

function devices(asleep: boolean): PushDevices {
  const d = new PushDevices({ intervalMs: 10_000, withBody: false, maxDevices: 16 });
  d.enable("alice@example.org/phone", { service: "push.example.net", node: "n", options: undefined });
  if (asleep) d.setState("alice@example.org/phone", "hibernating");
  return d;
}

function check(d: PushDevices, mode: PushRoomsMode, xml: string): (i: number) => void {
  const el = parseStanza(xml);
  return (i) => {
    if (!d.anyAsleep) return;
    const t = roomTrigger(el, rooms, mode);
    // the time stays inside one interval: after the first, every trigger is coalesced (counted)
    if (t) d.offerRoom(t, 1000 + (i & 1));
  };
}

const parse = measure(() => void parseStanza(PLAIN));
const rows: [string, number][] = [
  ["no device asleep", measure(check(devices(false), "mentions", MENTION))],
  ["device asleep, no mention", measure(check(devices(true), "mentions", PLAIN))],
  ["device asleep, mention (coalesced)", measure(check(devices(true), "mentions", MENTION))],
  ["device asleep, --push-rooms all (coalesced)", measure(check(devices(true), "all", PLAIN))],
];
console.log(`parse of the ${Buffer.byteLength(PLAIN)}-byte message (paid by the hub anyway): ${parse.toFixed(0)} ns`);
console.log("| case | push check, ns per message | vs the parse |");
console.log("|---|---|---|");
for (const [name, ns] of rows) console.log(`| ${name} | ${ns.toFixed(0)} | ${((ns / parse) * 100).toFixed(1)} % |`);
