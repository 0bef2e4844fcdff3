/** Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions and files by self time. */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** The process's CPU time (user+sys, /proc) over the same window, for comparison with the sampled busy time. */
  procCpuMs?: number;
  /** Load carried during the window (messages or deliveries per second). */
  rate?: number;
  /** Share of samples spent outside the idle loop (program + GC + native). */
  busyPct: number;
  functions: HotSpot[];
  files: HotSpot[];
}

function place(url: string, root: string): string {
  if (!url) return "(native)";
  let p = url;
  if (p.startsWith("file://")) p = fileURLToPath(p);
  if (p.startsWith(root)) p = relative(root, p);
  return p.replace(/^node_modules\//, "");
}

/**
 * `windowMs`: only samples taken between these offsets from the profile's start count (the
 * process start-up — module loading, the first TLS contexts, logins — is not the hot path).
 */
export function summarizeProfile(file: string, root: string, top = 15, windowMs?: [number, number]): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  if (prof.samples && prof.timeDeltas) {
    let t = 0;
    for (let i = 0; i < prof.samples.length; i++) {
      const id = prof.samples[i]!;
      const dt = Math.max(0, prof.timeDeltas[i] ?? 0);
      t += dt;
      if (windowMs && (t < windowMs[0] * 1000 || t > windowMs[1] * 1000)) continue;
      selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    }
  }
  const fn = new Map<string, HotSpot>();
  const files = new Map<string, HotSpot>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const name = n.callFrame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    const where = `${place(n.callFrame.url, root)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""}`;
    const key = `${name}@${where}`;
    const f = fn.get(key) ?? { name, where, selfMs: 0, pct: 0 };
    f.selfMs += us / 1000;
    fn.set(key, f);
    const fileKey = n.callFrame.url ? place(n.callFrame.url, root) : name;
    const g = files.get(fileKey) ?? { name: fileKey, where: "", selfMs: 0, pct: 0 };
    g.selfMs += us / 1000;
    files.set(fileKey, g);
  }
  const busy = total - idle;
  const rank = (m: Map<string, HotSpot>): HotSpot[] =>
    [...m.values()].map((h) => ({ ...h, pct: busy > 0 ? (100 * h.selfMs * 1000) / busy : 0 })).sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  return { file, totalMs: total / 1000, busyPct: total > 0 ? (100 * busy) / total : 0, functions: rank(fn), files: rank(files) };
}
