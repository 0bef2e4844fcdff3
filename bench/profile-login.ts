/**
 * npm run bench:profile-login   (issue 15): CPU profiles of the proxy (node --cpu-prof) under
 *   - `login`: SCRAM-SHA-1 logins one after the other, as in bench m8 (the client with its cached
 *     SaltedPassword, the proxy verifying against its record);
 *   - `first-join`: logins each followed by a first join of a room with occupants, as in bench m10
 *     (--account-session-linger 0: each login's own account session).
 * Writes bench/profile-login.md and bench/profile-first-join.md (self time by function and by file,
 * over the loaded window only; a "What it means" section is written by hand below the tables and must
 * be carried over by hand after a re-run); the raw .cpuprofile files (≈ 750 KB each) stay in a
 * temporary directory (printed).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, cpuSeconds, makeCert, startProsody, startProxy } from "./lib/procs.js";
import { type ProfileSummary, summarizeProfile } from "./lib/profile.js";
import { scramLoginOnce } from "./lib/login.js";
import { connect, joinRooms, type Path, resource } from "./lib/paths.js";
import { occupy } from "./lib/measure.js";
import { BenchClient, escapeAttr, sleep } from "./lib/xmpp.js";

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);
const log = (m: string): void => void process.stderr.write(`[profile] ${m}\n`);

function render(title: string, what: string, p: ProfileSummary, count: number, cpuMs: number): string {
  const L: string[] = [`# ${title}`, "", what, ""];
  L.push(`${count} operations in the window; /proc charged the proxy ${cpuMs.toFixed(0)} ms of CPU (${(cpuMs / count).toFixed(2)} ms each); ` +
    `the sampler saw ${((p.busyPct / 100) * p.totalMs).toFixed(0)} ms busy of ${p.totalMs.toFixed(0)} ms (the rest of the CPU is native work booked as idle: ` +
    "TLS in libuv callbacks, kernel time of socket calls, and the thread pool).", "");
  L.push("| function | where | self ms | % of busy |", "|---|---|---:|---:|");
  for (const f of p.functions) L.push(`| \`${f.name}\` | ${f.where} | ${f.selfMs.toFixed(1)} | ${f.pct.toFixed(1)} |`);
  L.push("", "| file | self ms | % of busy |", "|---|---:|---:|");
  for (const f of p.files.slice(0, 12)) L.push(`| ${f.name} | ${f.selfMs.toFixed(1)} | ${f.pct.toFixed(1)} |`);
  return L.join("\n") + "\n";
}

const certDir = mkdtempSync(join(tmpdir(), "profile-cert-"));
const profDir = mkdtempSync(join(tmpdir(), "profile-login-"));
const cert = makeCert(certDir);
log("starting Prosody");
const prosody = await startProsody();
const out = join(ROOT, "bench");
try {
  const ca = [cert.cert, prosody.cert];
  const [alice, bob, carol] = prosody.users as [typeof prosody.users[0], typeof prosody.users[0], typeof prosody.users[0]];
  const direct: Path = { name: "direct", ep: { host: "127.0.0.1", port: prosody.tlsPort, ca, domain: prosody.domain } };

  for (const kind of ["login", "first-join"] as const) {
    const sub = join(profDir, kind);
    const spawnAt = Date.now();
    const child = await startProxy({
      upstreamPort: prosody.tlsPort, upstreamTls: "direct", upstreamCa: prosody.certFile, cert,
      nodeFlags: ["--cpu-prof", "--cpu-prof-dir", sub, "--cpu-prof-interval", "200"],
      extraArgs: kind === "first-join" ? ["--account-session-linger", "0"] : [],
    });
    const proxy: Path = { name: "proxy", ep: { ...direct.ep, port: child.port }, pid: child.pid };
    let window: [number, number] = [0, 0];
    let count = 0;
    let cpuMs = 0;
    try {
      if (kind === "login") {
        const { keys } = await scramLoginOnce(direct, alice, undefined);
        (await BenchClient.open(proxy.ep, alice.user, alice.pass)).end(); // her record
        await sleep(1000);
        for (let i = 0; i < 20; i++) await scramLoginOnce(proxy, alice, keys); // warm-up: JIT
        const t0 = Date.now();
        const c0 = cpuSeconds(child.pid);
        while (Date.now() - t0 < SECONDS * 1000) {
          await scramLoginOnce(proxy, alice, keys);
          count++;
        }
        cpuMs = (cpuSeconds(child.pid) - c0) * 1000;
        window = [t0 - spawnAt, Date.now() - spawnAt];
      } else {
        const rooms = Array.from({ length: 200 }, (_, i) => `pj-${i}-${process.pid.toString(36)}@${prosody.muc}`);
        const occ = await occupy(direct, bob, rooms, 5);
        let next = 0;
        const once = async (): Promise<void> => {
          const room = rooms[next++]!;
          const c = await connect(proxy, carol, resource("pj"));
          await sleep(150); // the account session its login started comes up meanwhile
          await joinRooms(c, [room], "pj");
          c.send(`<presence to='${escapeAttr(room)}/pj' type='unavailable'/>`);
          await sleep(50);
          c.end();
          await sleep(100);
        };
        for (let i = 0; i < 5; i++) await once(); // warm-up
        const t0 = Date.now();
        const c0 = cpuSeconds(child.pid);
        while (Date.now() - t0 < SECONDS * 1000 && next < rooms.length) {
          await once();
          count++;
        }
        cpuMs = (cpuSeconds(child.pid) - c0) * 1000;
        window = [t0 - spawnAt, Date.now() - spawnAt];
        for (const c of occ) c.end();
      }
    } finally {
      await child.stop();
    }
    const file = readdirSync(sub).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no profile written for ${kind}`);
    const p = summarizeProfile(join(sub, file), ROOT, 25, window);
    const what = kind === "login"
      ? "SCRAM-SHA-1 logins over direct TLS through the proxy, one after the other (bench m8's client: cached SaltedPassword; the proxy verifies against its record and logs the own leg in upstream with the ClientKey). Connect → bind result, then the client closes."
      : "A PLAIN login through the proxy (--account-session-linger 0), 150 ms pause, a first join of a room with 5 occupants, the leave, the logout: the proxy logs in the client's own leg and the account session, joins the room once, answers the client, and closes both.";
    writeFileSync(join(out, `profile-${kind}.md`), render(`Profile of the proxy: ${kind}`, what, p, count, cpuMs));
    log(`${kind}: ${count} in ${SECONDS} s, ${(cpuMs / Math.max(1, count)).toFixed(2)} ms CPU each; raw profile ${join(sub, file)}`);
  }
} finally {
  await prosody.stop();
  rmSync(certDir, { recursive: true, force: true });
}
