/**
 * `--upstream-tls none` (docs/architecture.md §3.6): the proxy beside the server logs its legs in over
 * plain TCP on loopback, so neither side spends a TLS handshake per login on that leg. Against a private
 * instance of each server started with plain c2s allowed (Prosody c2s_require_encryption = false,
 * ejabberd starttls_required: false): logins, a room and its traffic work, and the leg is really plain
 * (a relay in between sees the SASL exchange in clear). Against the shared instances, which require TLS:
 * a clear refusal (remote-connection-failed for the client, UPSTREAM_TLS naming the server option in the
 * log, a FAIL line from `check`). A non-loopback upstream is refused by the config (proxy/config.test.ts).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connectClient, connectError, type TestClient } from "../support/client.js";
import { CLI, startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { createRoom, groupchat, groupchatsWithBody, join, uniqueRoom } from "../support/muc.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { until } from "../support/poll.js";

const cert = inject("proxyCert");
const run = promisify(execFile);

async function check(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const r = await run(process.execPath, [CLI, "check", "--domain", "localhost", "--cert", cert.certFile, "--key", cert.keyFile, "--metrics", "off", ...args], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? "" };
  }
}

describe.each(upstreamServers())("--upstream-tls none against a real $kind", (shared) => {
  describe("a server that accepts plain c2s on loopback", () => {
    let up: Upstream;
    let relay: TcpRelay;
    let proxy: ProxyProcess;
    const clients: TestClient[] = [];

    beforeAll(async () => {
      up = await startUpstream(shared.kind, {
        env: shared.kind === "prosody" ? { PROSODY_REQUIRE_ENCRYPTION: "false" } : { EJABBERD_STARTTLS_REQUIRED: "false" },
      });
      relay = await TcpRelay.start(up.port);
      // no --upstream-ca: a leg that tried TLS could not verify the private instance's certificate
      proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: "", cert: cert.certFile, key: cert.keyFile, extraArgs: ["--upstream-tls", "none"] });
    }, 180_000);

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await proxy?.stop();
      await relay?.close();
      await up?.stop();
    });

    it("logs clients in over a plain leg: the SASL exchange crosses the relay in clear, no TLS record does", async () => {
      const seen = relay.all.length;
      const alice = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: "plain-leg" });
      clients.push(alice);
      expect(alice.jid).toBe("alice@localhost/plain-leg");
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "alice@localhost", 10_000);
      const legs = relay.all.slice(seen);
      expect(legs.length).toBeGreaterThan(0);
      for (const leg of legs) {
        const up = leg.head.toString("latin1");
        expect(up.startsWith("<?xml")).toBe(true); // a TLS ClientHello would start with 0x16
        expect(up).toMatch(/<auth [^>]*mechanism='SCRAM-SHA-(1|256)'/);
        expect(up).not.toContain("<starttls");
      }
    });

    it("the account layer works on it: room traffic reaches both sessions of the account once, and theirs the room", async () => {
      const room = uniqueRoom(up.muc, "plain");
      const bob = await connectClient({ port: proxy.port, username: "bob", password: "bobpass", resource: "owner" });
      clients.push(bob);
      await createRoom(bob, room, "bob");
      const a1 = await connectClient({ port: proxy.port, username: "carol", password: "carolpass", resource: "one" });
      const a2 = await connectClient({ port: proxy.port, username: "carol", password: "carolpass", resource: "two" });
      clients.push(a1, a2);
      await join(a1, room, "carol");
      await join(a2, room, "carol");
      await groupchat(bob, room, "over a plain loopback leg");
      for (const c of [a1, a2]) await until("the message at each session", () => groupchatsWithBody(c, room, "over a plain loopback leg").length === 1);
      await groupchat(a1, room, "from carol");
      await until("carol's message at bob", () => groupchatsWithBody(bob, room, "from carol").length === 1);
    });

    it("check: TCP, the plain leg and the SASL mechanisms are OK; exit 0", async () => {
      const r = await check(["--upstream", `127.0.0.1:${up.port}`, "--upstream-tls", "none"]);
      expect(r.stdout).toMatch(/^OK {3}upstream 127\.0\.0\.1:\d+: TCP connected in \d+ ms$/m);
      expect(r.stdout).toMatch(/^OK {3}upstream 127\.0\.0\.1:\d+: plain TCP on loopback \(upstream-tls none\)/m);
      expect(r.stdout).toMatch(/^OK {3}upstream 127\.0\.0\.1:\d+: SASL mechanisms offered: .*SCRAM-SHA-1/m);
      expect(r.code).toBe(0);
    });
  });

  describe("a server that requires TLS (the shared instance)", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await startProxy({ upstreamPort: shared.port, upstreamCa: shared.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--upstream-tls", "none"] });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("a login fails with remote-connection-failed; the log names the server option to change", async () => {
      const err = await connectError({ port: proxy.port, username: "alice", password: "alicepass", resource: "refused" });
      expect(err.condition).toBe("remote-connection-failed");
      const line = await proxy.waitForLog((l) => l.msg === "upstream unavailable");
      expect(line.code).toBe("UPSTREAM_TLS");
      expect(JSON.stringify(line)).toMatch(/requires TLS.*c2s_require_encryption/);
      expect(proxy.stdout()).not.toContain("alicepass");
    });

    it("check: a FAIL line that says so; exit 1", async () => {
      const r = await check(["--upstream", `127.0.0.1:${shared.port}`, "--upstream-tls", "none"]);
      expect(r.stdout).toMatch(/^FAIL upstream 127\.0\.0\.1:\d+: .*requires TLS/m);
      expect(r.code).toBe(1);
    });
  });
});
