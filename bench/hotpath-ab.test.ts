/**
 * Keeps `npm run bench:hotpath` from rotting: one round of ~1 ms per case, the working tree against
 * itself (one compilation), and every case must print finite figures. Nothing about speed is asserted.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const SCRIPT = "dist/bench/hotpath-ab.js";

describe("npm run bench:hotpath (one tiny round)", () => {
  it("prints every case with finite figures", async () => {
    expect(existsSync(SCRIPT), `${SCRIPT} missing: run npm run build first`).toBe(true);
    const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, "--base", "worktree", "--head", "worktree", "--rounds", "1", "--ms", "1"], { timeout: 90_000 });
    for (const c of ["fanout K=4", "fanout K=4, per delivery", "replay 50×20 (", "replay 50×20, first", "TLS 171 B, 4 per tick", "TLS 171 B, 1 per tick"]) {
      const line = stdout.split("\n").find((l) => l.startsWith(c));
      expect(line, `${c} in\n${stdout}`).toBeDefined();
      const nums = line!.slice(32).trim().split(/[\s()–]+/).filter((t) => /^[\d.]+$/.test(t)).map(Number);
      expect(nums.length, line).toBeGreaterThanOrEqual(8);
      for (const n of nums) expect(Number.isFinite(n) && n > 0, line).toBe(true);
    }
  }, 100_000);
});
