/**
 * Operator tooling against the real proxy process and a real upstream (issue 6, points 2-4):
 * /metrics, `minimix-proxy status` and `minimix-proxy check`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import * as tls from "node:tls";
import { generateSelfSigned } from "../../tls/dev-cert.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { connectClient, connectError, xml, type TestClient } from "../support/client.js";
import { CLI, startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { serverAgnosticBlocks, upstreamServers } from "../support/servers.js";
import { createRoom, groupchat, groupchatsWithBody, join as joinRoom, sleep, uniqueRoom } from "../support/muc.js";
import type { Status } from "../../proxy/status.js";

const cert = inject("proxyCert");
const server = upstreamServers()[0]!;

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    }).on("error", reject);
  });
}

/** Sum of the samples of `name` whose labels include every given label. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let seen = false;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) {
      sum += Number(m[3]);
      seen = true;
    }
  }
  if (!seen) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return sum;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function until(pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(50);
  }
}

describe(`operations against a real ${server.kind}`, () => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];
  const scrape = async (): Promise<string> => (await get(proxy.metricsPort!, "/metrics")).body;

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug" });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  it("serves /metrics on the --metrics address (Prometheus text) and logs where", async () => {
    expect(proxy.metricsPort).toBeGreaterThan(0);
    const r = await get(proxy.metricsPort!, "/metrics");
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain("# TYPE minimix_connections gauge");
    expect(r.body).toContain("process_resident_memory_bytes");
  });

  it("account-level MUC: connections, auth, stanzas, rooms, fan-out and deliveries saved", async () => {
    const room = uniqueRoom(server.muc, "ops");
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `owner-${randomUUID().slice(0, 4)}` });
    clients.push(bob);
    await createRoom(bob, room, "bob");
    const before = await scrape();
    const phone = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: "phone" });
    const laptop = await connectClient({ port: proxy.tlsPort, transport: "direct", username: "alice", password: "alicepass", resource: "laptop" });
    clients.push(phone, laptop);
    await joinRoom(phone, room, "alice", { history: { maxstanzas: "0" } });
    await joinRoom(laptop, room, "alice", { history: { maxstanzas: "0" } });
    for (let i = 0; i < 3; i++) await groupchat(bob, room, `ops ${i}`);
    await until(async () => groupchatsWithBody(phone, room, "ops 2").length === 1 && groupchatsWithBody(laptop, room, "ops 2").length === 1);

    const m = await scrape();
    expect(value(m, "minimix_connections", { transport: "starttls", state: "open" })).toBe(1);
    expect(value(m, "minimix_connections", { transport: "direct-tls", state: "open" })).toBe(1);
    expect(value(m, "minimix_connections_accepted_total") - value(before, "minimix_connections_accepted_total")).toBe(2);
    expect(value(m, "minimix_auth_successes_total") - value(before, "minimix_auth_successes_total")).toBe(2);
    expect(value(m, "minimix_upstream_connect_seconds_count", { purpose: "session" })).toBeGreaterThanOrEqual(2);
    expect(value(m, "minimix_upstream_connect_seconds_count", { purpose: "account" })).toBe(1);
    expect(value(m, "minimix_stanzas_total", { direction: "in", kind: "presence" })).toBeGreaterThanOrEqual(2);
    expect(value(m, "minimix_stanzas_total", { direction: "out", kind: "message" })).toBeGreaterThanOrEqual(6);
    expect(value(m, "minimix_stanza_bytes_total", { direction: "out", kind: "message" })).toBeGreaterThan(6 * 50);
    expect(value(m, "minimix_accounts")).toBe(1);
    expect(value(m, "minimix_account_sessions", { state: "up" })).toBe(1);
    expect(value(m, "minimix_rooms", { state: "joined" })).toBe(1);
    expect(value(m, "minimix_room_sessions_count")).toBe(1);
    expect(value(m, "minimix_room_sessions_sum")).toBe(2);
    expect(value(m, "minimix_room_buffered_messages")).toBeGreaterThanOrEqual(3);
    const fanOut = value(m, "minimix_fanout_deliveries_total");
    const received = value(m, "minimix_room_stanzas_received_total");
    expect(fanOut).toBeGreaterThanOrEqual(6); // 3 messages × 2 sessions at least
    expect(received).toBeGreaterThanOrEqual(3);
    expect(value(m, "minimix_upstream_deliveries_saved")).toBe(fanOut - received);
    expect(fanOut - received).toBeGreaterThanOrEqual(3); // each of bob's messages came once and went twice
    expect(m).not.toContain("alice@");

    // minimix-proxy status: human readable, then --json
    const st = await run(["status", "--metrics", `127.0.0.1:${proxy.metricsPort}`]);
    expect(st.stderr).toBe("");
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/^minimix-proxy \S+ \(pid \d+\), up \d+/);
    expect(st.stdout).toContain("account alice@localhost");
    expect(st.stdout).toMatch(/account session: up as alice@localhost\/minimix-[0-9a-f]+/);
    expect(st.stdout).toMatch(/alice@localhost\/phone {2}starttls {2}open/);
    expect(st.stdout).toMatch(/alice@localhost\/laptop {2}direct-tls {2}open/);
    expect(st.stdout).toMatch(new RegExp(`${room.replace(/[.]/g, "\\.")} as alice \\(from client joins\\): joined, \\d+ other occupants?, \\d+ buffered messages?`));
    expect(st.stdout).toMatch(/sessions in room: alice@localhost\/(phone|laptop), alice@localhost\/(phone|laptop)/);

    const js = await run(["status", "--json", "--metrics", `127.0.0.1:${proxy.metricsPort}`]);
    expect(js.code).toBe(0);
    const status = JSON.parse(js.stdout) as Status;
    const alice = status.accounts.find((a) => a.jid === "alice@localhost")!;
    expect(alice.accountSession.state).toBe("up");
    expect(alice.sessions.map((s) => s.jid).sort()).toEqual(["alice@localhost/laptop", "alice@localhost/phone"]);
    const r = alice.rooms.find((x) => x.room === room)!;
    expect(r.sessions.sort()).toEqual(["alice@localhost/laptop", "alice@localhost/phone"]);
    expect(r.occupants).toBeGreaterThanOrEqual(1); // bob
    expect(r.source).toBe("client");
    expect(r.buffered).toBeGreaterThanOrEqual(3);
    expect(alice.stats.fromRoom).toBeGreaterThanOrEqual(3);
  });

  it("counts authentication failures by condition", async () => {
    const before = value(await scrape(), "minimix_auth_failures_total", { condition: "not-authorized" });
    const err = await connectError({ port: proxy.port, username: "alice", password: "wrong" });
    expect(err.condition).toBe("not-authorized");
    await until(async () => value(await scrape(), "minimix_auth_failures_total", { condition: "not-authorized" }) === before + 1);
  });

  it("counts TLS handshake failures on both transports", async () => {
    const m0 = await scrape();
    const direct = net.connect(proxy.tlsPort, "127.0.0.1");
    direct.on("error", () => undefined);
    direct.write("GET / HTTP/1.0\r\n\r\n");
    const starttls = await RawClient.connect(proxy.port);
    starttls.send(starttls.header());
    await starttls.waitFor(/<starttls/);
    starttls.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await starttls.waitFor(/<proceed/);
    starttls.send("this is not a TLS ClientHello\r\n");
    await until(async () => {
      const m = await scrape();
      return value(m, "minimix_tls_handshake_failures_total", { transport: "direct-tls" }) === value(m0, "minimix_tls_handshake_failures_total", { transport: "direct-tls" }) + 1 &&
        value(m, "minimix_tls_handshake_failures_total", { transport: "starttls" }) === value(m0, "minimix_tls_handshake_failures_total", { transport: "starttls" }) + 1;
    });
    direct.destroy();
    starttls.close();
  });

  it("counts limit breaches by framer code", async () => {
    const c = await RawClient.connect(proxy.port);
    await c.login("carol", "carolpass", "big");
    c.send(`<message to='bob@localhost' type='chat'><body>${"x".repeat(300_000)}</body></message>`);
    await c.waitClosed();
    const breaches = async (): Promise<number> => {
      try {
        return value(await scrape(), "minimix_limit_breaches_total", { leg: "client", kind: "XML_STANZA_TOO_LARGE" });
      } catch {
        return 0; // no such series yet
      }
    };
    await until(async () => (await breaches()) === 1);
    // once per connection, although the framer saw several more chunks after the limit
    await sleep(200);
    expect(await breaches()).toBe(1);
  });

  it("status fails cleanly when nothing listens; /status answers JSON on loopback", async () => {
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const st = await run(["status", "--metrics", `127.0.0.1:${free}`]);
    expect(st.code).toBe(1);
    expect(st.stderr).toMatch(/cannot reach the proxy at http:\/\/127\.0\.0\.1:\d+\/status: ECONNREFUSED/);
    const r = await get(proxy.metricsPort!, "/status");
    expect(r.type).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toHaveProperty("accounts");
  });

  it("a busy metrics port stops start-up with a clear message; --metrics off runs without it", async () => {
    await expect(startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--metrics", `127.0.0.1:${proxy.metricsPort}`] })).rejects.toThrow(/could not start the metrics server/);
    const off = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--metrics", "off"] });
    try {
      expect(off.metricsPort).toBeUndefined();
      expect(off.logs().some((l) => l.msg === "metrics listening")).toBe(false);
    } finally {
      await off.stop();
    }
  });
});

describe.runIf(serverAgnosticBlocks())("SIGHUP (systemctl reload, docker kill --signal=HUP)", () => {
  function servedFingerprint(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: ["xmpp-client"] }, () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.destroy();
        resolve(fp);
      });
      s.on("error", reject);
    });
  }

  it("re-reads the certificate files without dropping connections; a broken file keeps the old ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-hup-"));
    const certFile = join(dir, "fullchain.pem");
    const keyFile = join(dir, "privkey.pem");
    copyFileSync(cert.certFile, certFile);
    copyFileSync(cert.keyFile, keyFile);
    const p = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: certFile, key: keyFile, logLevel: "info" });
    try {
      const c = await connectClient({ port: p.tlsPort, transport: "direct", username: "carol", password: "carolpass", resource: "hup" });
      const before = await servedFingerprint(p.tlsPort);
      const renewed = generateSelfSigned(["localhost"]);
      writeFileSync(certFile, renewed.cert);
      writeFileSync(keyFile, renewed.key);
      p.child.kill("SIGHUP");
      await p.waitForLog((l) => l.msg === "certificates reloaded");
      const after = await servedFingerprint(p.tlsPort);
      expect(after).not.toBe(before);
      expect(after).toBe(new (await import("node:crypto")).X509Certificate(renewed.cert).fingerprint256);

      writeFileSync(keyFile, "not a key");
      p.child.kill("SIGHUP");
      await p.waitForLog((l) => l.msg === "certificate reload failed; keeping the previous certificates");
      expect(await servedFingerprint(p.tlsPort)).toBe(after);

      // the session that was open before the reloads is still served
      const pong = await c.xmpp.iqCaller.request(xml("iq", { type: "get", to: "localhost", id: "hup-ping" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      expect(pong.attrs.type).toBe("result");
      await c.stop();
    } finally {
      await p.stop();
    }
  });
});

describe.each(upstreamServers())("minimix-proxy check against a real $kind", (server) => {
  const base = ["check", "--domain", "localhost", "--cert", cert.certFile, "--key", cert.keyFile, "--metrics", "off"];

  it("STARTTLS upstream: every check passes (the self-signed test certificate is a warning); exit 0", async () => {
    const r = await run([...base, "--upstream", `127.0.0.1:${server.port}`, "--upstream-ca", server.certFile]);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trimEnd().split("\n");
    for (const l of lines) expect(l).toMatch(/^(OK  |WARN|FAIL) \S.*: /);
    expect(lines[0]).toMatch(/^OK {3}config: command line is valid: domain localhost;/);
    expect(lines).toContainEqual(`OK   key ${cert.keyFile}: matches ${cert.certFile}`);
    expect(lines).toContainEqual(`OK   domain localhost: covered by ${cert.certFile}`);
    expect(lines).toContainEqual(expect.stringMatching(/^OK {3}upstream 127\.0\.0\.1:\d+: TCP connected in \d+ ms$/));
    expect(lines).toContainEqual(expect.stringMatching(/^OK {3}upstream 127\.0\.0\.1:\d+: STARTTLS: TLSv1\.[23], certificate verified for localhost$/));
    expect(lines).toContainEqual(expect.stringMatching(/^OK {3}upstream 127\.0\.0\.1:\d+: SASL mechanisms offered: .*SCRAM-SHA-1.*; the proxy will use SCRAM-SHA-(1|256)$/));
    expect(lines.filter((l) => l.startsWith("FAIL"))).toEqual([]);
    expect(r.code).toBe(0);
  });

  it("direct-TLS upstream (XEP-0368)", async () => {
    const r = await run([...base, "--upstream", `127.0.0.1:${server.tlsPort}`, "--upstream-tls", "direct", "--upstream-ca", server.certFile]);
    expect(r.stdout).toMatch(/^OK {3}upstream 127\.0\.0\.1:\d+: direct TLS connected in \d+ ms: TLSv1\.[23], certificate verified for localhost$/m);
    expect(r.stdout).toMatch(/^OK {3}upstream .*: SASL mechanisms offered: /m);
    expect(r.code).toBe(0);
  });

  it("an untrusted upstream certificate and an unserved domain are FAILs; exit 1", async () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = await run([...base, "--upstream", `127.0.0.1:${server.port}`], env);
    expect(r.stdout).toMatch(/^FAIL upstream 127\.0\.0\.1:\d+: TLS failed: .*\(set upstream-ca for a private CA\)$/m);
    expect(r.code).toBe(1);
    const other = await run(["check", "--domain", "not-served.example", "--upstream", `127.0.0.1:${server.port}`, "--upstream-ca", server.certFile, "--metrics", "off"]);
    expect(other.stdout).toMatch(/^FAIL upstream 127\.0\.0\.1:\d+: (stream error host-unknown|.*closed)/m);
    expect(other.code).toBe(1);
  });

  it("an invalid config file: the ConfigError as a FAIL line; exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "minimix-check-"));
    const f = join(dir, "config.toml");
    writeFileSync(f, 'domain = "localhost"\nlisten_tls = "0.0.0.0:5223"\n');
    const r = await run(["check", "--config", f]);
    expect(r.stdout).toBe(`FAIL config: unknown key "listen_tls" in ${f} (did you mean "listen-tls"?)\n`);
    expect(r.code).toBe(2);
    writeFileSync(f, `domain = "localhost"\ncert = "${cert.certFile}"\nkey = "${cert.keyFile}"\nupstream = "127.0.0.1:${server.port}"\nupstream-ca = "${server.certFile}"\nmetrics = "off"\n`);
    const ok = await run(["check", "--config", f]);
    expect(ok.stdout).toContain(`OK   config: ${f} is valid`);
    expect(ok.code).toBe(0);
  });
});

