import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { generateSelfSigned } from "../../tls/dev-cert.js";
import { startUpstream, type Upstream } from "./upstream.js";

export interface ProvidedUpstream {
  kind: "prosody" | "ejabberd";
  port: number;
  tlsPort: number;
  domain: string;
  muc: string;
  certFile: string;
  dir: string;
  pid: number;
  users: { user: string; pass: string }[];
}

declare module "vitest" {
  export interface ProvidedContext {
    prosody: ProvidedUpstream;
    /** The certificate the test proxies present downstream; trusted by test clients. */
    proxyCert: { certFile: string; keyFile: string };
  }
}

let prosody: Upstream | undefined;
let certDir: string | undefined;

/**
 * Once per `vitest run`: a real Prosody on loopback (installed from Debian if missing) and a
 * certificate for the proxies under test. Test clients trust it through NODE_EXTRA_CA_CERTS, which
 * Node reads at start-up — the forked test workers start after this and inherit it.
 */
export async function setup(project: TestProject): Promise<void> {
  certDir = mkdtempSync(join(tmpdir(), "minimix-test-cert-"));
  const pem = generateSelfSigned(["localhost"]);
  const certFile = join(certDir, "cert.pem");
  const keyFile = join(certDir, "key.pem");
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  project.provide("proxyCert", { certFile, keyFile });

  prosody = await startUpstream("prosody");
  // one bundle: tests connect both to the proxies and, for comparison, straight to Prosody
  const bundle = join(certDir, "trusted.pem");
  writeFileSync(bundle, pem.cert + "\n" + readFileSync(prosody.certFile, "utf8"));
  process.env.NODE_EXTRA_CA_CERTS = bundle;
  project.provide("prosody", {
    kind: "prosody",
    port: prosody.port,
    tlsPort: prosody.tlsPort,
    domain: prosody.domain,
    muc: prosody.muc,
    certFile: prosody.certFile,
    dir: prosody.dir,
    pid: prosody.pid,
    users: prosody.users,
  });
}

export async function teardown(): Promise<void> {
  await prosody?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
}
