/**
 * Loads the core/ modules (or other subtrees) of a git revision (or of the working tree) into this process, so that
 * two builds of the same code can be measured interleaved in one process: on a shared machine,
 * two separate runs of the same build can differ by 2×, while interleaved rounds in one process
 * see the same load.
 *
 * Both sides are compiled the same way, with the project's compiler options, so the comparison is
 * not skewed by one side being built differently from the other.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

export interface LoadedRev {
  label: string;
  dir: string;
  has(module: string): boolean;
  load<T>(module: string): Promise<T>;
}

/** The repository root: this file is bench/ab/load-rev.ts, or dist/bench/ab/load-rev.js once built. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
  return dir;
}

/** Non-test TypeScript sources under each of `under` (e.g. ["core"]), at `rev` or, for "worktree", on disk. */
function sources(root: string, rev: string, under: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const isSource = (p: string): boolean => p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith(".d.ts");
  if (rev === "worktree") {
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (isSource(p)) out.set(relative(root, p), readFileSync(p, "utf8"));
      }
    };
    for (const u of under) walk(join(root, u));
    return out;
  }
  const files = execFileSync("git", ["ls-tree", "-r", "--name-only", rev, "--", ...under], { cwd: root, encoding: "utf8" })
    .split("\n").filter(isSource);
  for (const f of files) out.set(f, execFileSync("git", ["show", `${rev}:${f}`], { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 }));
  return out;
}

/**
 * Transpiles `under` (one subtree, or several: ["core", "proxy/stream"]) at `rev` into a fresh
 * temporary directory and returns a loader for its modules (paths relative to the repository root,
 * e.g. "core/xml/framer.js"; `has` tells whether that revision has such a module). Only modules whose
 * imports stay inside `under` (or are packages resolvable from the repository) can be loaded.
 */
export async function loadRev(rev: string, under: string | string[] = "core"): Promise<LoadedRev> {
  const root = repoRoot();
  const label = rev === "worktree" ? "worktree" : execFileSync("git", ["rev-parse", "--short", rev], { cwd: root, encoding: "utf8" }).trim();
  // inside the repository (not /tmp) so that package imports (ltx, …) resolve from its node_modules
  const base = join(root, "node_modules", ".cache", "minimix-ab");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${label}-`));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const loaded = (): LoadedRev => ({
    label, dir,
    has: (module: string) => existsSync(join(dir, module)),
    load: <T>(module: string) => import(pathToFileURL(join(dir, module)).href) as Promise<T>,
  });
  // The same revision and subtrees again (the noise control): a copy of the first compilation's
  // output in its own directory, so its modules are loaded (and optimized) separately all the same.
  const key = `${rev === "worktree" ? rev : execFileSync("git", ["rev-parse", rev], { cwd: root, encoding: "utf8" }).trim()}:${[under].flat().join(",")}`;
  const compiled = compiledDirs.get(key);
  if (compiled !== undefined) {
    cpSync(compiled, dir, { recursive: true });
    return loaded();
  }
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const files: string[] = [];
  for (const [file, src] of sources(root, rev, typeof under === "string" ? [under] : under)) {
    const dest = join(dir, file);
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, src);
    files.push(dest);
  }
  // the project's own compiler options (tsconfig.json), as one program: const enums are inlined
  // across modules exactly as in `npm run build`. Type errors do not stop the emit (an old revision
  // may not type-check against today's dependencies); only the JavaScript matters here.
  const config = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n")); },
  });
  if (!config) throw new Error("tsconfig.json could not be read");
  const options: ts.CompilerOptions = { ...config.options, rootDir: dir, outDir: dir, sourceMap: false, noEmit: false, declaration: false };
  const emitted = ts.createProgram(files, options).emit();
  if (emitted.emitSkipped) throw new Error(`${label}: TypeScript emitted nothing`);
  compiledDirs.set(key, dir);
  return loaded();
}

/** The first compilation of each revision and subtrees in this process (see loadRev). */
const compiledDirs = new Map<string, string>();
