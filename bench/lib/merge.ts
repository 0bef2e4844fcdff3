/**
 * A partial run (BENCH_ONLY / --only) merged into the results of an earlier run: the sections it
 * measured replace the earlier ones, the rest are kept, and `meta.sections` records which run each
 * section comes from. Ratios are never formed across runs: every section's comparisons were measured
 * side by side within its own run.
 */
import { type Measurement, type Results, judge } from "./bench.js";

type Section = "passthrough" | "cpu" | "accountWin" | "reconnect" | "scale" | "switchBack" | "inactive" | "login" | "hotPath" | "firstJoin" | "cluster" | "profile";

/** The result sections each measurement writes (m1 and m2 both run the pass-through measurement; the profile goes with them). */
export const SECTIONS: Record<Measurement, Section[]> = {
  m1: ["passthrough", "profile"],
  m2: ["passthrough", "cpu", "profile"],
  m3: ["accountWin"],
  m4: ["reconnect"],
  m5: ["scale"],
  m6: ["switchBack"],
  m7: ["inactive"],
  m8: ["login"],
  m9: ["hotPath"],
  m10: ["firstJoin"],
  m11: ["cluster"],
};

const ALL: Section[] = ["passthrough", "cpu", "accountWin", "reconnect", "scale", "switchBack", "inactive", "login", "hotPath", "firstJoin", "cluster", "profile"];

function stamp(r: Results): string {
  return `${r.meta.date}${r.meta.quick ? " (quick)" : ""}`;
}

/**
 * `prev` with the sections `now` measured (`only`) replaced. Runs of different modes (quick vs full)
 * are not mixed: then `now` is returned alone.
 */
export function mergeResults(prev: Results, now: Results, only: Measurement[]): Results {
  if (prev.meta.quick !== now.meta.quick) return now;
  const ran = new Set(only.flatMap((m) => SECTIONS[m]));
  const sections: Record<string, string> = {};
  const out: Results = { ...prev, meta: { ...now.meta }, errors: now.errors, targets: [] };
  for (const s of ALL) {
    if (ran.has(s)) {
      if (s === "profile" && now.profile === undefined) {
        if (prev.profile !== undefined) sections[s] = prev.meta.sections?.[s] ?? stamp(prev); // not re-profiled: keep the earlier profile
        continue;
      }
      (out as unknown as Record<Section, unknown>)[s] = now[s];
      if (now[s] !== undefined) sections[s] = stamp(now);
    } else if (prev[s] !== undefined) {
      sections[s] = prev.meta.sections?.[s] ?? stamp(prev);
    }
  }
  out.meta.sections = sections;
  out.targets = judge(out);
  return out;
}
