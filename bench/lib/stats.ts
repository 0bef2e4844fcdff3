/** Order statistics over repeated rounds: every figure is reported as median and spread. */

export interface Summary {
  /** Median over rounds. */
  median: number;
  min: number;
  max: number;
  /** (max − min) / |median|: the relative spread across rounds. */
  spread: number;
  rounds: number[];
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function sortNum(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: number[]): number {
  return quantile(sortNum(xs), 0.5);
}

export function summarize(rounds: number[]): Summary {
  const s = sortNum(rounds);
  const med = quantile(s, 0.5);
  const min = s[0] ?? NaN;
  const max = s[s.length - 1] ?? NaN;
  return { median: med, min, max, spread: med === 0 ? 0 : (max - min) / Math.abs(med), rounds };
}

/** Element-wise ratio of two per-round series (same rounds, same run), summarized. */
export function ratioOf(a: number[], b: number[]): Summary {
  const n = Math.min(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(a[i]! / b[i]!);
  return summarize(r);
}

export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && a < 0.01) return x.toExponential(1);
  if (a >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : digits);
}

/** "median (min–max)". */
export function fmtS(s: Summary, digits = 2): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/**
 * Runs `fn` for every item, `rounds` times, rotating the order every round so that drift on this
 * noisy machine does not favour one path.
 */
export async function perRound<T>(rounds: number, order: T[], fn: (item: T, round: number) => Promise<void>): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < order.length; i++) await fn(order[(i + r) % order.length]!, r);
  }
}

/** A Markdown table. */
export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}
