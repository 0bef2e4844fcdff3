import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { loadConfig } from "./config.js";
import { pickFreePort, readUpstreamEnv } from "./local-upstream.js";
import { createLogger } from "./log.js";
import { ProxyServer } from "./server.js";
import { FileCredentialStore } from "./credentials/file-store.js";
import { runImport } from "./import/run.js";

/**
 * `npm start`: a throwaway Prosody on loopback with demo users, and the proxy in front of it.
 * Everything lives in one temporary directory that is removed on exit.
 */
const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROSODY_SH = join(ROOT, "test", "support", "prosody.sh");

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "minimix-demo-"));
  const upstreamPort = await pickFreePort();
  process.stdout.write(`Starting a throwaway Prosody on 127.0.0.1:${upstreamPort} (installing it from Debian if needed)…\n`);
  try {
    await run("bash", [PROSODY_SH, "start", join(dir, "prosody")], {
      env: { ...process.env, PROSODY_C2S_PORT: String(upstreamPort), PROSODY_USERS: "alice:alicepass bob:bobpass carol:carolpass" },
      timeout: 300_000,
    });
  } catch (err) {
    process.stderr.write(`demo: could not start Prosody: ${(err as { stderr?: string }).stderr ?? (err as Error).message}\n`);
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  }
  const env = readUpstreamEnv(join(dir, "prosody", "upstream.env"));
  const port = await pickFreePort({ preferred: 5222 });
  const tlsPort = await pickFreePort({ preferred: 5223 });
  const config = loadConfig([
    "--listen", `127.0.0.1:${port}`,
    "--listen-tls", `127.0.0.1:${tlsPort}`,
    "--domain", "localhost",
    "--upstream", `127.0.0.1:${upstreamPort}`,
    "--upstream-ca", env.UPSTREAM_CERT!,
    "--state-dir", join(dir, "state"),
    "--log-level", process.env.LOG_LEVEL ?? "info",
  ]);
  const log = createLogger(config.logLevel);
  // the demo users' SCRAM records, read from the throwaway Prosody: a SCRAM or SCRAM-PLUS client logs
  // in at first contact and gets the account-level MUC (README, "Logging in")
  const { store } = await FileCredentialStore.open(config.stateDir);
  const imported = await runImport({ prosodyData: join(dir, "prosody", "data"), dryRun: false }, config.domains, store, () => undefined);
  const server = new ProxyServer(config, log, { credentials: store });
  await server.start();
  const ca = server.devCertFile ?? join(dir, "state", "dev-cert.pem");

  process.stdout.write(`
minimix-proxy demo is running.

  XMPP domain     localhost
  STARTTLS        127.0.0.1:${port}
  direct TLS      127.0.0.1:${tlsPort}   (XEP-0368, ALPN xmpp-client)
  users           alice@localhost / alicepass
                  bob@localhost   / bobpass
                  carol@localhost / carolpass
  SASL            SCRAM-SHA-1(-PLUS) and PLAIN; SCRAM records imported from Prosody
                  for ${imported.counts.new + imported.counts.updated + imported.counts.unchanged} accounts
  group chat      any room at conference.localhost (e.g. test@conference.localhost)
  CA to trust     ${ca}
                  (a self-signed development certificate; trust it in your client,
                   or for a Node client: NODE_EXTRA_CA_CERTS=${ca})
  upstream        Prosody on 127.0.0.1:${upstreamPort}, data in ${dir}

Point a client at host 127.0.0.1 port ${port} with one of the accounts above.
Press Ctrl-C to stop (the Prosody instance and its data are removed).

`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await server.stop();
    await run("bash", [PROSODY_SH, "stop", join(dir, "prosody")]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
