/**
 * npm run bench            full run (≈ 10 min): writes bench/results.json, bench/RESULTS.md and the charts
 * BENCH_QUICK=1 npm run bench   (or: npm run bench -- --quick)   smoke version, ≈ 30 s
 * npm run bench -- --report-only   re-render RESULTS.md and the charts from bench/results.json
 * BENCH_PROFILE=0|1   profile the proxy (default: full run only); BENCH_OUT=DIR   where to write;
 * BENCH_PROXY_CLI=path/to/cli.js   measure another build of the proxy (before/after); it must live inside
 *   the repository so that node_modules resolve
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FULL, QUICK, type Results, runBench } from "./lib/bench.js";
import { ROOT } from "./lib/procs.js";
import { writeReport } from "./lib/report.js";

const quick = process.argv.includes("--quick") || /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? "");
const opts = { ...(quick ? QUICK : FULL) };
if (process.env.BENCH_PROFILE !== undefined) opts.profile = /^(1|true|yes)$/i.test(process.env.BENCH_PROFILE);
const outDir = process.env.BENCH_OUT ?? join(ROOT, "bench");

if (process.argv.includes("--report-only")) {
  // re-render RESULTS.md and the charts from an existing results.json (no measurement)
  writeReport(JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as Results, outDir);
  process.exit(0);
}
const results = await runBench(opts);
writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 2) + "\n");
writeReport(results, outDir);
process.stderr.write(`[bench] wrote ${join(outDir, "results.json")} and ${join(outDir, "RESULTS.md")} in ${results.meta.seconds.toFixed(0)} s\n`);
for (const t of results.targets) process.stderr.write(`[bench] ${t.met ? "MET   " : "MISSED"} ${t.target}: ${t.measured} (ratio ${t.ratio.toFixed(2)}, ${t.limit})\n`);
if (results.errors.length > 0) process.stderr.write(`[bench] ${results.errors.length} measurement(s) failed: see results.json "errors"\n`);
process.exit(results.errors.length > 0 ? 1 : 0);
