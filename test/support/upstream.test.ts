import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { processAlive, readUpstreamEnv, startUpstream, type Upstream, type UpstreamKind } from "./upstream.js";

const started: Upstream[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((u) => u.stop()));
});

/** Open a c2s stream on a raw socket and return everything received up to the end of the features. */
function streamFeatures(host: string, port: number, domain: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let got = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no stream features within 10 s; got: ${got}`));
    }, 10_000);
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      sock.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
      );
    });
    sock.on("data", (chunk: string) => {
      got += chunk;
      if (got.includes("</stream:features>")) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Direct TLS (XEP-0368) to the server, trusting only its own certificate. */
function directTlsAuthorized(u: Upstream): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: u.host, port: u.tlsPort, servername: u.domain, ca: readFileSync(u.certFile) }, () => {
      resolve(sock.authorized);
      sock.destroy();
    });
    sock.on("error", reject);
  });
}

async function startedAndStopped(kind: UpstreamKind): Promise<void> {
  const t0 = performance.now();
  const u = await startUpstream(kind);
  started.push(u);
  const startMs = performance.now() - t0;

  expect(u.kind).toBe(kind);
  expect(u.host).toBe("127.0.0.1");
  expect(u.port).toBeLessThan(32768);
  expect(u.tlsPort).toBeLessThan(32768);
  expect(u.domain).toBe("localhost");
  expect(u.muc).toBe("conference.localhost");
  expect(u.users).toContainEqual({ user: "alice", pass: "alicepass" });
  expect(u.users).toHaveLength(3);
  expect(processAlive(u.pid)).toBe(true);

  const features = await streamFeatures(u.host, u.port, u.domain);
  expect(features).toContain("<starttls");
  // c2s_require_encryption / starttls_required: nothing to authenticate with before TLS
  expect(features).not.toContain("<mechanism>");
  expect(await directTlsAuthorized(u)).toBe(true);

  const t1 = performance.now();
  await u.stop();
  const stopMs = performance.now() - t1;
  expect(processAlive(u.pid)).toBe(false);
  await u.stop(); // idempotent
  console.log(`${kind}: startUpstream ${Math.round(startMs)} ms, stop ${Math.round(stopMs)} ms`);
}

describe("startUpstream", () => {
  it("runs Prosody: STARTTLS offered on the c2s port, direct TLS trusted, pid gone after stop", async () => {
    await startedAndStopped("prosody");
  }, 60_000);

  it("runs ejabberd: STARTTLS offered on the c2s port, direct TLS trusted, pid gone after stop", async () => {
    await startedAndStopped("ejabberd");
  }, 90_000);

  it("runs two Prosody instances side by side, and restarts on the same dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "upstream-restart-"));
    try {
      const a = await startUpstream("prosody", { dir, users: "dave:davepass" });
      started.push(a);
      const b = await startUpstream("prosody");
      started.push(b);
      expect(b.port).not.toBe(a.port);
      expect(a.users).toEqual([{ user: "dave", pass: "davepass" }]);
      await a.stop();
      const again = await startUpstream("prosody", { dir, users: "dave:davepass" });
      started.push(again);
      expect(again.dir).toBe(a.dir);
      expect(await streamFeatures(again.host, again.port, again.domain)).toContain("<starttls");
    } finally {
      await Promise.all(started.splice(0).map((u) => u.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("readUpstreamEnv", () => {
  it("parses KEY=VALUE lines with optional double quotes", () => {
    const dir = mkdtempSync(join(tmpdir(), "upstream-env-"));
    try {
      const file = join(dir, "upstream.env");
      writeFileSync(file, 'UPSTREAM_PORT=20001\nUPSTREAM_TLS_PORT=\nUPSTREAM_USERS="a:b c:d:e"\n\n# comment\n');
      expect(readUpstreamEnv(file)).toEqual({ UPSTREAM_PORT: "20001", UPSTREAM_TLS_PORT: "", UPSTREAM_USERS: "a:b c:d:e" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
