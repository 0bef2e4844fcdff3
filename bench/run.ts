/**
 * npm run bench            full run (≈ 10 min): writes bench/results.json, bench/RESULTS.md and the charts
 * BENCH_QUICK=1 npm run bench   (or: npm run bench -- --quick)   smoke version, ≈ 30 s
 * BENCH_ONLY=m6,m7 npm run bench   (or: npm run bench -- --only=m6,m7)   only those measurements; their
 *   sections replace the same sections of the existing results.json, the others are kept from the run
 *   that made them (RESULTS.md says which run each section comes from). m1 latency/throughput, m2 CPU
 *   per stanza, m3 account-level win, m4 reconnect, m5 memory and scale, m6 back after a network switch,
 *   m7 an inactive phone in busy rooms, m8 SCRAM login cost, m9 the hot path, m10 first join, m11 the cluster
 *   (1 vs 2 vs 3 nodes, takeover after SIGKILL; starts its own redis-server).
 * npm run bench -- --report-only   re-render RESULTS.md and the charts from bench/results.json
 * BENCH_PROFILE=0|1   profile the proxy (default: full run only); BENCH_OUT=DIR   where to write;
 * BENCH_PROXY_CLI=path/to/cli.js   measure another build of the proxy (before/after); it must live inside
 *   the repository so that node_modules resolve
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FULL, MEASUREMENTS, type Measurement, QUICK, type Results, runBench } from "./lib/bench.js";
import { ROOT } from "./lib/procs.js";
import { mergeResults } from "./lib/merge.js";
import { writeReport } from "./lib/report.js";

const quick = process.argv.includes("--quick") || /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? "");
const opts = { ...(quick ? QUICK : FULL) };
if (process.env.BENCH_PROFILE !== undefined) {
  opts.profile = /^(1|true|yes)$/i.test(process.env.BENCH_PROFILE);
  opts.m9 = { ...opts.m9, profile: opts.profile }; // m9 profiles by default in a full run, also under BENCH_ONLY
}
const outDir = process.env.BENCH_OUT ?? join(ROOT, "bench");

const onlyArg = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length) ?? process.env.BENCH_ONLY;
if (onlyArg) {
  const keys = onlyArg.split(",").map((k) => k.trim()).filter(Boolean);
  const bad = keys.filter((k) => !(MEASUREMENTS as readonly string[]).includes(k));
  if (bad.length > 0 || keys.length === 0) {
    process.stderr.write(`[bench] unknown measurement(s) in BENCH_ONLY/--only: ${bad.join(", ") || "(none given)"}; known: ${MEASUREMENTS.join(", ")}\n`);
    process.exit(2);
  }
  opts.only = keys as Measurement[];
  if (process.env.BENCH_PROFILE === undefined) opts.profile = false;
}

if (process.argv.includes("--report-only")) {
  // re-render RESULTS.md and the charts from an existing results.json (no measurement)
  writeReport(JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as Results, outDir);
  process.exit(0);
}
const measured = await runBench(opts);
const previous = join(outDir, "results.json");
const results = opts.only && existsSync(previous) ? mergeResults(JSON.parse(readFileSync(previous, "utf8")) as Results, measured, opts.only) : measured;
writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 2) + "\n");
writeReport(results, outDir);
process.stderr.write(`[bench] wrote ${join(outDir, "results.json")} and ${join(outDir, "RESULTS.md")} in ${measured.meta.seconds.toFixed(0)} s\n`);
for (const t of measured.targets) process.stderr.write(`[bench] ${t.unsupported ? "N/A   " : t.met ? "MET   " : "MISSED"} ${t.target}: ${t.measured} (ratio ${t.ratio.toFixed(2)}, ${t.limit})\n`);
if (measured.errors.length > 0) process.stderr.write(`[bench] ${measured.errors.length} measurement(s) failed: see results.json "errors"\n`);
process.exit(measured.errors.length > 0 ? 1 : 0);
