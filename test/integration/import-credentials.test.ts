/**
 * Issue 12 §3: `minimix-proxy import-credentials` against the records of a real server, a private
 * instance of each kind started by the project's own recipes (test/support/prosody.sh, ejabberd.sh):
 * Prosody 0.12's internal_hashed account files, read in place; ejabberd 23.01's SCRAM passwords,
 * exported with `ejabberdctl export_piefxis_host` (XEP-0227). (`export2sql` also writes them, but on
 * 23.01 the command then hangs for a minute and exits 3; its real output is in the unit tests.) The imported records must be exactly what a SCRAM exchange
 * with that server reveals (salt, iteration count), the proxy's verifier must accept a proof made
 * from the known password with them, and the ClientKey that proof reveals must log in to the real
 * server: the proxy never needs the password. The server's files are not modified.
 */
import { spawnSync, execFile } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ScramClient } from "../../core/sasl/scram.js";
import { ScramServer } from "../../core/sasl/scram-server.js";
import { SaslError } from "../../core/sasl/errors.js";
import { FileCredentialStore } from "../../proxy/credentials/file-store.js";
import { CLI, startProxy } from "../support/proxy-process.js";
import { saltAndIterations, scramLogin } from "../support/scram-login.js";
import { upstreamServers } from "../support/servers.js";
import { startRedis } from "../support/redis.js";
import { Redis } from "ioredis";
import { decodeAccountCredentials } from "../../core/credentials/record.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const cert = inject("proxyCert");
const run = promisify(execFile);
const USERS = [
  { user: "alice", pass: "alicepass" },
  { user: "d.ot", pass: "d0t-p\u00e4ss" },
];

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under `dir` with its content hash, size, mode and mtime: to show nothing was touched. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out[p] = `${createHash("sha256").update(readFileSync(p)).digest("hex")} ${st.size} ${st.mode} ${st.mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

describe.each(upstreamServers().map((s) => s.kind))("import-credentials from a real %s", (kind) => {
  let up: Upstream;
  let stateDir: string;
  let output: string;
  /** The import's source flags (the export directory of ejabberd is kept until the end: the Redis import reads it again). */
  let source: string[];
  let exportDir: string | undefined;

  beforeAll(async () => {
    up = await startUpstream(kind, { users: USERS.map((u) => `${u.user}:${u.pass}`).join(" ") });
    stateDir = mkdtempSync(join(tmpdir(), "minimix-import-state-"));
    const base = ["import-credentials", "--domain", up.domain, "--state-dir", stateDir];
    if (kind === "prosody") {
      const data = join(up.dir, "data");
      const before = snapshot(data);
      source = ["--prosody-data", data];
      const r = cli([...base, ...source]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      output = r.stdout;
      expect(snapshot(data)).toEqual(before); // read, never modified
    } else {
      // ejabberdctl runs as the ejabberd user: it needs a directory it may write to
      exportDir = mkdtempSync(join(tmpdir(), "minimix-ejabberd-export-"));
      chmodSync(exportDir, 0o777);
      const script = fileURLToPath(new URL("../support/ejabberd.sh", import.meta.url));
      await run(script, ["ctl", up.dir, "--", "export_piefxis_host", exportDir, up.domain]);
      const main = readdirSync(exportDir).find((n) => /^\d{8}-\d{6}\.xml$/.test(n));
      expect(main).toBeDefined();
      source = ["--xep0227", join(exportDir, main!)];
      const r = cli([...base, ...source]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      output = r.stdout;
    }
  }, 180_000);
  afterAll(async () => {
    await up?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    if (exportDir) rmSync(exportDir, { recursive: true, force: true });
  });

  it("imports every account as SCRAM-SHA-1 and prints names and counts, never a key or salt", async () => {
    for (const u of USERS) expect(output).toContain(`new       ${u.user}@${up.domain} (SCRAM-SHA-1)`);
    expect(output).toMatch(/: 2 new, 0 updated, 0 replaced \(the server's credentials changed\), 0 unchanged; 0 skipped; 0 errors\n$/);
    const { store } = await FileCredentialStore.open(stateDir);
    for (const u of USERS) {
      const rec = (await store.get(`${u.user}@${up.domain}`))!.scram["SHA-1"]!;
      for (const secret of [rec.salt, rec.storedKey, rec.serverKey]) {
        expect(output).not.toContain(secret.toString("base64"));
        expect(output).not.toContain(secret.toString("hex"));
      }
    }
    // a second import finds nothing new
    if (kind === "prosody") {
      const again = cli(["import-credentials", "--domain", up.domain, "--state-dir", stateDir, "--prosody-data", join(up.dir, "data")]);
      expect(again.status).toBe(0);
      expect(again.stdout).toMatch(/0 new, 0 updated, 0 replaced .*, 2 unchanged/);
    }
  });

  it.each(USERS)("$user: the record is what the server's own SCRAM exchange reveals, and it verifies the password", async ({ user, pass }) => {
    const { store } = await FileCredentialStore.open(stateDir);
    const creds = await store.get(`${user}@${up.domain}`);
    expect(creds?.source).toBe(kind === "prosody" ? "import-prosody" : "import-xep0227");
    const rec = creds!.scram["SHA-1"]!;
    expect(rec.origin).toBe("server");

    // 1. what the real server reveals in its SCRAM-SHA-1 exchange with the known password
    const direct = await scramLogin({ port: up.port, ca: readFileSync(up.certFile), username: user, secret: { password: pass }, hash: "SHA-1" });
    expect(direct.outcome).toBe("success");
    const revealed = saltAndIterations(direct.serverFirst!);
    expect(rec.salt.equals(revealed.salt)).toBe(true);
    expect(rec.iterations).toBe(revealed.iterations);
    const salted = direct.client.keys.saltedPassword;
    const clientKey = createHmac("sha1", salted).update("Client Key").digest();
    expect(rec.storedKey.equals(createHash("sha1").update(clientKey).digest())).toBe(true);
    expect(rec.serverKey.equals(createHmac("sha1", salted).update("Server Key").digest())).toBe(true);

    // 2. the proxy's verifier with the imported record: a proof from the password passes (plain and -PLUS) ...
    for (const plus of [false, true]) {
      const cb = Buffer.alloc(32, 5);
      const c = new ScramClient("SHA-1", user, { password: pass }, plus ? { gs2: { type: "tls-exporter", data: cb } } : {});
      const v = new ScramServer({ mechanism: plus ? "SCRAM-SHA-1-PLUS" : "SCRAM-SHA-1", channelBindings: new Map([["tls-exporter", cb]]), plusAdvertised: true });
      expect(v.clientFirst(c.clientFirst()).username).toBe(user);
      const ok = v.clientFinal(c.clientFinal(v.serverFirst(rec)));
      c.verifyServerFinal(ok.serverFinal);
      expect(ok.clientKey.equals(clientKey)).toBe(true);

      // 3. ... and the ClientKey it reveals, with the record's ServerKey, logs in to the real server
      const upstream = await scramLogin({ port: up.port, ca: readFileSync(up.certFile), username: user, hash: "SHA-1",
        secret: { clientKey: ok.clientKey, serverKey: rec.serverKey, salt: rec.salt, iterations: rec.iterations } });
      expect(upstream.outcome).toBe("success");
    }

    // 4. a wrong password does not pass the verifier
    const c = new ScramClient("SHA-1", user, { password: `${pass}x` });
    const v = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
    v.clientFirst(c.clientFirst());
    const final = c.clientFinal(v.serverFirst(rec));
    expect(() => v.clientFinal(final)).toThrow(SaslError);
  });

  it.each(USERS)("$user: a -PLUS login through the proxy at first contact, verified against the imported record", async ({ user, pass }) => {
    const proxy = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--state-dir", stateDir] });
    try {
      for (const plus of ["tls-exporter", "tls-server-end-point"]) {
        const r = await scramLogin({ port: proxy.port, username: user, secret: { password: pass }, hash: "SHA-1", plus, bind: `first-${plus}` });
        try {
          expect(r.offered).toContain("SCRAM-SHA-1-PLUS");
          expect(r.outcome).toBe("success"); // the proxy's v= verified: it holds the server's ServerKey
          expect(r.session?.jid).toBe(`${user}@${up.domain}/first-${plus}`);
        } finally {
          r.session?.close();
        }
      }
      const line = await proxy.waitForLog((l) => l.msg === "authenticated" && l.mechanism === "SCRAM-SHA-1-PLUS");
      expect(line.upstreamMechanism).toBe("SCRAM-SHA-1");
      expect(proxy.logs().some((l) => /relaying/.test(l.msg))).toBe(false);
      expect(proxy.stdout()).not.toContain(pass);
    } finally {
      await proxy.stop();
    }
  });

  it("the proxy starts on the imported store; a damaged record stops it with CREDENTIAL_STORE_CORRUPT", async () => {
    const proxy = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--state-dir", stateDir] });
    try {
      expect(await proxy.waitForLog((l) => l.msg === "credential store checked")).toMatchObject({ accounts: 2, store: `file:${join(stateDir, "credentials")}` });
    } finally {
      await proxy.stop();
    }

    const args = ["--domain", up.domain, "--state-dir", stateDir, "--listen", "127.0.0.1:0", "--metrics", "off", "--cert", cert.certFile, "--key", cert.keyFile,
      "--upstream", `127.0.0.1:${up.port}`, "--upstream-ca", up.certFile];
    const copy = mkdtempSync(join(tmpdir(), "minimix-import-broken-"));
    try {
      const credDir = join(copy, "credentials");
      const src = join(stateDir, "credentials");
      spawnSync("cp", ["-a", src, credDir]);
      writeFileSync(join(credDir, `alice@${up.domain}.json`), "{ not json", { mode: 0o600 });
      const broken = spawnSync(process.execPath, [CLI, ...args.map((a) => (a === stateDir ? copy : a))], { encoding: "utf8", timeout: 30_000 });
      expect(broken.status).toBe(1);
      const fatal = broken.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l["level"] === 60);
      expect(fatal).toMatchObject({ code: "CREDENTIAL_STORE_CORRUPT", msg: "could not start: credential store unusable", path: join(credDir, `alice@${up.domain}.json`) });
      expect(broken.stdout).not.toContain("not json");
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it("--cluster-redis: the records go to the Redis store the cluster's nodes read, not to the file store; a node verifies a -PLUS login from them at first contact", async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on("error", () => undefined);
    const fresh = mkdtempSync(join(tmpdir(), "minimix-import-cluster-state-"));
    let node: Awaited<ReturnType<typeof startProxy>> | undefined;
    try {
      await admin.connect();
      const base = ["import-credentials", "--domain", up.domain, "--state-dir", fresh, "--cluster-redis", redis.url];
      const r = cli([...base, ...source]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      for (const u of USERS) expect(r.stdout).toContain(`new       ${u.user}@${up.domain} (SCRAM-SHA-1)`);
      expect(r.stdout).toContain(`redis:${redis.url}: 2 new, 0 updated`);
      expect(existsSync(join(fresh, "credentials")) ? readdirSync(join(fresh, "credentials")) : []).toEqual([]);
      // the same records as the file store's import (the format every store uses: encodeForStore)
      expect((await admin.hkeys("minimix:credentials")).sort()).toEqual(USERS.map((u) => `${u.user}@${up.domain}`).sort());
      const { store } = await FileCredentialStore.open(stateDir);
      for (const u of USERS) {
        const account = `${u.user}@${up.domain}`;
        const fromRedis = decodeAccountCredentials((await admin.hget("minimix:credentials", account))!, account);
        expect(fromRedis.scram).toEqual((await store.get(account))!.scram);
        expect(fromRedis.source).toBe(kind === "prosody" ? "import-prosody" : "import-xep0227");
      }
      // a second import finds them there
      const again = cli([...base, ...source]);
      expect(again.status).toBe(0);
      expect(again.stdout).toMatch(/0 new, 0 updated, 0 replaced .*, 2 unchanged/);

      // a cluster node: no PLAIN login ever made these records, yet SCRAM-SHA-1-PLUS verifies at first contact
      node = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--state-dir", fresh, "--cluster-redis", redis.url, "--node-id", `import-${kind}`] });
      for (const u of USERS) {
        const login = await scramLogin({ port: node.port, username: u.user, secret: { password: u.pass }, hash: "SHA-1", plus: "tls-exporter", bind: "imported" });
        try {
          expect(login.outcome, u.user).toBe("success");
        } finally {
          login.session?.close();
        }
      }
      await node.waitForLog((l) => l.msg === "authenticated" && l.mechanism === "SCRAM-SHA-1-PLUS" && l.user === `${USERS[1]!.user}@${up.domain}`);
      expect(node.logs().filter((l) => l.msg === "authenticated").map((l) => l.mechanism)).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1-PLUS"]);
      expect(node.logs().some((l) => /relaying/.test(String(l.msg)) || l.msg === "SCRAM records created after a password login")).toBe(false);
    } finally {
      await node?.stop();
      admin.disconnect();
      await redis.stop();
      rmSync(fresh, { recursive: true, force: true });
    }
  }, 60_000);

  it("--cluster-redis unreachable: nothing imported, exit 1, the reason without the URL's password", () => {
    const r = cli(["import-credentials", "--domain", up.domain, "--cluster-redis", "redis://:hunter2@127.0.0.1:1", ...source]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^minimix-proxy: cluster: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 unreachable: .*\(CREDENTIAL_STORE_UNREADABLE\)\n$/);
    expect(r.stderr).not.toContain("hunter2");
  });
});
