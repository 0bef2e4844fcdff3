/**
 * Issue 10, "what real phones do": a phone that changes network reconnects with the same resource
 * while its old connection still exists (RFC 6120 §7.7.2.2: the server gives the resource to the
 * new stream and ends the old one with <conflict/>). The proxy's upstream goes through a relay so a
 * test can make the old connection's end reach the proxy late, as a dead phone socket does.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { upstreamServers } from "../support/servers.js";
import { TcpRelay, type RelayConnection } from "../support/tcp-relay.js";
import { codes, createRoom, groupchat, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";
import { untilValue } from "../support/poll.js";

const cert = inject("proxyCert");

describe.each(upstreamServers())("against a real $kind", (server) => {
  let relay: TcpRelay;
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    relay = await TcpRelay.start(server.port);
    proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });
  afterAll(async () => {
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await relay?.close();
  });

  async function direct(user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }

  /** A room owned by bob (straight on the server) with a subject; bob watches it. */
  async function roomWithBob(prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await direct("bob", prefix);
    await createRoom(bob, room, "bob");
    await bob.send(xml("message", { to: room, type: "groupchat" }, xml("subject", {}, "phones")));
    await bob.waitFor((el) => el.is("message") && el.getChildText("subject") === "phones");
    return { room, bob };
  }

  /** The old phone connection: a raw client through the proxy, joined to `room`; and its leg to the server. */
  async function oldPhone(resource: string, room: string): Promise<{ raw: RawClient; jid: string; leg: RelayConnection }> {
    const n = relay.all.length;
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    const jid = await raw.login("alice", "alicepass", resource);
    const leg = relay.all[n]!; // opened during its login, before any join
    raw.send(`<presence to='${room}/alice' id='old-join'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await raw.waitFor(/status code=["']110["']/);
    return { raw, jid, leg };
  }

  async function newPhone(resource: string): Promise<TestClient> {
    const c = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource });
    clients.push(c);
    return c;
  }

  /** The new stream is a full occupant: traffic both ways and XEP-0410 self-ping. */
  async function worksInRoom(phone: TestClient, bob: TestClient, room: string, tag: string): Promise<void> {
    const fromBob = await groupchat(bob, room, `bob to phone ${tag}`);
    await phone.waitFor((el) => el.is("message") && el.attrs.id === fromBob);
    const fromPhone = await groupchat(phone, room, `phone to bob ${tag}`);
    await bob.waitFor((el) => el.is("message") && el.attrs.id === fromPhone);
    const pong = await phone.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${room}/alice` }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    expect(pong.attrs.type).toBe("result");
  }

  /** The join of the new stream, answered from state: occupants, its own self-presence (its id), subject. */
  async function joinsFromState(phone: TestClient, room: string): Promise<void> {
    const id = `new-join-${randomUUID().slice(0, 6)}`;
    const self = await join(phone, room, "alice", { id, history: { maxstanzas: "0" } });
    expect(self.attrs.type).toBeUndefined();
    expect(codes(self)).toContain("110");
    expect(self.attrs.id).toBe(id);
    expect(occupantsSeen(phone, room).has("bob")).toBe(true);
    await phone.waitFor((el: Element) => el.is("message") && String(el.attrs.from).startsWith(room) && el.getChildText("subject") === "phones");
  }

  const streamConflict = /<stream:error>\s*<conflict/;

  it("phone back on the same resource while the old connection is still open: joins, talks, is pinged; the old stream speaks for nobody", async () => {
    const { room, bob } = await roomWithBob("phone-open");
    const resource = `phone-${randomUUID().slice(0, 6)}`;
    const old = await oldPhone(resource, room);
    relay.hold(old.leg); // the server's <conflict/> for the old stream is on its way, not here yet
    const phone = await newPhone(resource);
    expect(phone.jid).toBe(old.jid);
    await joinsFromState(phone, room);
    await worksInRoom(phone, bob, room, "open");
    expect(old.raw.closed).toBe(false);
    // the replaced stream is still connected: what it sends to the room is not sent as the account
    old.raw.send(`<message to='${room}' type='groupchat' id='ghost'><body>ghost</body></message>`);
    const after = await groupchat(phone, room, "after the ghost");
    await bob.waitFor((el) => el.attrs.id === after);
    expect(bob.received.some((el) => el.getChildText("body") === "ghost")).toBe(false);
    // bob sees exactly one alice throughout
    expect(occupantsSeen(bob, room).has("alice")).toBe(true);
    relay.release(old.leg);
    await old.raw.waitClosed();
    expect(old.raw.text).toMatch(streamConflict);
  });

  it("old connection closed before the new stream joins: the join is answered and the room reaches it", async () => {
    const { room, bob } = await roomWithBob("phone-before");
    const resource = `phone-${randomUUID().slice(0, 6)}`;
    const old = await oldPhone(resource, room);
    const phone = await newPhone(resource);
    await old.raw.waitClosed(); // the server's <conflict/> ended it
    expect(old.raw.text).toMatch(streamConflict);
    await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === old.jid);
    await joinsFromState(phone, room);
    await worksInRoom(phone, bob, room, "before");
  });

  it("old connection's close reaching the proxy 3 s after the new join touches nothing of the new stream", async () => {
    const { room, bob } = await roomWithBob("phone-late");
    const resource = `phone-${randomUUID().slice(0, 6)}`;
    const old = await oldPhone(resource, room);
    relay.hold(old.leg);
    const phone = await newPhone(resource);
    await joinsFromState(phone, room);
    await sleep(3000);
    relay.release(old.leg);
    await old.raw.waitClosed();
    await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === old.jid);
    await worksInRoom(phone, bob, room, "late");
    // the account is still in the room as one occupant, with its presence unchanged (no away: the phone is back)
    await sleep(300);
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "xa")).toBe(false);
    expect(proxy.logs().some((l) => l.msg === "session replaced by a new stream with the same resource" && l.jid === old.jid)).toBe(true);
  });

  it("account session closed while still connecting: that connect is abandoned; a join in that window gets a fresh account session", async () => {
    // the window exists where the first join opens the account session (--account-session-start join,
    // docs/architecture.md §4.1); by default it is open from the login on and a leave does not close it
    const proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--account-session-start", "join"] });
    try {
    const accountSessionsOnline = (account: string): number =>
      proxy.logs().filter((l) => l.msg === "account session online" && l.account === account).length;
    const room = uniqueRoom(server.muc, "open-close");
    const bob = await direct("bob", "open-close");
    await createRoom(bob, room, "bob");
    // carol has no room through this proxy: her first join opens her account session
    const carol = await connectClient({ port: proxy.port, username: "carol", password: "carolpass", resource: `oc-${randomUUID().slice(0, 4)}` });
    clients.push(carol);
    const n = relay.all.length;
    const onlineBefore = accountSessionsOnline("carol@localhost");
    relay.holdNew = true; // the server is slow to answer the account session's connect
    await carol.send(xml("presence", { to: `${room}/carol`, id: "first" }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const leg = await untilValue(() => relay.all[n]);
    relay.holdNew = false;
    // the only session leaves before the account session is up: the account session is closed while connecting
    await carol.send(xml("presence", { to: `${room}/carol`, type: "unavailable", id: "bye" }));
    await carol.waitFor((el) => el.is("presence") && el.attrs.id === "bye" && el.attrs.type === "unavailable");
    // and joins again at once, the first connect still in flight: answered through a fresh account session
    const self = await join(carol, room, "carol", { history: { maxstanzas: "0" } });
    expect(codes(self)).toContain("110");
    expect(leg.closed).toBe(false); // the abandoned connect was still hanging
    await untilValue(() => occupantsSeen(bob, room).has("carol") || undefined);
    await proxy.waitForLog(() => accountSessionsOnline("carol@localhost") - onlineBefore === 1); // the fresh one (logs arrive late)
    // the server answers the abandoned connect at last: the proxy closes that connection instead of
    // binding it (bound, it would stay open, kept alive by keepalives)
    relay.release(leg);
    await untilValue(() => leg.closed || undefined);
    const id = await groupchat(bob, room, "still there");
    await carol.waitFor((el) => el.attrs.id === id);
    } finally {
      await proxy.stop();
    }
  });

  it("last session gone without a leave: the room sees the account xa (status kept); back to the session's presence when one joins", async () => {
    const { room, bob } = await roomWithBob("phone-xa");
    const resource = `xa-${randomUUID().slice(0, 6)}`;
    const phone = await newPhone(resource);
    await phone.send(xml("presence", { to: `${room}/alice` }, xml("show", {}, "chat"), xml("status", {}, "on the train"),
      xml("x", { xmlns: "http://jabber.org/protocol/muc" }, xml("history", { maxstanzas: "0" }))));
    await phone.waitFor((el) => el.is("presence") && codes(el).includes("110"));
    await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "chat");
    await phone.stop(); // the phone's connection is gone: no leave
    const xa = await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "xa");
    expect(xa.attrs.type).toBeUndefined(); // still an occupant
    expect(xa.getChildText("status")).toBe("on the train");
    const back = await newPhone(resource);
    const self = await join(back, room, "alice", { history: { maxstanzas: "0" } });
    expect(codes(self)).toContain("110");
    const avail = await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === undefined && el.getChild("show") === undefined);
    expect(bob.received.indexOf(avail)).toBeGreaterThan(bob.received.indexOf(xa));
  });

  function accountSessionsOnline(account: string): number {
    return proxy.logs().filter((l) => l.msg === "account session online" && l.account === account).length;
  }
});

