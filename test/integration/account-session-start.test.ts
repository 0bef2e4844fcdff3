/**
 * When the account session logs in (docs/architecture.md §4.1, issue 15): with
 * `--account-session-start login` (the default) at a client's login, so the first join costs no login;
 * kept for `--account-session-linger` after the last session and room; `join`: only at the first join.
 * A failed account-session login leaves the client's own login alone.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { createRoom, groupchat, isSelfPresence, join, sleep, uniqueRoom } from "../support/muc.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { until } from "../support/poll.js";

const cert = inject("proxyCert");

describe.each(upstreamServers())("against a real $kind", (server) => {
  const clients: TestClient[] = [];
  async function connect(port: number, user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }
  const online = (p: ProxyProcess, account: string): number =>
    p.logs().filter((l) => l.msg === "account session online" && l.account === account).length;
  const closedLogs = (p: ProxyProcess, account: string): string[] =>
    p.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("account session closed") && l.account === account).map((l) => l.msg);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
  });

  describe("--account-session-start login, short linger", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--account-session-linger", "1"] });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("logs the account session in right after a client's login, before any join", async () => {
      const alice = await connect(proxy.port, "alice", "login");
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "alice@localhost", 10_000);
      expect(alice.received.some((el) => el.is("presence") && String(el.attrs.from ?? "").includes("@" + server.muc))).toBe(false);
      await alice.stop();
    });

    it("answers a first join without a login in between, then closes after the linger", async () => {
      const room = uniqueRoom(server.muc, "warm");
      const bob = await connect(server.port, "bob", "warm");
      await createRoom(bob, room, "bob");
      const carol = await connect(proxy.port, "carol", "warm");
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "carol@localhost", 10_000);
      const before = online(proxy, "carol@localhost");
      const self = await join(carol, room, "carol");
      expect(isSelfPresence(self, room)).toBe(true);
      expect(online(proxy, "carol@localhost")).toBe(before);
      // the room is left: the session stays for the client still logged in
      await carol.send(xml("presence", { to: `${room}/carol`, type: "unavailable" }));
      await proxy.waitForLog((l) => l.msg === "account session has no rooms left: kept for the account's sessions" && l.account === "carol@localhost", 10_000);
      expect(closedLogs(proxy, "carol@localhost")).toEqual([]);
      await carol.stop();
      // nothing uses it any more: gone after the 1 s linger
      await proxy.waitForLog((l) => l.msg === "account session closed: linger over" && l.account === "carol@localhost", 10_000);
      expect(online(proxy, "carol@localhost")).toBe(before);
    });
  });

  describe("--account-session-start login, long linger", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--account-session-linger", "600"] });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("a client reconnecting within the linger finds the same account session", async () => {
      const room = uniqueRoom(server.muc, "linger");
      const bob = await connect(server.port, "bob", "linger");
      await createRoom(bob, room, "bob");
      const first = await connect(proxy.port, "alice", "phone");
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "alice@localhost", 10_000);
      await first.stop();
      await sleep(300); // the detach runs; the linger starts
      const again = await connect(proxy.port, "alice", "phone");
      const self = await join(again, room, "alice");
      expect(isSelfPresence(self, room)).toBe(true);
      expect(online(proxy, "alice@localhost")).toBe(1);
      expect(closedLogs(proxy, "alice@localhost")).toEqual([]);
    });
  });

  describe("--account-session-start login: the last room left and joined again at once", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("on the kept account session the old leave's echo does not end the new occupancy", async () => {
      const room = uniqueRoom(server.muc, "quick");
      const bob = await connect(server.port, "bob", "quick");
      await createRoom(bob, room, "bob");
      const carol = await connect(proxy.port, "carol", "quick");
      await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "carol@localhost", 10_000);
      expect(isSelfPresence(await join(carol, room, "carol"), room)).toBe(true);
      // her leave is answered from state at once; the server's echo of the account's leave comes later,
      // on the same account-session stream the re-join goes out on (docs/architecture.md §4.1)
      await carol.send(xml("presence", { to: `${room}/carol`, type: "unavailable" }));
      await carol.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/carol` && el.attrs.type === "unavailable");
      const again = await join(carol, room, "carol");
      expect(isSelfPresence(again, room)).toBe(true);
      expect(again.attrs.type).toBeUndefined();
      await sleep(500);
      const id = await groupchat(bob, room, "still in");
      await carol.waitFor((el) => el.attrs.id === id);
      expect(proxy.logs().filter((l) => l.msg === "account leaves room" && l.room === room)).toHaveLength(1);
      expect(online(proxy, "carol@localhost")).toBe(1);
    });
  });

  describe("--account-session-start join", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--account-session-start", "join"] });
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("logs the account session in only at the first join, and closes it with the last room", async () => {
      const room = uniqueRoom(server.muc, "lazy");
      const bob = await connect(server.port, "bob", "lazy");
      await createRoom(bob, room, "bob");
      const alice = await connect(proxy.port, "alice", "lazy");
      // a round trip on her own leg: her bind is long done, and no account session came of it
      await alice.xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await sleep(300);
      expect(online(proxy, "alice@localhost")).toBe(0);
      const self = await join(alice, room, "alice");
      expect(isSelfPresence(self, room)).toBe(true);
      // the proxy's log line travels on its stdout, the self-presence on a socket: either may come first
      await until("the account session's login logged", () => online(proxy, "alice@localhost") >= 1);
      expect(online(proxy, "alice@localhost")).toBe(1);
      await alice.send(xml("presence", { to: `${room}/alice`, type: "unavailable" }));
      await proxy.waitForLog((l) => l.msg === "account session closed: no rooms left" && l.account === "alice@localhost", 10_000);
    });
  });

  describe("the account session's login fails", () => {
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

    it("the client's own login and leg are unaffected, and a join works once the server takes the account session", async () => {
      // the client's own leg is opened at its first stream header (early upstream, §3.5): every
      // connection after it — the account session's, started at the bind — is refused
      const ownLeg = relay.all.length + 1;
      relay.admit = (id) => id <= ownLeg;
      const alice = await connect(proxy.port, "alice", "fail");
      await proxy.waitForLog((l) => l.msg === "account session could not connect" && l.account === "alice@localhost", 10_000);
      const roster = await alice.xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
      expect(roster.attrs.type).toBe("result");
      expect(online(proxy, "alice@localhost")).toBe(0);
      // the server takes connections again: the backoff retry brings the account session, a join works
      relay.admit = undefined;
      await until("account session online", () => online(proxy, "alice@localhost") === 1, 20_000);
      const room = uniqueRoom(server.muc, "after");
      const bob = await connect(server.port, "bob", "after");
      await createRoom(bob, room, "bob");
      const self = await join(alice, room, "alice");
      expect(isSelfPresence(self, room)).toBe(true);
    });
  });
});
