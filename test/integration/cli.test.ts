import { describe, expect, inject, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { CLI, startProxy } from "../support/proxy-process.js";
import { connectClient, connectError, xml } from "../support/client.js";
import { RawClient } from "../support/raw-client.js";
import { generateSelfSigned } from "../../tls/dev-cert.js";

const prosody = inject("prosody");
const cert = inject("proxyCert");

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The certificate a TLS server presents for `servername`, as PEM-less fingerprint. */
function peerFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: ["xmpp-client"] }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(fp);
    });
    s.once("error", reject);
  });
}

describe("command line", () => {
  it("prints its version and help", () => {
    expect(cli("--version").stdout).toMatch(/^minimix-proxy \d+\.\d+\.\d+/);
    const help = cli("--help");
    expect(help.status).toBe(0);
    for (const flag of ["--listen", "--listen-tls", "--domain", "--cert", "--key", "--upstream", "--upstream-tls", "--upstream-ca", "--upstream-insecure", "--log-level"]) {
      expect(help.stdout).toContain(flag);
    }
  });

  it.each([
    [["--listen", "nonsense", "--domain", "localhost"], /listen/],
    [["--domain", "localhost", "--upstream-tls", "sometimes"], /upstream-tls/],
    [["--listen", "127.0.0.1:0"], /domain/],
    [["--domain", "localhost", "--bogus"], /bogus/],
    [["--domain", "localhost", "--cert", "a.pem"], /key/],
  ])("rejects invalid flags %j with one line and exit code 2", (args, re) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(re);
  });

  it("rejects an invalid config file naming the key", () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-cfg-"));
    const file = join(dir, "config.toml");
    writeFileSync(file, 'domain = ["localhost"]\nmax-depth = "deep"\n');
    const r = cli("--config", file);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/max-depth/);
  });

  it("generates a self-signed dev certificate when none is configured, and says so", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "minimix-dev-"));
    const p = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: "", key: "", extraArgs: ["--state-dir", stateDir] });
    try {
      const line = await p.waitForLog((l) => typeof l.msg === "string" && l.msg.includes("self-signed development certificate"));
      expect(line.level).toBeGreaterThanOrEqual(40); // warn
      expect(existsSync(join(stateDir, "dev-cert.pem"))).toBe(true);
      const raw = await RawClient.connect(p.tlsPort, true).catch((e: Error) => e);
      // not trusted by the test clients (only the test CA is): the handshake itself must fail
      expect(raw).toBeInstanceOf(Error);
    } finally {
      await p.stop();
    }
  });

  it("reloads certificates on SIGHUP without dropping connections", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-hup-"));
    const certFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    copyFileSync(cert.certFile, certFile);
    copyFileSync(cert.keyFile, keyFile);
    const p = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: certFile, key: keyFile });
    try {
      const before = await peerFingerprint(p.tlsPort);
      const c = await connectClient({ port: p.port, username: "alice", password: "alicepass", resource: "hup" });
      const fresh = generateSelfSigned(["localhost"]);
      writeFileSync(certFile, fresh.cert);
      writeFileSync(keyFile, fresh.key);
      p.child.kill("SIGHUP");
      await p.waitForLog((l) => l.msg === "certificates reloaded");
      expect(await peerFingerprint(p.tlsPort)).not.toBe(before);
      // the existing session still works
      const res = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      expect(res.attrs).toBeDefined();
      // a broken file keeps the previous certificate
      writeFileSync(certFile, "garbage");
      p.child.kill("SIGHUP");
      await p.waitForLog((l) => l.msg === "certificate reload failed; keeping the previous certificates");
      expect(p.child.exitCode).toBeNull();
      await c.stop();
      expect(readFileSync(keyFile, "utf8")).toContain("PRIVATE KEY");
    } finally {
      await p.stop();
    }
  });
});

describe("keepalive", () => {
  it("sends whitespace keepalives to an idle client (--keepalive)", async () => {
    const p = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--keepalive", "1"] });
    try {
      const raw = await RawClient.connect(p.port);
      await raw.login("alice", "alicepass", "keepalive");
      await raw.waitFor(/^\s+$/, 5000);
      expect(raw.closed).toBe(false);
      raw.close();
    } finally {
      await p.stop();
    }
  });
});

describe("upstream TLS", () => {
  it("connects to the server with direct TLS (--upstream-tls direct)", async () => {
    const p = await startProxy({ upstreamPort: prosody.tlsPort, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--upstream-tls", "direct"] });
    try {
      const c = await connectClient({ port: p.port, username: "carol", password: "carolpass", resource: "direct-up" });
      expect(c.jid).toBe("carol@localhost/direct-up");
      await c.stop();
    } finally {
      await p.stop();
    }
  });

  it("refuses an upstream certificate it does not trust: remote-connection-failed", async () => {
    const other = generateSelfSigned(["localhost"]);
    const dir = mkdtempSync(join(tmpdir(), "minimix-ca-"));
    writeFileSync(join(dir, "ca.pem"), other.cert);
    const p = await startProxy({ upstreamPort: prosody.port, upstreamCa: join(dir, "ca.pem"), cert: cert.certFile, key: cert.keyFile });
    try {
      const err = await connectError({ port: p.port, username: "alice", password: "alicepass", resource: "x" });
      expect(err.condition).toBe("remote-connection-failed");
      const line = await p.waitForLog((l) => l.msg === "upstream unavailable");
      expect(line.code).toBe("UPSTREAM_TLS");
    } finally {
      await p.stop();
    }
  });

  it("warns loudly with --upstream-insecure, and then works without the CA", async () => {
    const p = await startProxy({ upstreamPort: prosody.port, upstreamCa: "", cert: cert.certFile, key: cert.keyFile, extraArgs: ["--upstream-insecure"] });
    try {
      const warn = await p.waitForLog((l) => typeof l.msg === "string" && l.msg.includes("DISABLED"));
      expect(warn.level).toBe(40);
      const c = await connectClient({ port: p.port, username: "bob", password: "bobpass", resource: "insecure" });
      expect(c.jid).toBe("bob@localhost/insecure");
      await c.stop();
    } finally {
      await p.stop();
    }
  });
});
