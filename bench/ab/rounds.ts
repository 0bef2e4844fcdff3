/**
 * The A/B round logic shared by the in-process comparisons (bench/framer-ab.ts, bench/hotpath-ab.ts):
 * three builds — base, head, and the base loaded a second time as a noise control — measured in
 * rounds of rotating order in one process, and reported as the medians of each build and the
 * per-round ratios to the base (machine load moves the builds of one round alike, so it mostly
 * cancels out), plus the ratio of each build's fastest round (the least disturbed one).
 */
import { median, ratioOf } from "../lib/stats.js";

/** `--name value` from the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

export interface Labelled {
  label: string;
}

export interface Trio<B extends Labelled> {
  base: B;
  head: B;
  /** The base build loaded a second time (its label gets a '): head ÷ base is read against control ÷ base. */
  control: B;
  /** [base, head, control]: the order of the first round. */
  all: B[];
}

/** Loads base, head and a second, separately loaded copy of the base (the noise control). */
export async function loadTrio<B extends Labelled>(baseRev: string, headRev: string, load: (rev: string) => Promise<B>): Promise<Trio<B>> {
  const base = await load(baseRev);
  const head = await load(headRev);
  const control = await load(baseRev);
  control.label += "'";
  return { base, head, control, all: [base, head, control] };
}

/**
 * `rounds` rounds; each runs `measure` once per build, in an order rotated every round so that no
 * build always runs first (or right after another). Returns each build's per-round figures.
 */
export async function interleave<B>(builds: B[], rounds: number, measure: (b: B) => number | Promise<number>): Promise<Map<B, number[]>> {
  const out = new Map<B, number[]>(builds.map((b) => [b, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < builds.length; k++) {
      const b = builds[(r + k) % builds.length]!;
      out.get(b)!.push(await measure(b));
    }
  }
  return out;
}

/** One build against the base: the per-round ratios and the ratio of the fastest rounds. */
export interface Ratio {
  median: number;
  min: number;
  max: number;
  fastest: number;
}

export function ratio(xs: number[], base: number[]): Ratio {
  const s = ratioOf(xs, base);
  return { median: s.median, min: s.min, max: s.max, fastest: Math.min(...xs) / Math.min(...base) };
}

/** "0.668 (0.55–0.80)" padded to 22, then the fastest-rounds ratio right-aligned in 14. */
export function ratioCell(r: Ratio): string {
  return `${r.median.toFixed(3)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`.padEnd(22) + `${r.fastest.toFixed(3)}`.padStart(14);
}

/** The summary of one measured case: medians of base and head, head ÷ base and control ÷ base. */
export interface Comparison {
  base: number;
  head: number;
  control: number;
  headRatio: Ratio;
  controlRatio: Ratio;
}

export function compare<B>(series: Map<B, number[]>, trio: Trio<B & Labelled>): Comparison {
  const nb = series.get(trio.base)!;
  const nh = series.get(trio.head)!;
  const nc = series.get(trio.control)!;
  return { base: median(nb), head: median(nh), control: median(nc), headRatio: ratio(nh, nb), controlRatio: ratio(nc, nb) };
}

/**
 * Iterations that take about `targetMs` of CPU, from a probe: `probe(n)` returns the CPU µs of n
 * iterations (run after a warm-up of every build by the caller).
 */
export function iterationsFor(probeN: number, probeUs: number, targetMs: number, min = 1000): number {
  return Math.max(min, Math.round((probeN * targetMs * 1000) / Math.max(probeUs, 1)));
}

/** CPU µs (user + system, both ends when both run in this process) spent by `fn`. */
export function cpuUs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}
