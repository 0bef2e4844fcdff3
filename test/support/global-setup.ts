import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { generateSelfSigned } from "../../tls/dev-cert.js";
import { startUpstream, type Upstream, type UpstreamKind } from "./upstream.js";

export interface ProvidedUpstream {
  kind: UpstreamKind;
  port: number;
  tlsPort: number;
  domain: string;
  muc: string;
  certFile: string;
  dir: string;
  pid: number;
  users: { user: string; pass: string }[];
  /** XEP-0114 listener for the push app server stand-in (test/support/component.ts). */
  component?: { port: number; host: string; secret: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The real servers started for this run, by kind (see MINIMIX_TEST_UPSTREAMS). */
    upstreams: Partial<Record<UpstreamKind, ProvidedUpstream>>;
    /** Kept for tests written before ejabberd joined: the Prosody instance (if it was started). */
    prosody: ProvidedUpstream;
    /** The certificate the test proxies present downstream; trusted by test clients. */
    proxyCert: { certFile: string; keyFile: string };
  }
}

const ALL_KINDS: UpstreamKind[] = ["prosody", "ejabberd"];

/**
 * Which real servers the integration suites run against: MINIMIX_TEST_UPSTREAMS="prosody,ejabberd"
 * (the default), or one of them to iterate faster on a single server.
 */
export function selectedKinds(env: NodeJS.ProcessEnv = process.env): UpstreamKind[] {
  const raw = (env.MINIMIX_TEST_UPSTREAMS ?? "").trim();
  if (raw === "") return ALL_KINDS;
  const kinds = raw.split(/[\s,]+/).filter((k) => k !== "");
  for (const k of kinds) {
    if (!ALL_KINDS.includes(k as UpstreamKind)) throw new Error(`MINIMIX_TEST_UPSTREAMS: unknown server "${k}" (expected ${ALL_KINDS.join(", ")})`);
  }
  return kinds as UpstreamKind[];
}

const started: Upstream[] = [];
let certDir: string | undefined;

function provided(u: Upstream): ProvidedUpstream {
  return { kind: u.kind, port: u.port, tlsPort: u.tlsPort, domain: u.domain, muc: u.muc, certFile: u.certFile, dir: u.dir, pid: u.pid, users: u.users,
    ...(u.component ? { component: u.component } : {}) };
}

/**
 * Once per `vitest run`: real servers on loopback (Prosody and ejabberd, started in parallel and
 * installed from Debian if missing) and a certificate for the proxies under test. Test clients trust
 * all of them through NODE_EXTRA_CA_CERTS, which Node reads at start-up — the forked test workers
 * start after this and inherit it.
 */
export async function setup(project: TestProject): Promise<void> {
  certDir = mkdtempSync(join(tmpdir(), "minimix-test-cert-"));
  const pem = generateSelfSigned(["localhost"]);
  const certFile = join(certDir, "cert.pem");
  const keyFile = join(certDir, "key.pem");
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  project.provide("proxyCert", { certFile, keyFile });

  const kinds = selectedKinds();
  // The start scripts apt-get install a missing server. Two installs at once would fight over
  // dpkg's lock on a fresh machine, so start one after the other unless both are installed.
  const installed = (k: UpstreamKind): boolean =>
    spawnSync("sh", ["-c", `command -v ${k === "prosody" ? "prosodyctl" : "ejabberdctl"}`]).status === 0;
  let results: PromiseSettledResult<Upstream>[];
  if (kinds.every(installed)) {
    results = await Promise.allSettled(kinds.map((k) => startUpstream(k)));
  } else {
    results = [];
    for (const k of kinds) {
      const [r] = await Promise.allSettled([startUpstream(k)]);
      results.push(r!);
    }
  }
  for (const r of results) if (r.status === "fulfilled") started.push(r.value);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(started.splice(0).map((u) => u.stop()));
    throw failed.reason;
  }

  // one bundle: tests connect both to the proxies and, for comparison, straight to each server
  const bundle = join(certDir, "trusted.pem");
  writeFileSync(bundle, [pem.cert, ...started.map((u) => readFileSync(u.certFile, "utf8"))].join("\n"));
  process.env.NODE_EXTRA_CA_CERTS = bundle;

  const upstreams: Partial<Record<UpstreamKind, ProvidedUpstream>> = {};
  for (const u of started) upstreams[u.kind] = provided(u);
  project.provide("upstreams", upstreams);
  if (upstreams.prosody) project.provide("prosody", upstreams.prosody);
}

export async function teardown(): Promise<void> {
  await Promise.all(started.splice(0).map((u) => u.stop()));
  if (certDir) rmSync(certDir, { recursive: true, force: true });
}
