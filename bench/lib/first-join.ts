/**
 * Measurement 10 (issue 15): a logged-in client's first join of a room with `occupants` occupants,
 * timed from the join presence to its self-presence (XEP-0045 §7.2.2), straight to Prosody vs through
 * the proxy. The account has no room before, so through the proxy the join needs the account session:
 *
 * - `proxy`: the proxy as shipped (`--account-session-start login`) but with `--account-session-linger 0`,
 *   so every sample's account session is the one its own login started — the linger would make every
 *   login after the first find it warm, which is the phone-reconnect case, not a first login;
 * - `proxyJoin`: `--account-session-start join`, as before issue 15: the join waits for the account
 *   session's connect, login and bind;
 * - `settled`: the join goes out `settleMs` after the bind result (a real client fetches its roster,
 *   sends its presence and discos first); `immediate`: right after the bind result — the account session
 *   may still be logging in, and the join waits for it.
 *
 * Each sample logs carol in, joins a fresh room (its occupants joined beforehand, straight to
 * Prosody), leaves it (the account leaves with its last session) and logs out; paths interleave.
 */
import { connect, joinRooms, type Path, resource } from "./paths.js";
import { nowMs } from "./procs.js";
import { type Summary, median, perRound, ratioOf, summarize } from "./stats.js";
import { type BenchClient, escapeAttr, sleep } from "./xmpp.js";
import { occupy } from "./measure.js";

type Cred = { user: string; pass: string };

export interface FirstJoinOptions {
  /** Occupants already in each room (bob's sessions, straight to Prosody). */
  occupants: number;
  /** First joins timed per path, variant and round (their median is the round's figure). */
  joins: number;
  /** Pause between the bind result and the join in the `settled` variant (ms). */
  settleMs: number;
}

export interface FirstJoinSide {
  direct: Summary;
  proxy: Summary;
  proxyJoin: Summary;
  /** proxy / direct and proxyJoin / direct, per round. */
  proxyVsDirect: Summary;
  proxyJoinVsDirect: Summary;
}

export interface FirstJoinResults {
  options: FirstJoinOptions;
  settled: FirstJoinSide;
  immediate: FirstJoinSide;
}

export interface FirstJoinEnv {
  direct: Path;
  /** --account-session-start login, --account-session-linger 0. */
  proxy: Path;
  /** --account-session-start join. */
  proxyJoin: Path;
  muc: string;
}

type Kind = "direct" | "proxy" | "proxyJoin";
type Variant = "settled" | "immediate";

/** One sample: login, (pause), join, time to the self-presence; then leave and log out. */
async function firstJoin(p: Path, u: Cred, room: string, settleMs: number): Promise<number> {
  const c: BenchClient = await connect(p, u, resource("fj"));
  try {
    if (settleMs > 0) await sleep(settleMs);
    const t0 = nowMs();
    await joinRooms(c, [room], "fj", "<history maxstanzas='0'/>", 30_000);
    const ms = nowMs() - t0;
    // an explicit leave: the account leaves the room with its last session (no idle room kept)
    c.send(`<presence to='${escapeAttr(room)}/fj' type='unavailable'/>`);
    await sleep(100);
    return ms;
  } finally {
    c.end();
  }
}

export async function measureFirstJoin(o: FirstJoinOptions, rounds: number, env: FirstJoinEnv, joiner: Cred, occupant: Cred, log: (m: string) => void): Promise<FirstJoinResults> {
  const kinds: Kind[] = ["direct", "proxy", "proxyJoin"];
  const variants: Variant[] = ["settled", "immediate"];
  const tag = process.pid.toString(36);
  const rooms: string[] = [];
  const want = rounds * kinds.length * variants.length * o.joins + kinds.length; // + a warm-up each
  for (let i = 0; i < want; i++) rooms.push(`fj-${i}-${tag}@${env.muc}`);
  const occ = await occupy(env.direct, occupant, rooms, o.occupants);
  log(`  ${rooms.length} rooms with ${o.occupants} occupants each`);
  let next = 0;
  const path = (k: Kind): Path => (k === "direct" ? env.direct : k === "proxy" ? env.proxy : env.proxyJoin);
  try {
    for (const k of kinds) await firstJoin(path(k), joiner, rooms[next++]!, o.settleMs); // warm-up: JIT, TLS
    const raw: Record<Variant, Record<Kind, number[]>> = {
      settled: { direct: [], proxy: [], proxyJoin: [] },
      immediate: { direct: [], proxy: [], proxyJoin: [] },
    };
    const order = kinds.flatMap((k) => variants.map((v) => [k, v] as const));
    await perRound(rounds, order, async ([k, v]) => {
      const ms: number[] = [];
      for (let i = 0; i < o.joins; i++) {
        ms.push(await firstJoin(path(k), joiner, rooms[next++]!, v === "settled" ? o.settleMs : 0));
        await sleep(200); // the logout's account session close (proxy paths)
      }
      raw[v][k].push(median(ms));
    });
    const side = (v: Variant): FirstJoinSide => ({
      direct: summarize(raw[v].direct),
      proxy: summarize(raw[v].proxy),
      proxyJoin: summarize(raw[v].proxyJoin),
      proxyVsDirect: ratioOf(raw[v].proxy, raw[v].direct),
      proxyJoinVsDirect: ratioOf(raw[v].proxyJoin, raw[v].direct),
    });
    return { options: o, settled: side("settled"), immediate: side("immediate") };
  } finally {
    for (const c of occ) c.end();
  }
}
