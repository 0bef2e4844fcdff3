/**
 * core/ is pure (docs/architecture.md §10): no sockets, files, timers, clocks or logging, and no
 * import of proxy/ or tls/. Time comes in as an argument; decisions go out as data. This test reads
 * every non-test source file under core/ and fails on anything that would break that.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const CORE = fileURLToPath(new URL(".", import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && name !== "test-kit.ts") out.push(p);
  }
  return out;
}

/** Node modules that only compute (hashing, bytes, string checks) are allowed; I/O ones are not. */
const IO_MODULES = /^node:(fs|fs\/promises|net|tls|dgram|http|https|http2|child_process|worker_threads|cluster|timers|timers\/promises|dns|readline|process|os)$/;
/** node:net is allowed for its pure address checks only. */
const PURE_NET_IMPORT = /^import\s*\{\s*(isIP|isIPv4|isIPv6)(\s*,\s*(isIP|isIPv4|isIPv6))*\s*\}\s*from\s*"node:net"/;
const FORBIDDEN_CALLS: [RegExp, string][] = [
  [/\bsetTimeout\s*\(|\bsetInterval\s*\(|\bsetImmediate\s*\(/, "a timer"],
  [/\bDate\.now\s*\(/, "the clock (time is passed in)"],
  [/\bconsole\.(log|info|warn|error|debug)\s*\(/, "console logging"],
  [/\bprocess\.(env|exit|stdout|stderr|on)\b/, "the process"],
];

function withoutComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

describe("core/ is pure", () => {
  const files = sources(CORE);

  it("finds the core sources", () => {
    expect(files.length).toBeGreaterThan(20);
  });

  it.each(files.map((f) => [relative(CORE, f), f]))("%s: no I/O module, no proxy/ or tls/ import", (_name, file) => {
    const src = readFileSync(file, "utf8");
    for (const line of src.split("\n")) {
      const m = /^\s*(?:import|export)\b[^"']*from\s*["']([^"']+)["']/.exec(line);
      if (!m) continue;
      const spec = m[1]!;
      if (spec === "node:net") {
        expect(PURE_NET_IMPORT.test(line.trim()), `${line.trim()}: only isIP/isIPv4/isIPv6 may come from node:net`).toBe(true);
        continue;
      }
      expect(IO_MODULES.test(spec), `${line.trim()}: I/O module in core/`).toBe(false);
      expect(/(^|\/)(proxy|tls)\//.test(spec), `${line.trim()}: core/ must not depend on proxy/ or tls/`).toBe(false);
    }
  });

  it.each(files.map((f) => [relative(CORE, f), f]))("%s: no timers, clock, console or process", (_name, file) => {
    const code = withoutComments(readFileSync(file, "utf8"));
    for (const [re, what] of FORBIDDEN_CALLS) expect(re.test(code), `${relative(CORE, file)} uses ${what}`).toBe(false);
  });
});
