/**
 * Faults (issue 5): the account session's upstream cut while sessions sit in a room, an upstream
 * restart, a client killed mid-stanza, an upstream that accepts TCP but never answers. After each:
 * clean errors, no leaked sockets, no leaked sessions. (TLS handshakes that never finish are in
 * slow-peers.test.ts.) The proxy reaches the server through test/support/tcp-relay.ts so the test
 * can cut exactly the connection it means.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { RawClient } from "../support/raw-client.js";
import { createRoom, groupchat, groupchatsWithBody, isSelfPresence, join, sleep, uniqueRoom } from "../support/muc.js";
import { establishedTo } from "../support/sockets.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { until } from "../support/poll.js";

const cert = inject("proxyCert");
const clients: TestClient[] = [];

async function client(port: number, user: "alice" | "bob" | "carol", resource: string): Promise<TestClient> {
  const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
  clients.push(c);
  return c;
}

function streamErrorOf(text: string): string | undefined {
  return /<stream:error><([a-z-]+) /.exec(text)?.[1];
}

/** Presences from the room announcing someone left (what a session must never see for a cut upstream). */
function unavailableFrom(c: TestClient, room: string): Element[] {
  return c.received.filter((el) => el.is("presence") && el.attrs.type === "unavailable" && String(el.attrs.from).startsWith(`${room}/`));
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
});

describe.each(upstreamServers())("against a real $kind", (server) => {
  describe("account session cut (relay in front of the shared server)", () => {
    let relay: TcpRelay;
    let proxy: ProxyProcess;
    beforeAll(async () => {
      relay = await TcpRelay.start(server.port);
      proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
    });
    afterAll(async () => {
      await proxy?.stop();
      await relay?.close();
    });

    it("messages sent during the outage reach every joined session exactly once; no spurious unavailable", async () => {
      const room = uniqueRoom(server.muc, "cut");
      const bob = await client(server.port, "bob", "owner");
      await createRoom(bob, room, "bob");
      const beforeLogin = Date.now();
      await sleep(20);
      const phone = await client(proxy.port, "alice", "phone");
      // the account session starts at the phone's login (docs/architecture.md §4.1): the connections
      // opened since are the phone's own leg (at its first stream header), then the account session's
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "alice@localhost", 10_000);
      const opened = relay.openedAfter(beforeLogin);
      expect(opened).toHaveLength(2);
      const accountConns = opened.slice(1);
      const laptop = await client(proxy.port, "alice", "laptop");
      for (const c of [phone, laptop]) expect(isSelfPresence(await join(c, room, "alice", { history: { maxstanzas: "0" } }), room)).toBe(true);
      await groupchat(bob, room, "before the cut");
      for (const c of [phone, laptop]) await c.waitFor((el) => el.getChildText("body") === "before the cut");

      const onlineBefore = proxy.logs().filter((l) => l.msg === "account session online").length;
      expect(relay.cut(accountConns[0]!)).toBe(1);
      const during = [];
      for (let i = 0; i < 5; i++) during.push(`during outage ${i}`);
      for (const b of during) await groupchat(bob, room, b);
      // the account session reconnects (backoff ≈1 s ± jitter) and rejoins with <history since=…>
      await proxy.waitForLog((l) => l.msg === "account session lost", 5000);
      await until("account session back online", () => proxy.logs().filter((l) => l.msg === "account session online").length > onlineBefore, 15_000);
      await groupchat(bob, room, "after the rejoin");
      for (const c of [phone, laptop]) await c.waitFor((el) => el.getChildText("body") === "after the rejoin", 10_000);
      await sleep(300);
      for (const c of [phone, laptop]) {
        for (const b of [...during, "before the cut", "after the rejoin"]) expect(groupchatsWithBody(c, room, b), `${c.jid}: ${b}`).toHaveLength(1);
        expect(unavailableFrom(c, room)).toEqual([]);
      }
      // still one occupant for the account in the room (a rejoin, not a second occupant)
      // (open since the phone's login: its leg, the laptop's, and one account session, the cut one gone)
      expect(relay.open().filter((c) => c.openedAt > beforeLogin)).toHaveLength(3);
      // no leaked upstream sockets: two session legs + one account session
      expect(establishedTo(proxy.child.pid!, relay.port)).toBe(3);
    }, 40_000);
  });

  describe("upstream restart while accounts sit in rooms (a private server of the same kind behind a relay)", () => {
    let up: Upstream | undefined;
    let dir: string;
    let relay: TcpRelay;
    let proxy: ProxyProcess;
    beforeAll(async () => {
      dir = mkdtempSync(joinPath(tmpdir(), "minimix-restart-"));
      up = await startUpstream(server.kind, { dir });
      relay = await TcpRelay.start(up.port);
      proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile });
    }, 150_000);
    afterAll(async () => {
      await proxy?.stop();
      await relay?.close();
      await up?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("downstream sessions get a clean stream error; the account session reconnects and rejoins", async () => {
      const room = uniqueRoom(up!.muc, "restart");
      const raw = await RawClient.connect(proxy.port);
      const jid = await raw.login("alice", "alicepass", "restart-raw");
      raw.send(`<presence to='${room}/alice'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
      await raw.waitFor(/status code=["']110["']/);
      expect(establishedTo(proxy.child.pid!, relay.port)).toBe(2); // the session's leg + the account session

      await up!.stop();
      await raw.waitClosed(10_000);
      // Prosody says goodbye with its own condition; the proxy passes it through (or reports the lost link)
      expect(["system-shutdown", "connection-timeout"]).toContain(streamErrorOf(raw.text));
      await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === jid);

      const onlineBefore = proxy.logs().filter((l) => l.msg === "account session online").length;
      // same directory (accounts, rooms, certificate); users are not registered again: that would give
      // them new SCRAM salts, which a real restart never does (the kept SaltedPassword would then fail
      // with UPSTREAM_AUTH and the account would wait for its next login)
      up = await startUpstream(server.kind, { dir, users: " " });
      relay.retarget(up.port);
      // reconnect with backoff: ≈1, 2, 4, 8 s (± 20 %) after the loss
      await until("account session back online", () => proxy.logs().filter((l) => l.msg === "account session online").length > onlineBefore, 40_000);
      // it rejoined: another account (carol, through the proxy, so the server's presences are what she
      // sees) finds alice's account occupant in the room
      const carol = await client(proxy.port, "carol", "after-restart");
      const self = await join(carol, room, "carol", { history: { maxstanzas: "0" } });
      expect(isSelfPresence(self, room)).toBe(true);
      await until("alice's occupant seen", () => carol.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type !== "unavailable"), 10_000);
      // a new session of the account joins from state and gets room traffic again
      const alice = await client(proxy.port, "alice", "after");
      expect(isSelfPresence(await join(alice, room, "alice", { history: { maxstanzas: "0" } }), room)).toBe(true);
      await groupchat(carol, room, "welcome back");
      await alice.waitFor((el) => el.getChildText("body") === "welcome back");
      expect(groupchatsWithBody(alice, room, "welcome back")).toHaveLength(1);
      // sockets: alice's and carol's legs + their two account sessions; nothing left from before the restart
      expect(establishedTo(proxy.child.pid!, relay.port)).toBe(4);
    }, 150_000);
  });

  describe("dead peers", () => {
    let relay: TcpRelay;
    let proxy: ProxyProcess;
    beforeAll(async () => {
      relay = await TcpRelay.start(server.port);
      // no linger: an account session closes with its account's last session, so "no stray sockets" means none at all
      proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--upstream-timeout", "1", "--account-session-linger", "0"] });
    });
    afterAll(async () => {
      await proxy?.stop();
      await relay?.close();
    });

    it("a client killed mid-stanza: nothing half-sent is delivered; its sockets and session are gone", async () => {
      const bob = await client(server.port, "bob", "victim");
      const c = await RawClient.connect(proxy.port);
      const jid = await c.login("alice", "alicepass", `killed-${randomUUID().slice(0, 4)}`);
      // its login started the account session (§4.1): counted once it is up
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "alice@localhost", 10_000);
      const base = establishedTo(proxy.child.pid!, relay.port);
      c.send(`<message to='${bob.jid}' type='chat' id='half'><body>this stanza never ends`);
      await sleep(100);
      c.socket.destroy(); // killed: no close tag, no FIN handshake of the stream
      await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === jid);
      // its own leg, and the account session it was the last user of (no linger here)
      await until("upstream leg and account session closed", () => establishedTo(proxy.child.pid!, relay.port) === base - 2, 5000);
      await sleep(200);
      expect(bob.received.filter((el) => el.attrs.id === "half")).toHaveLength(0);
    });

    it("a client killed mid-<auth/>: no upstream connection is left behind", async () => {
      // counted before the client connects: its stream opens the session's upstream connection at
      // once (docs/architecture.md §3.5, the early upstream), which must go with it
      const base = relay.open().length;
      const c = await RawClient.connect(proxy.port);
      await c.startTls();
      c.send(c.header());
      await c.waitFor(/<mechanisms/);
      c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNl");
      await sleep(100);
      c.socket.destroy();
      await sleep(300);
      expect(relay.open().length).toBe(base);
    });

    it("an upstream that accepts TCP but never answers: remote-connection-failed within --upstream-timeout, nothing leaks", async () => {
      relay.mode = "blackhole";
      try {
        const c = await RawClient.connect(proxy.port);
        await c.startTls();
        c.send(c.header());
        await c.waitFor(/<mechanisms/);
        const started = Date.now();
        c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("\0alice\0alicepass").toString("base64")}</auth>`);
        await c.waitClosed(10_000);
        const ms = Date.now() - started;
        expect(streamErrorOf(c.text)).toBe("remote-connection-failed");
        expect(ms).toBeGreaterThanOrEqual(900);
        expect(ms).toBeLessThan(4000);
        const line = await proxy.waitForLog((l) => l.msg === "upstream unavailable" && l.code === "UPSTREAM_TIMEOUT");
        expect(String(line.reason)).toMatch(/did not answer/);
        // the proxy closed its blackholed upstream socket too
        await until("blackholed connection closed", () => relay.open().filter((r) => r.upstream === undefined).length === 0, 3000);
      } finally {
        relay.mode = "pass";
      }
    });

    it("afterwards the proxy serves normally and holds no stray sockets", async () => {
      const c = await client(proxy.port, "carol", "after-faults");
      expect(c.jid).toMatch(/^carol@localhost\//);
      await c.stop();
      await until("no upstream sockets", () => establishedTo(proxy.child.pid!, relay.port) === 0, 5000);
      const accepted = proxy.logs().filter((l) => l.msg === "connection accepted").length;
      await until("every session closed", () => proxy.logs().filter((l) => l.msg === "connection closed").length === accepted, 5000);
    });
  });
});
