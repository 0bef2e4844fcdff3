/**
 * XEP-0198 stream management on the client leg, terminated by the proxy (docs/architecture.md §8.4):
 * enable, acks both ways, hibernation when a connection drops, resumption on a new connection with
 * everything missed delivered once and no rejoin, expiry (bounces, room history, MAM), and the
 * protocol errors. A real client library that speaks SM (@xmpp/client with @xmpp/stream-management)
 * where the flow matters, and a byte-level client where the exact elements matter.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { serverAgnosticBlocks, upstreamServers } from "../support/servers.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { RawWs } from "../support/ws-client.js";
import * as http from "node:http";
import { codes, createRoom, groupchat, join, sleep, uniqueRoom } from "../support/muc.js";
import { until } from "../support/poll.js";

const cert = inject("proxyCert");
const SM = "urn:xmpp:sm:3";

/** TLS, SASL PLAIN (the test user's password) and the stream restart; resolves with the post-auth features. */
const authenticate = (raw: RawClient, user: string): Promise<string> => raw.authenticate(user, `${user}pass`);
const bind = (raw: RawClient, resource: string): Promise<string> => raw.bind(resource);

/** Sends <enable/> and resolves with the <enabled/> element's attributes. */
async function enable(raw: RawClient, attrs = "resume='true'"): Promise<{ id?: string; resume?: string; max?: string; raw: string }> {
  raw.send(`<enable xmlns='${SM}' ${attrs}/>`);
  const m = await raw.waitFor(/<enabled [^>]*\/>/);
  raw.clear();
  const attr = (n: string): string | undefined => new RegExp(`\\b${n}=['"]([^'"]*)['"]`).exec(m[0])?.[1];
  const out: { id?: string; resume?: string; max?: string; raw: string } = { raw: m[0] };
  for (const k of ["id", "resume", "max"] as const) {
    const v = attr(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Waits for the `n`-th match of `re` in everything `raw` received so far. */
async function nth(raw: RawClient, re: RegExp, n: number): Promise<RegExpMatchArray[]> {
  const g = new RegExp(re.source, `${re.flags.replace("g", "")}g`);
  await until(`${n} × ${re}`, () => [...raw.text.matchAll(g)].length >= n);
  return [...raw.text.matchAll(g)];
}

describe.each(upstreamServers())("XEP-0198 against a real $kind", (server) => {
  let proxy: ProxyProcess;
  /** Between clients and the proxy: lets a test drop a client's connection the way a network does. */
  let relay: TcpRelay;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
    relay = await TcpRelay.start(proxy.port);
  });
  afterAll(async () => {
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await relay?.close();
    await proxy?.stop();
  });

  async function direct(user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(c);
    return c;
  }

  async function rawClient(port = proxy.port): Promise<RawClient> {
    const r = await RawClient.connect(port);
    raws.push(r);
    return r;
  }

  async function rawSession(user: string, resource: string, port = proxy.port): Promise<{ raw: RawClient; jid: string }> {
    const raw = await rawClient(port);
    await authenticate(raw, user);
    const jid = await bind(raw, `${resource}-${randomUUID().slice(0, 4)}`);
    return { raw, jid };
  }

  it("offers its own <sm/>; <enable resume='true'/> after bind is answered with an id, resume='true' and max; without resume, no id", async () => {
    const raw = await rawClient();
    const features = await authenticate(raw, "alice");
    expect(features).toContain(`<sm xmlns='${SM}'/>`);
    expect(features).not.toContain("urn:xmpp:sm:2");
    // before bind: refused, and the stream goes on (XEP-0198 §3)
    raw.send(`<enable xmlns='${SM}' resume='true'/>`);
    await raw.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/failed>/);
    raw.clear();
    await bind(raw, `enable-${randomUUID().slice(0, 4)}`);
    const on = await enable(raw);
    expect(on.id).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(on.resume).toBe("true"); // not '1': Conversations needs "true"
    expect(on.max).toBe("300");
    // a second <enable/> is refused
    raw.send(`<enable xmlns='${SM}' resume='true'/>`);
    await raw.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);

    const plain = await rawSession("alice", "noresume");
    const off = await enable(plain.raw, "");
    expect(off.id).toBeUndefined();
    expect(off.resume).toBeUndefined();
    // the client's max is honoured below ours
    const short = await rawSession("alice", "max");
    expect((await enable(short.raw, "resume='true' max='7'")).max).toBe("7");
    expect(proxy.logs().some((l) => l.msg === "stream management enabled" && l.resume === true)).toBe(true);
  });

  it("answers <r/> after every stanza at once, as Dino asks, counting only stanzas; SM elements never reach the server", async () => {
    const { raw, jid } = await rawSession("alice", "dino");
    await enable(raw);
    for (let i = 1; i <= 10; i++) {
      raw.send(`<iq type='get' id='p${i}' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='${SM}'/>`);
      await raw.waitFor(new RegExp(`<a xmlns='urn:xmpp:sm:3' h='${i}'/>`));
    }
    // ten pings answered by the server: nothing of SM reached it (it would answer with an error)
    const pongs = await nth(raw, /<iq [^>]*type=['"]result['"]/, 10);
    expect(pongs).toHaveLength(10);
    expect(raw.text).not.toMatch(/type=['"]error['"]/);
    // the proxy asks for acks itself (--sm-ack-every 5): ten results out, an <r/> came
    await raw.waitFor(/<r xmlns='urn:xmpp:sm:3'\/>/);
    raw.send(`<a xmlns='${SM}' h='10'/>`);
    raw.send(`<iq type='get' id='last' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await raw.waitFor(/id=['"]last['"]/);
    expect(raw.closed).toBe(false);
    expect(jid).toContain("alice@");
  });

  it("an <a/> acknowledging more than was sent ends the stream with <undefined-condition/> and <handled-count-too-high/>", async () => {
    const { raw } = await rawSession("alice", "toohigh");
    await enable(raw);
    raw.send(`<a xmlns='${SM}' h='5'/>`);
    await raw.waitFor(/<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>.*<handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='0'\/><\/stream:error>/s);
    await raw.waitClosed();
  });

  it("resumes after an abrupt drop: 1:1 and room messages sent meanwhile arrive once, in order, and the room sees no rejoin", async () => {
    const room = uniqueRoom(server.muc, "smresume");
    const bob = await direct("bob", "owner");
    await createRoom(bob, room, "bob");
    const n = relay.all.length;
    const alice = await connectClient({ port: relay.port, username: "alice", password: "alicepass", resource: `phone-${randomUUID().slice(0, 4)}` });
    clients.push(alice);
    const sm = alice.xmpp.streamManagement;
    await until("SM enabled on alice's stream", () => sm.enabled && sm.id !== "");
    const leg = relay.all[n]!;
    expect(codes(await join(alice, room, "alice", { history: { maxstanzas: "0" } }))).toContain("110");
    const before = await groupchat(bob, room, "before the drop");
    await alice.waitFor((el) => el.is("message") && el.attrs.id === before);
    const presencesBefore = bob.received.filter((el) => el.is("presence") && el.attrs.from === `${room}/alice`).length;
    /** Messages the proxy took in for its clients (own legs and fan-out), from /metrics. */
    const outMessages = async (): Promise<number> =>
      Number(/^minimix_stanzas_total\{direction="out",kind="message"\} (\d+)/m.exec(await get(proxy.metricsPort!, "/metrics"))?.[1] ?? 0);
    const taken = await outMessages();

    relay.cut(leg); // the phone's network is gone: no </stream:stream>, no FIN of the stream
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === alice.jid);
    const chats: string[] = [];
    const rooms: string[] = [];
    for (let i = 0; i < 5; i++) {
      chats.push(`chat ${i} ${randomUUID().slice(0, 6)}`);
      rooms.push(`room ${i} ${randomUUID().slice(0, 6)}`);
      await bob.send(xml("message", { to: alice.jid, type: "chat", id: `c${i}` }, xml("body", {}, chats[i]!)));
      await groupchat(bob, room, rooms[i]!);
    }
    // all ten reached the proxy while alice's session hibernated (queued, not written)
    for (let n = await outMessages(); n < taken + 10; n = await outMessages()) await sleep(50);

    const resumed = new Promise<void>((resolve) => sm.once("resumed", () => resolve()));
    await alice.xmpp.reconnect.reconnect();
    await resumed;
    const bodies = (): string[] => alice.received.filter((el) => el.is("message")).map((el) => el.getChildText("body") ?? "");
    await until("everything sent during the drop delivered", () => [...chats, ...rooms].every((b) => bodies().includes(b)));
    await sleep(300); // anything delivered twice would come now
    const got = bodies();
    for (const b of [...chats, ...rooms]) expect(got.filter((x) => x === b), b).toHaveLength(1);
    expect(got.filter((b) => chats.includes(b))).toEqual(chats);
    expect(got.filter((b) => rooms.includes(b))).toEqual(rooms);
    // each re-sent one carries when it was queued (XEP-0203, from the server), as Prosody's mod_smacks does
    for (const el of alice.received.filter((e) => e.is("message") && chats.includes(e.getChildText("body") ?? ""))) {
      const delay = el.getChild("delay", "urn:xmpp:delay");
      expect(delay?.attrs.from, el.toString()).toBe("localhost");
      expect(Date.parse(String(delay?.attrs.stamp))).toBeLessThanOrEqual(Date.now());
    }
    // still in the room without a join: live traffic flows both ways, and the room saw no leave or join
    const after = await groupchat(bob, room, "after the resume");
    await alice.waitFor((el) => el.is("message") && el.attrs.id === after);
    const mine = await groupchat(alice, room, "alice is back");
    await bob.waitFor((el) => el.is("message") && el.attrs.id === mine);
    expect(bob.received.filter((el) => el.is("presence") && el.attrs.from === `${room}/alice`)).toHaveLength(presencesBefore);
    // they came from the session's queue, re-sent after <resumed/> (nothing was written while it hibernated)
    const r = proxy.logs().find((l) => l.msg === "session resumed" && l.jid === alice.jid);
    expect(r?.resent).toBeGreaterThanOrEqual(10);
  });

  it("a resume while the old connection still looks alive takes the session over; the old stream gets <conflict/> and touches nothing", async () => {
    const room = uniqueRoom(server.muc, "smtakeover");
    const bob = await direct("bob", "owner");
    await createRoom(bob, room, "bob");
    const old = await rawSession("alice", "takeover");
    const { id } = await enable(old.raw);
    old.raw.send(`<presence to='${room}/alice' id='j1'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await old.raw.waitFor(/status code=["']110["']/);
    // another stanza, then a resume claiming nothing handled: whatever the old connection did not ack is re-sent
    const fresh = await rawClient();
    await authenticate(fresh, "alice");
    fresh.send(`<resume xmlns='${SM}' previd='${id!}' h='0'/>`);
    await fresh.waitFor(new RegExp(`<resumed xmlns='urn:xmpp:sm:3' previd='${id!}' h='\\d+'/>`));
    await old.raw.waitFor(/<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await old.raw.waitClosed();
    // the self-presence the old connection never acked comes again, once, after <resumed/>
    expect([...fresh.text.matchAll(/status code=["']110["']/g)]).toHaveLength(1);
    const live = await groupchat(bob, room, "to the new connection");
    await fresh.waitFor(new RegExp(`id=["']${live}["']`));
    await sleep(300);
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
    fresh.send(`<iq type='get' id='alive' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await fresh.waitFor(/id=['"]alive['"][^>]*type=['"]result['"]|type=['"]result['"][^>]*id=['"]alive['"]/);
  });

  it("a wrong id and another account's id get the same <failed><item-not-found/></failed>; the client then binds on that stream", async () => {
    const carol = await rawSession("carol", "victim");
    const { id: carolId } = await enable(carol.raw);
    const raw = await rawClient();
    await authenticate(raw, "alice");
    raw.send(`<resume xmlns='${SM}' previd='${carolId!}' h='0'/>`);
    const other = (await raw.waitFor(/<failed [^>]*>.*?<\/failed>/))[0];
    raw.clear();
    raw.send(`<resume xmlns='${SM}' previd='no-such-id' h='0'/>`);
    const unknown = (await raw.waitFor(/<failed [^>]*>.*?<\/failed>/))[0];
    raw.clear();
    expect(other).toBe(`<failed xmlns='${SM}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
    expect(unknown).toBe(other); // no oracle for another account's sessions
    const jid = await bind(raw, `afterfail-${randomUUID().slice(0, 4)}`);
    expect(jid).toMatch(/^alice@/);
    raw.send(`<iq type='get' id='after' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await raw.waitFor(/id=['"]after['"]/);
    // carol's session is untouched
    carol.raw.send(`<iq type='get' id='carol-ok' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await carol.raw.waitFor(/id=['"]carol-ok['"]/);
    expect(carol.raw.closed).toBe(false);
  });

  it("a clean </stream:stream> ends the session: no hibernation, and its id is forgotten", async () => {
    const { raw, jid } = await rawSession("alice", "clean");
    const { id } = await enable(raw);
    raw.send("</stream:stream>");
    await raw.waitClosed();
    await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === jid);
    expect(proxy.logs().some((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid)).toBe(false);
    const again = await rawClient();
    await authenticate(again, "alice");
    again.send(`<resume xmlns='${SM}' previd='${id!}' h='0'/>`);
    await again.waitFor(/<failed xmlns='urn:xmpp:sm:3'><item-not-found/);
  });

  it("a client that binds its resource again instead of resuming ends its hibernating session (the server's <conflict/> on the old leg)", async () => {
    const resource = `rebind-${randomUUID().slice(0, 4)}`;
    const old = await rawClient();
    await authenticate(old, "alice");
    const jid = await bind(old, resource);
    const { id } = await enable(old);
    old.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    const again = await rawClient();
    await authenticate(again, "alice");
    expect(await bind(again, resource)).toBe(jid);
    await proxy.waitForLog((l) => l.msg === "hibernating session ended: its upstream leg is gone" && l.jid === jid);
    again.send(`<iq type='get' id='rebound' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await again.waitFor(/id=['"]rebound['"]/);
    const late = await rawClient();
    await authenticate(late, "alice");
    late.send(`<resume xmlns='${SM}' previd='${id!}' h='0'/>`);
    await late.waitFor(/<failed xmlns='urn:xmpp:sm:3' h='0'><item-not-found/);
  });

  it("expiry: an unacknowledged 1:1 message and IQ are bounced with recipient-unavailable, an archived message is left to MAM, room messages to the room history, a room PM is held for the next session", async () => {
    const room = uniqueRoom(server.muc, "smexpiry");
    const bob = await direct("bob", "sender");
    await createRoom(bob, room, "bob");
    const { raw, jid } = await rawSession("alice", "expiring");
    await enable(raw, "resume='true' max='2'"); // the client's max: a 2 s hibernation
    raw.send(`<presence to='${room}/alice' id='j1'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await raw.waitFor(/status code=["']110["']/);
    const since = new Date(Date.now() - 1000).toISOString();
    raw.close(); // dropped, never acked anything
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);

    const roomMsg = `kept in the room ${randomUUID().slice(0, 6)}`;
    await groupchat(bob, room, roomMsg);
    await bob.waitFor((el) => el.is("message") && el.getChildText("body") === roomMsg);
    // not archived (XEP-0334 no-store): bounced
    await bob.send(xml("message", { to: jid, type: "chat", id: "unstored" }, xml("body", {}, "not archived"), xml("no-store", { xmlns: "urn:xmpp:hints" })));
    // archived by the server (it carries <stanza-id by=alice/>): left to MAM, no bounce
    await bob.send(xml("message", { to: jid, type: "chat", id: "stored" }, xml("body", {}, "archived")));
    // an IQ request: its sender waits for an answer, so it is bounced
    await bob.send(xml("iq", { to: jid, type: "get", id: "version-q" }, xml("query", { xmlns: "jabber:iq:version" })));
    // a PM to alice's occupant, not archived (XEP-0334 no-store; an archived one carries the server's
    // <stanza-id by=alice/> and is left to MAM like any 1:1 message): fanned out to the hibernating
    // session; at expiry it goes back to the account (no other session of alice is in the room) and is
    // held for the next one (issue 10 §4)
    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id: "room-pm" }, xml("body", {}, "pm while asleep"),
      xml("x", { xmlns: "http://jabber.org/protocol/muc#user" }), xml("no-store", { xmlns: "urn:xmpp:hints" })));

    const ended = await proxy.waitForLog((l) => l.msg === "session ended with unacknowledged stanzas" && l.jid === jid, 15_000);
    expect(ended.bounced).toBe(2);
    const iqErr = await bob.waitFor((el) => el.is("iq") && el.attrs.id === "version-q");
    expect(iqErr.attrs.type).toBe("error");
    expect(iqErr.getChild("error")?.getChild("recipient-unavailable")).toBeDefined();
    const msgErr = await bob.waitFor((el) => el.is("message") && el.attrs.id === "unstored" && el.attrs.type === "error");
    expect(msgErr.getChild("error")?.getChild("recipient-unavailable")).toBeDefined();
    await sleep(300);
    expect(bob.received.some((el) => el.is("message") && el.attrs.id === "stored" && el.attrs.type === "error")).toBe(false);
    expect(proxy.logs().some((l) => l.msg === "session expired" && l.jid === jid)).toBe(true);

    // the room message is in the account's room history: a later join with <history since> gets it
    const back = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: `back-${randomUUID().slice(0, 4)}` });
    clients.push(back);
    expect(codes(await join(back, room, "alice", { history: { since } }))).toContain("110");
    await back.waitFor((el) => el.is("message") && el.getChildText("body") === roomMsg);
    const pm = await back.waitFor((el) => el.is("message") && el.attrs.id === "room-pm");
    expect(pm.attrs.type).toBe("chat");
    expect(pm.getChild("delay", "urn:xmpp:delay")).toBeDefined();
    expect(ended.pms).toBe(1);
    expect(bob.received.some((el) => el.attrs.id === "room-pm" && el.attrs.type === "error")).toBe(false);
  });
});

describe.each(upstreamServers())("XEP-0198 queue bound (--sm-max-queue 3) against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--sm-max-queue", "3", "--sm-ack-every", "100"] });
  });
  afterAll(async () => {
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  async function session(resource: string): Promise<{ raw: RawClient; jid: string }> {
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    await authenticate(raw, "alice");
    const jid = await bind(raw, `${resource}-${randomUUID().slice(0, 4)}`);
    raw.send(`<enable xmlns='${SM}' resume='true'/>`);
    await raw.waitFor(/<enabled /);
    return { raw, jid };
  }

  it("a connected client that acknowledges nothing beyond the bound is cut with resource-constraint", async () => {
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `q-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(bob);
    const { raw, jid } = await session("full");
    for (let i = 0; i < 4; i++) await bob.send(xml("message", { to: jid, type: "chat", id: `q${i}` }, xml("body", {}, `n ${i}`)));
    await raw.waitFor(/<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await raw.waitClosed();
    await proxy.waitForLog((l) => l.code === "SM_QUEUE_FULL" && l.jid === jid);
  });

  it("a hibernating session over the bound expires at once", async () => {
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `q-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(bob);
    const { raw, jid } = await session("sleeping");
    raw.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    for (let i = 0; i < 4; i++) await bob.send(xml("message", { to: jid, type: "chat", id: `h${i}` }, xml("body", {}, `n ${i}`)));
    const gone = await proxy.waitForLog((l) => l.msg === "session expired" && l.jid === jid);
    expect(gone.reason).toBe("unacknowledged queue full while hibernating");
  });
});

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

describe.runIf(serverAgnosticBlocks())("XEP-0198: WebSocket, status, metrics and shutdown (the proxy alone: first server only)", () => {
  const server = upstreamServers()[0]!;
  const OPEN = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
  let proxy: ProxyProcess;
  /** Between the proxy and the server: lets a test cut a session's own leg. */
  let upRelay: TcpRelay;
  let wsUrl: string;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    upRelay = await TcpRelay.start(server.port);
    proxy = await startProxy({ upstreamPort: upRelay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--listen-ws-plain", "127.0.0.1:0"] });
    const port = proxy.logs().find((x) => x.msg === "listening" && x.transport === "websocket")!.port as number;
    wsUrl = `ws://127.0.0.1:${port}/xmpp-websocket`;
  });
  afterAll(async () => {
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await upRelay?.close();
  });

  async function raw(): Promise<RawClient> {
    const r = await RawClient.connect(proxy.port);
    raws.push(r);
    return r;
  }

  const ping = (r: RawClient, id: string): Promise<RegExpMatchArray> => {
    r.send(`<iq type='get' id='${id}' to='${server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    return r.waitFor(new RegExp(`id=['"]${id}['"]`));
  };

  it("protocol errors: <r/>/<a/> before <enable/>, <resume/> after bind or without h, an <a/> without h, an sm:2 element", async () => {
    const a = await raw();
    await authenticate(a, "alice");
    a.send(`<r xmlns='${SM}'/>`);
    await a.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);
    a.clear();
    a.send(`<a xmlns='${SM}' h='0'/>`);
    await a.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);
    a.clear();
    a.send(`<resume xmlns='${SM}' previd='x'/>`);
    await a.waitFor(/<failed xmlns='urn:xmpp:sm:3'><bad-request/);
    a.clear();
    await bind(a, `errors-${randomUUID().slice(0, 4)}`);
    a.send(`<resume xmlns='${SM}' previd='x' h='0'/>`);
    await a.waitFor(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request/);
    a.clear();
    await enable(a);
    await ping(a, "still-open");
    a.send(`<a xmlns='${SM}' h='-1'/>`);
    await a.waitFor(/<stream:error><invalid-xml /);
    await a.waitClosed();

    const b = await raw();
    await authenticate(b, "alice");
    await bind(b, `sm2-${randomUUID().slice(0, 4)}`);
    b.send("<enable xmlns='urn:xmpp:sm:2' resume='true'/>");
    await b.waitFor(/<stream:error><unsupported-stanza-type /);
    await b.waitClosed();
  });

  it("a <resume/> with an h above what was sent ends that stream; the hibernating session is untouched and resumes afterwards", async () => {
    const old = await raw();
    await authenticate(old, "alice");
    const jid = await bind(old, `high-${randomUUID().slice(0, 4)}`);
    const { id } = await enable(old);
    await ping(old, "one"); // one stanza each way
    old.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    const bad = await raw();
    await authenticate(bad, "alice");
    bad.send(`<resume xmlns='${SM}' previd='${id!}' h='5'/>`);
    await bad.waitFor(/<undefined-condition .*<handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='1'\/>/s);
    await bad.waitClosed();
    const good = await raw();
    await authenticate(good, "alice");
    good.send(`<resume xmlns='${SM}' previd='${id!}' h='1'/>`);
    await good.waitFor(new RegExp(`<resumed xmlns='urn:xmpp:sm:3' previd='${id!}' h='1'/>`));
    await ping(good, "after");
  });

  it("a hibernating session whose own leg is lost ends; a later <resume/> gets <failed h/>", async () => {
    const n = upRelay.all.length;
    const old = await raw();
    await authenticate(old, "alice");
    const jid = await bind(old, `leg-${randomUUID().slice(0, 4)}`);
    const leg = upRelay.all[n]!; // opened by its SASL
    const { id } = await enable(old);
    await ping(old, "p1");
    await ping(old, "p2");
    old.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    upRelay.cut(leg);
    await proxy.waitForLog((l) => l.msg === "hibernating session ended: its upstream leg is gone" && l.jid === jid);
    const late = await raw();
    await authenticate(late, "alice");
    late.send(`<resume xmlns='${SM}' previd='${id!}' h='2'/>`);
    await late.waitFor(/<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found/);
  });

  it("the CSI state is not restored on a resumed stream (XEP-0352 §5.2): what CSI held comes after the re-sent queue", async () => {
    const room = uniqueRoom(server.muc, "smcsi");
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `csi-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(bob);
    await createRoom(bob, room, "bob");
    const old = await raw();
    await authenticate(old, "alice");
    const jid = await bind(old, `csi-${randomUUID().slice(0, 4)}`);
    const { id } = await enable(old);
    old.send(`<presence to='${room}/alice' id='j1'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await old.waitFor(/status code=["']110["']/);
    old.send("<inactive xmlns='urn:xmpp:csi:0'/>");
    old.send(`<r xmlns='${SM}'/>`); // answered once everything before it was handled: <inactive/> is in effect
    await old.waitFor(/<a xmlns='urn:xmpp:sm:3' h='\d+'\/>/);
    await bob.send(xml("presence", { to: `${room}/bob` }, xml("show", {}, "away"), xml("status", {}, "held while inactive")));
    await bob.waitFor((el) => el.is("presence") && el.getChildText("status") === "held while inactive");
    await sleep(300);
    expect(old.text).not.toContain("held while inactive"); // held by CSI: not written, not counted
    old.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    const fresh = await raw();
    await authenticate(fresh, "alice");
    fresh.send(`<resume xmlns='${SM}' previd='${id!}' h='0'/>`);
    await fresh.waitFor(/held while inactive/);
    const t = fresh.text;
    expect(t.indexOf("<resumed ")).toBeLessThan(t.indexOf("held while inactive"));
    expect(t.lastIndexOf("status code=")).toBeLessThan(t.indexOf("held while inactive")); // after the re-sent join
    expect(t.match(/held while inactive/g)).toHaveLength(1);
    expect(t).toMatch(/<delay xmlns=["']urn:xmpp:delay["']/);
  });

  /** RFC 7395: open, SASL PLAIN, open again; one element per message. */
  async function wsAuth(user: string): Promise<RawWs> {
    const ws = await RawWs.connect(wsUrl);
    ws.send(OPEN);
    await ws.waitFor(/<mechanisms/);
    ws.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${user}pass`).toString("base64")}</auth>`);
    await ws.waitFor(/^<success/);
    ws.send(OPEN);
    await ws.waitFor(/urn:ietf:params:xml:ns:xmpp-bind/);
    return ws;
  }

  it("over WebSocket: every nonza is a message of its own; a dropped WebSocket is resumed on a new one with what it missed", async () => {
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `ws-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(bob);
    const a = await wsAuth("alice");
    a.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws-${randomUUID().slice(0, 4)}</resource></bind></iq>`);
    const jid = /<jid>([^<]+)<\/jid>/.exec(await a.waitFor(/<jid>/))![1]!;
    a.send(`<enable xmlns='${SM}' resume='true'/>`);
    const id = /id='([^']+)'/.exec(await a.waitFor(/^<enabled /))![1]!;
    for (const n of [1, 2]) await bob.send(xml("message", { to: jid, type: "chat", id: `w${n}` }, xml("body", {}, `before ${n}`)));
    await a.waitFor(/id=['"]w2['"]/);
    a.send(`<r xmlns='${SM}'/>`);
    expect(await a.waitFor(/^<a /)).toBe("<a xmlns='urn:xmpp:sm:3' h='0'/>"); // counting starts at <enable/>: the bind IQ is not in it
    a.ws.terminate(); // no <close/>
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    for (const n of [3, 4]) await bob.send(xml("message", { to: jid, type: "chat", id: `w${n}` }, xml("body", {}, `after ${n}`)));
    await sleep(300);

    const b = await wsAuth("alice");
    const mark = b.messages.length;
    b.send(`<resume xmlns='${SM}' previd='${id}' h='2'/>`); // it handled w1 and w2
    await b.waitFor(/id=['"]w4['"]/);
    const after = b.messages.slice(mark);
    expect(after[0]).toMatch(new RegExp(`^<resumed xmlns='urn:xmpp:sm:3' previd='${id}' h='0'/>$`));
    const resent = after.slice(1).filter((m) => m.startsWith("<message"));
    expect(resent.map((m) => /id=['"](w\d)['"]/.exec(m)?.[1])).toEqual(["w3", "w4"]);
  });

  it("status lists a hibernating session, /metrics counts SM, and SIGTERM ends hibernating sessions (exit 0)", async () => {
    const raw = await RawClient.connect(proxy.port);
    await authenticate(raw, "alice");
    const jid = await bind(raw, `status-${randomUUID().slice(0, 4)}`);
    await enable(raw);
    raw.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    const st = JSON.parse(await get(proxy.metricsPort!, "/status")) as { hibernating: number; accounts: { jid: string; sessions: { jid?: string; state: string; resumeWithinSeconds?: number }[] }[] };
    expect(st.hibernating).toBe(1);
    const entry = st.accounts.find((x) => x.jid === "alice@localhost")?.sessions.find((x) => x.jid === jid);
    expect(entry?.state).toBe("hibernating");
    expect(entry?.resumeWithinSeconds).toBeGreaterThan(0);
    const metrics = await get(proxy.metricsPort!, "/metrics");
    expect(metrics).toMatch(/^minimix_sm_hibernating_sessions 1$/m);
    expect(metrics).toMatch(/^minimix_sm_events_total\{event="enabled"\} [1-9]/m);
    expect(metrics).toMatch(/^minimix_sm_events_total\{event="resumed"\} [1-9]/m);
    expect(await proxy.stop("SIGTERM")).toBe(0);
    expect(proxy.logs().some((l) => l.msg === "session expired" && l.jid === jid && l.reason === "proxy shutdown")).toBe(true);
  });
});
