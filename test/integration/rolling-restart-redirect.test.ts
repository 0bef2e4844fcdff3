/**
 * Rolling restart, the sessions rolling-restart.test.ts does not cover (issue 16, docs/architecture.md
 * §8.7 "Rolling restart"), against the real servers with three proxy processes and a private redis-server:
 *
 * - a session a node only forwards (its account's owner is another node) is told where to go when that
 *   node gets SIGTERM: `<see-other-host/>` naming the owner's published address (the owner holds the
 *   account: no forwarding there), else `<system-shutdown/>` — between two of the owner's elements;
 * - WebSocket sessions get RFC 7395 §3.6.1 `<close see-other-uri='wss://…'/>`: owned by the stopping
 *   node (the peer the account hashes to), forwarded by it (the owner), or forwarded to it (its owner's
 *   choice, passed on by the forwarding node). @xmpp/websocket does not follow see-other-uri (its
 *   framed parser ends the stream at any `<close/>`), so the test connects to the URI itself, as a
 *   client that implements §3.6.1 would.
 *
 * "No message lost" is rolling-restart.test.ts's definition: each session ends up with every message
 * posted; one it got twice was first received live before the redirect and came again as a history copy
 * (`<delay/>`) stamped no earlier than the `since` it asked for at its rejoin; nothing after the rejoin twice.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { Redis } from "ioredis";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { connectWsClient } from "../support/ws-client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { createRoom, groupchat, isSelfPresence, join, NS_MUC, sleep, uniqueRoom } from "../support/muc.js";
import { upstreamServers, type ProvidedUpstream } from "../support/servers.js";
import { type RedisServer } from "../support/redis.js";
import { clusterSecretFile, expectNoLoss, useRedis } from "../support/cluster.js";
import { until } from "../support/poll.js";
import { pickFreePort } from "../../proxy/local-upstream.js";
import { choosePeer } from "../../core/cluster/redirect.js";

const cert = inject("proxyCert");
const TTL_S = 3;
const NS_STREAMS = "http://etherx.jabber.org/streams";
const NS_DELAY = "urn:xmpp:delay";

let redis: RedisServer;
let admin: Redis;
const secretFile = clusterSecretFile("minimix-redirect-secret");

const suiteRedis = useRedis();
beforeAll(() => {
  redis = suiteRedis.server;
  admin = suiteRedis.admin;
});

const receivedAt = new WeakMap<Element, number>();

/** The `since` a client without MAM asks for at its rejoin: its last live groupchat, a second early (whole-second stamps). */
function sinceFor(c: TestClient): string {
  const live = c.received.filter((el) => el.is("message") && el.attrs.type === "groupchat" && el.getChild("delay", NS_DELAY) === undefined);
  const last = receivedAt.get(live.at(-1)!) ?? Date.now();
  return new Date(Math.floor(last / 1000) * 1000 - 1000).toISOString();
}

const bodies = (els: Element[], room: string): Element[] =>
  els.filter((el) => el.is("message") && el.attrs.type === "groupchat" && String(el.attrs.from) === `${room}/bob` && el.getChildText("body") !== null);

describe.each(upstreamServers())("rolling restart: forwarded and WebSocket sessions ($kind)", (up: ProvidedUpstream) => {
  const procs: ProxyProcess[] = [];
  const clients: TestClient[] = [];
  let bob: TestClient;

  async function node(id: string, o: { clientAddress?: string | false } = {}): Promise<ProxyProcess> {
    const p = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, logLevel: "debug",
      extraArgs: ["--cluster-redis", redis.url, "--node-id", id, "--cluster-lease-ttl", String(TTL_S), "--bookmarks", "ignore",
        "--cluster-advertise", `127.0.0.1:${await pickFreePort()}`, "--cluster-secret-file", secretFile, "--listen-ws", "127.0.0.1:0",
        ...(o.clientAddress === false ? [] : ["--cluster-client-address", o.clientAddress ?? "127.0.0.1"])] });
    procs.push(p);
    return p;
  }
  const wssPort = (p: ProxyProcess): number => Number(p.logs().find((x) => x.msg === "listening" && x.transport === "websocket" && x.tls === true)!.port);
  const wssUrl = (p: ProxyProcess, host = "localhost"): string => `wss://${host}:${wssPort(p)}/xmpp-websocket`;

  /** bob posts N messages without pause; `sixth` resolves when the sixth was posted (then the test stops a node). */
  function posting(room: string, N = 16): { posted: string[]; sixth: () => boolean; done: Promise<void> } {
    const posted: string[] = [];
    let six = false;
    const done = (async () => {
      for (let i = 1; i <= N; i++) {
        const body = `m${String(i).padStart(2, "0")}`;
        await groupchat(bob, room, body);
        posted.push(body);
        if (i === 6) six = true;
        await sleep(300);
      }
    })();
    return { posted, sixth: () => six, done };
  }

  async function alice(o: { port: number; transport: "starttls" | "direct" } | { url: string }, resource: string): Promise<TestClient> {
    const c = "url" in o
      ? await connectWsClient({ url: o.url, username: "alice", password: "alicepass", resource, domain: up.domain })
      : await connectClient({ port: o.port, transport: o.transport, username: "alice", password: "alicepass", resource, sm: false });
    clients.push(c);
    c.xmpp.on("stanza", (el: Element) => receivedAt.set(el, Date.now()));
    return c;
  }

  /** The RFC 7395 §3.6.1 redirect a WebSocket client received (its raw messages), if any. */
  function seeOtherUri(c: TestClient): () => string | undefined {
    let uri: string | undefined;
    const socket = (c.xmpp as unknown as { socket: { on(ev: "data", f: (d: unknown) => void): void } }).socket;
    socket.on("data", (data) => {
      const m = /^<close [^>]*see-other-uri=["']([^"']+)["']/.exec(String(data));
      if (m) uri = m[1];
    });
    return () => uri;
  }

  /**
   * What a browser does with `<close see-other-uri>` (RFC 7395 §3.6.1; xmpp.js does not follow it, so by
   * hand here): a new connection to `uri`, a rejoin of `room` with `<history since>` its last live message;
   * then, once bob is done posting, every message across both connections (expectNoLoss).
   */
  async function followUri(browser: TestClient, uri: string, room: string, p: { posted: string[]; done: Promise<void> }): Promise<void> {
    const since = sinceFor(browser);
    const again = await alice({ url: uri }, "browser");
    await again.send(xml("presence", { to: `${room}/alice-browser` }, xml("x", { xmlns: NS_MUC }, xml("history", { since }))));
    await p.done;
    const all = (): Element[] => [...bodies(browser.received, room), ...bodies(again.received, room)];
    await until("every message", () => p.posted.every((b) => all().some((el) => el.getChildText("body") === b)), 30_000);
    await sleep(1000);
    expectNoLoss(again.jid, bodies(browser.received, room), bodies(again.received, room), since, p.posted);
  }

  beforeEach(async () => {
    await admin.flushall();
    bob = await connectClient({ port: up.port, username: "bob", password: "bobpass", resource: `redirect-${Date.now()}` });
    clients.push(bob);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(procs.splice(0).map((p) => p.stop()));
  });

  it("SIGTERM on a node that only forwards a session: <see-other-host> naming the owner (direct-TLS port), the client goes there and misses nothing", async () => {
    const ids = ["p1", "p2", "p3"].map((n) => `${up.kind}-${n}`);
    const [n1, n2] = [await node(ids[0]!), await node(ids[1]!), await node(ids[2]!)] as [ProxyProcess, ProxyProcess, ProxyProcess];
    const room = uniqueRoom(up.muc, "fwdstop");
    await createRoom(bob, room, "bob");
    const phone = await alice({ port: n1.port, transport: "starttls" }, "phone"); // n1 owns alice
    expect(isSelfPresence(await join(phone, room, "alice-phone", { history: { maxstanzas: "0" } }), room)).toBe(true);
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    await n1.waitForLog((l) => l.msg === "cluster: client address published");
    const laptop = await alice({ port: n2.tlsPort, transport: "direct" }, "laptop"); // forwarded by n2 to n1
    await n2.waitForLog((l) => l.code === "FORWARDED");
    const errors: string[] = [];
    laptop.xmpp.prependListener("element", (el: Element) => {
      if (el.is("error", NS_STREAMS)) errors.push(el.getChild("see-other-host") ? `see-other-host ${el.getChildText("see-other-host")}` : "other");
    });
    const rejoins: { at: number; since: string }[] = [];
    laptop.xmpp.on("online", () => {
      const since = sinceFor(laptop);
      rejoins.push({ at: laptop.received.length, since });
      void laptop.send(xml("presence", { to: `${room}/alice-laptop` }, xml("x", { xmlns: NS_MUC }, xml("history", { since })))).catch(() => undefined);
    });
    expect(isSelfPresence(await join(laptop, room, "alice-laptop", { history: { maxstanzas: "0" } }), room)).toBe(true);

    const p = posting(room);
    await until("the sixth message was posted", p.sixth, 20_000);
    const stopped = n2.stop("SIGTERM");
    await until("the laptop was redirected", () => errors.length > 0, 10_000);
    await stopped;
    expect(errors).toEqual([`see-other-host 127.0.0.1:${n1.tlsPort}`]);
    await p.done;
    await until("the laptop has every message", () => p.posted.every((b) => bodies(laptop.received, room).some((el) => el.getChildText("body") === b)), 30_000);
    await until("the phone has every message", () => p.posted.every((b) => bodies(phone.received, room).some((el) => el.getChildText("body") === b)), 30_000);
    await sleep(1000); // anything repeated late would show now
    expect(rejoins).toHaveLength(1);
    const { at, since } = rejoins[0]!;
    expectNoLoss(laptop.jid, bodies(laptop.received.slice(0, at), room), bodies(laptop.received.slice(at), room), since, p.posted);
    // the phone, on the owner, saw nothing of it: each message once
    const phoneBodies = bodies(phone.received, room).map((el) => el.getChildText("body"));
    expect(phoneBodies.sort()).toEqual([...p.posted].sort());
    // the laptop logged in on the owner itself: no forwarding, the owner still holds the lease
    expect(n1.logs().filter((l) => l.msg === "authenticated").length).toBe(3); // phone, laptop forwarded, laptop direct
    expect(n1.logs().filter((l) => l.msg === "cluster: forwarded session accepted")).toHaveLength(1);
    expect(await admin.get(`minimix:lease:alice@${up.domain}`)).toMatch(new RegExp(`^${ids[0]}:`));
    expect(n2.logs().find((l) => l.msg === "stopped")).toMatchObject({ redirected: 1, forwarding: 1 });
  });

  it("SIGTERM on a forwarding node whose owner published no client address: <system-shutdown/>", async () => {
    const n1 = await node(`${up.kind}-q1`, { clientAddress: false });
    const n2 = await node(`${up.kind}-q2`);
    const phone = await alice({ port: n1.port, transport: "starttls" }, "phone");
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    const laptop = await alice({ port: n2.port, transport: "starttls" }, "laptop");
    await n2.waitForLog((l) => l.code === "FORWARDED");
    const errors: string[] = [];
    laptop.xmpp.prependListener("element", (el: Element) => {
      if (el.is("error", NS_STREAMS)) errors.push((el.children.find((x) => typeof x !== "string") as Element | undefined)?.name ?? "?");
    });
    await n2.stop("SIGTERM");
    await until("told", () => errors.length > 0);
    expect(errors).toEqual(["system-shutdown"]);
    expect(n2.logs().find((l) => l.msg === "stopped")).toMatchObject({ redirected: 0, forwarding: 1 });
    // the owner's stream with the phone carries on
    await bob.send(xml("message", { to: phone.jid, type: "chat", id: "q1" }, xml("body", {}, "still here")));
    await phone.waitFor((el) => el.getChildText("body") === "still here");
  });

  it("SIGTERM, WebSocket owned here: <close see-other-uri> naming the wss endpoint of the peer the account hashes to; followed by hand, nothing missed", async () => {
    const ids = ["w1", "w2", "w3"].map((n) => `${up.kind}-${n}`);
    const [n1, n2, n3] = [await node(ids[0]!, { clientAddress: "localhost" }), await node(ids[1]!, { clientAddress: "localhost" }), await node(ids[2]!, { clientAddress: "localhost" })];
    const room = uniqueRoom(up.muc, "wsstop");
    await createRoom(bob, room, "bob");
    const browser = await alice({ url: wssUrl(n1) }, "browser");
    const redirectedTo = seeOtherUri(browser);
    expect(isSelfPresence(await join(browser, room, "alice-browser", { history: { maxstanzas: "0" } }), room)).toBe(true);
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    for (const n of [n2, n3]) await n.waitForLog((l) => l.msg === "cluster: client address published" && typeof l.ws === "string");
    const target = choosePeer(`alice@${up.domain}`, [{ id: ids[1]!, client: { host: "x", ports: {} } }, { id: ids[2]!, client: { host: "x", ports: {} } }])!.id;
    const to = target === ids[1] ? n2 : n3;

    const p = posting(room);
    await until("the sixth message was posted", p.sixth, 20_000);
    await n1.stop("SIGTERM");
    await until("redirected", () => redirectedTo() !== undefined, 10_000);
    expect(redirectedTo()).toBe(wssUrl(to));
    // the client follows §3.6.1 itself (xmpp.js does not): a new connection to the URI, a rejoin with <history since>
    await followUri(browser, redirectedTo()!, room, p);
    expect(to.logs().some((l) => l.code === "FORWARDED")).toBe(false);
    expect(n1.logs().find((l) => l.msg === "stopped")?.redirected).toBe(1);
  });

  it("SIGTERM on a node that only forwards a WebSocket session: <close see-other-uri> naming the owner's wss endpoint; followed by hand, nothing missed", async () => {
    const ids = ["x1", "x2"].map((n) => `${up.kind}-${n}`);
    const [n1, n2] = [await node(ids[0]!, { clientAddress: "localhost" }), await node(ids[1]!, { clientAddress: "localhost" })];
    const room = uniqueRoom(up.muc, "wsfwdstop");
    await createRoom(bob, room, "bob");
    const phone = await alice({ port: n1.port, transport: "starttls" }, "phone"); // n1 owns alice
    expect(isSelfPresence(await join(phone, room, "alice-phone", { history: { maxstanzas: "0" } }), room)).toBe(true);
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    await n1.waitForLog((l) => l.msg === "cluster: client address published" && typeof l.ws === "string");
    const browser = await alice({ url: wssUrl(n2) }, "browser"); // forwarded by n2 to n1
    await n2.waitForLog((l) => l.code === "FORWARDED");
    const redirectedTo = seeOtherUri(browser);
    expect(isSelfPresence(await join(browser, room, "alice-browser", { history: { maxstanzas: "0" } }), room)).toBe(true);

    const p = posting(room);
    await until("the sixth message was posted", p.sixth, 20_000);
    await n2.stop("SIGTERM");
    await until("redirected", () => redirectedTo() !== undefined, 10_000);
    expect(redirectedTo()).toBe(wssUrl(n1));
    await followUri(browser, redirectedTo()!, room, p);
    expect(bodies(phone.received, room).map((el) => el.getChildText("body")).sort()).toEqual([...p.posted].sort());
    expect(n2.logs().find((l) => l.msg === "stopped")).toMatchObject({ redirected: 1, forwarding: 1 });
    expect(n1.logs().filter((l) => l.msg === "cluster: forwarded session accepted")).toHaveLength(1);
  });

  it("SIGTERM, WebSocket forwarded: by the stopping node, to the owner's wss endpoint; to the stopping owner, to the peer its account hashes to", async () => {
    const ids = ["v1", "v2", "v3"].map((n) => `${up.kind}-${n}`);
    const [n1, n2, n3] = [await node(ids[0]!, { clientAddress: "localhost" }), await node(ids[1]!, { clientAddress: "localhost" }), await node(ids[2]!, { clientAddress: "localhost" })];
    const room = uniqueRoom(up.muc, "wsfwd");
    await createRoom(bob, room, "bob");
    const phone = await alice({ port: n1.port, transport: "starttls" }, "phone"); // n1 owns alice
    await n1.waitForLog((l) => l.code === "LEASE_ACQUIRED");
    for (const n of [n1, n2, n3]) await n.waitForLog((l) => l.msg === "cluster: client address published" && typeof l.ws === "string");
    // forwarded by n3 to n1; n3 stops: sent to the owner
    const kiosk = await alice({ url: wssUrl(n3) }, "kiosk");
    const kioskTo = seeOtherUri(kiosk);
    await n3.waitForLog((l) => l.code === "FORWARDED");
    await n3.stop("SIGTERM");
    await until("the kiosk was redirected", () => kioskTo() !== undefined, 10_000);
    expect(kioskTo()).toBe(wssUrl(n1));
    expect(n3.logs().find((l) => l.msg === "stopped")).toMatchObject({ redirected: 1, forwarding: 1 });
    const kiosk2 = await alice({ url: kioskTo()! }, "kiosk");
    expect(isSelfPresence(await join(kiosk2, room, "alice-kiosk"), room)).toBe(true);

    // forwarded by n2 to n1; n1 stops: its <close see-other-uri/> goes through n2 to the client. The only
    // live peer left is n2 itself, so the account hashes there (the client then needs no forwarding)
    const browser = await alice({ url: wssUrl(n2) }, "browser");
    const browserTo = seeOtherUri(browser);
    await until("n2 forwarded the browser", () => n2.logs().filter((l) => l.code === "FORWARDED").length === 1);
    expect(choosePeer(`alice@${up.domain}`, [{ id: ids[1]!, client: { host: "x", ports: {} } }])!.id).toBe(ids[1]);
    await n1.stop("SIGTERM");
    await until("the browser was redirected", () => browserTo() !== undefined, 10_000);
    expect(browserTo()).toBe(wssUrl(n2));
    expect(n1.logs().find((l) => l.msg === "stopped")?.redirected).toBe(3); // the phone, the kiosk (now on n1), the browser
    const browser2 = await alice({ url: browserTo()! }, "browser");
    expect(isSelfPresence(await join(browser2, room, "alice-browser"), room)).toBe(true);
    await groupchat(bob, room, "after both restarts");
    await browser2.waitFor((el) => el.getChildText("body") === "after both restarts", 20_000);
  });
});
