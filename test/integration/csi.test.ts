/**
 * Issue 11, CSI (XEP-0352) for the room traffic the proxy fans out (docs/architecture.md §8.5):
 * while alice's session is inactive, presence churn and chat states from rooms are held — only the
 * latest presence per occupant and the latest chat state per sender — and flushed, in order, each
 * with an XEP-0203 <delay/>, before a message with a body, on <active/>, and on anything alice
 * sends. <inactive/> also reaches the server (both offer CSI), whose own filter covers 1:1 traffic.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { RawClient } from "../support/raw-client.js";
import { createRoom, join, sleep, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const NS_CSI = "urn:xmpp:csi:0";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
const NS_DELAY = "urn:xmpp:delay";

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  let noHold: ProxyProcess; // --csi-max-held 0
  const clients: TestClient[] = [];

  beforeAll(async () => {
    const base = { upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile };
    [proxy, noHold] = await Promise.all([startProxy(base), startProxy({ ...base, extraArgs: ["--csi-max-held", "0"] })]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all([proxy?.stop(), noHold?.stop()]);
  });

  async function connect(user: string, port: number, tag: string): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${tag}-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }

  /** bob's room with bob and carol (straight on the server) and alice's phone through the proxy. */
  async function busyRoom(prefix: string, via = proxy): Promise<{ room: string; bob: TestClient; carol: TestClient; phone: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await connect("bob", server.port, "d");
    await createRoom(bob, room, "bob");
    const carol = await connect("carol", server.port, "d");
    await join(carol, room, "carol", { history: { maxstanzas: "0" } });
    const phone = await connect("alice", via.port, "phone");
    await join(phone, room, "alice", { history: { maxstanzas: "0" } });
    await phone.waitFor((el) => el.is("message") && el.attrs.from === room && el.getChild("subject") !== undefined);
    return { room, bob, carol, phone };
  }

  /** A presence update from `c` to the room (no type: a status change, XEP-0045 §7.7). */
  const churn = (c: TestClient, room: string, text: string): Promise<void> => c.send(xml("presence", { to: room }, xml("status", {}, text)));
  const chatState = (c: TestClient, room: string, state: string): Promise<void> =>
    c.send(xml("message", { to: room, type: "groupchat", id: randomUUID() }, xml(state, { xmlns: NS_CHATSTATES })));
  const body = (c: TestClient, room: string, text: string): Promise<void> =>
    c.send(xml("message", { to: room, type: "groupchat", id: randomUUID() }, xml("body", {}, text)));

  const roomStanzas = (c: TestClient, room: string, from: number): Element[] =>
    c.received.slice(from).filter((el) => String(el.attrs.from ?? "").startsWith(`${room}/`) || el.attrs.from === room);
  const hasStatus = (el: Element, text: string): boolean => el.is("presence") && el.getChildText("status") === text;

  /** carol (straight on the server) saw `pred` from the room: alice's account session got it too, give it a moment. */
  async function settled(carol: TestClient, pred: (el: Element) => boolean): Promise<void> {
    await carol.waitFor(pred);
    await sleep(400);
  }

  it("offers <csi/> after authentication", async () => {
    const raw = await RawClient.connect(proxy.port);
    const features = await raw.authenticate("alice", "alicepass");
    expect(features.match(/urn:xmpp:csi:0/g), "offered once").toHaveLength(1);
    raw.close();
  });

  it("while inactive: presence churn and chat states held, one per occupant, flushed with delays before the next body", async () => {
    const { room, bob, carol, phone } = await busyRoom("csi-hold");
    await phone.send(xml("inactive", { xmlns: NS_CSI }));
    await sleep(200);
    const mark = phone.received.length;
    for (let i = 1; i <= 8; i++) await churn(bob, room, `bob-${i}`);
    await carol.waitFor((el) => hasStatus(el, "bob-8"));
    for (let i = 1; i <= 5; i++) await churn(carol, room, `carol-${i}`);
    await chatState(bob, room, "composing");
    await chatState(bob, room, "paused");
    await settled(carol, (el) => el.is("message") && el.attrs.from === `${room}/bob` && el.getChild("paused", NS_CHATSTATES) !== undefined);
    expect(roomStanzas(phone, room, mark), "nothing from the room reaches the inactive phone").toEqual([]);

    await body(bob, room, "wake up");
    const msg = await phone.waitFor((el) => el.is("message") && el.getChildText("body") === "wake up");
    const got = roomStanzas(phone, room, mark);
    const at = got.indexOf(msg);
    const held = got.slice(0, at);
    // one presence per occupant (the latest), one chat state from bob (the latest), then the body
    const presences = held.filter((el) => el.is("presence"));
    expect(presences.map((p) => `${p.attrs.from}:${p.getChildText("status")}`).sort()).toEqual([`${room}/bob:bob-8`, `${room}/carol:carol-5`]);
    const states = held.filter((el) => el.is("message"));
    expect(states).toHaveLength(1);
    expect(states[0]!.getChild("paused", NS_CHATSTATES)).toBeDefined();
    for (const el of held) {
      const delay = el.getChild("delay", NS_DELAY);
      expect(delay, el.toString()).toBeDefined();
      expect(delay!.attrs.from).toBe(room);
      expect(Number.isNaN(Date.parse(String(delay!.attrs.stamp)))).toBe(false);
    }
    expect(msg.getChild("delay", NS_DELAY), "the body itself is live").toBeUndefined();
    expect(got.slice(at + 1).filter((el) => el.getChildText("body") === "wake up")).toEqual([]);
    // held order is the room's order (carol, straight on the server, saw the room's order)
    const key = (el: Element): string => (el.is("presence") ? `p:${el.getChildText("status")}` : `s:${el.getChild("paused", NS_CHATSTATES) ? "paused" : "other"}`);
    const roomOrder = roomStanzas(carol, room, 0).map(key);
    const heldKeys = held.map(key);
    expect([...heldKeys].sort((a, b) => roomOrder.lastIndexOf(a) - roomOrder.lastIndexOf(b))).toEqual(heldKeys);
  });

  it("<active/> flushes what was held; afterwards room traffic is live again", async () => {
    const { room, bob, carol, phone } = await busyRoom("csi-active");
    await phone.send(xml("inactive", { xmlns: NS_CSI }));
    await sleep(200);
    const mark = phone.received.length;
    await churn(bob, room, "away-1");
    await churn(bob, room, "away-2");
    await settled(carol, (el) => hasStatus(el, "away-2"));
    expect(roomStanzas(phone, room, mark)).toEqual([]);
    await phone.send(xml("active", { xmlns: NS_CSI }));
    const p = await phone.waitFor((el) => hasStatus(el, "away-2"));
    expect(p.getChild("delay", NS_DELAY)).toBeDefined();
    expect(roomStanzas(phone, room, mark).filter((el) => hasStatus(el, "away-1"))).toEqual([]);
    await churn(bob, room, "back");
    const live = await phone.waitFor((el) => hasStatus(el, "back"));
    expect(live.getChild("delay", NS_DELAY)).toBeUndefined();
  });

  it("a stanza from the client flushes what was held (it is looking at the app)", async () => {
    const { room, bob, carol, phone } = await busyRoom("csi-client");
    await phone.send(xml("inactive", { xmlns: NS_CSI }));
    await sleep(200);
    await chatState(bob, room, "composing");
    await settled(carol, (el) => el.is("message") && el.getChild("composing", NS_CHATSTATES) !== undefined);
    expect(phone.received.some((el) => el.getChild("composing", NS_CHATSTATES) !== undefined && el.attrs.from === `${room}/bob`)).toBe(false);
    await phone.send(xml("presence", {}, xml("status", {}, "typing a reply")));
    const st = await phone.waitFor((el) => el.is("message") && el.attrs.from === `${room}/bob` && el.getChild("composing", NS_CHATSTATES) !== undefined);
    expect(st.getChild("delay", NS_DELAY)).toBeDefined();
  });

  it("<inactive/> reaches the server too: its own CSI holds a 1:1 chat state until a message with a body", async () => {
    const phone = await connect("alice", proxy.port, "oneone");
    const bob = await connect("bob", server.port, "d");
    await phone.send(xml("inactive", { xmlns: NS_CSI }));
    // no round trip to check: Prosody's csi_simple flushes on any bytes from the client and then
    // waits 5 s (csi_resume_inactive_delay) before holding again
    await sleep(1000);
    const mark = phone.received.length;
    await bob.send(xml("message", { to: phone.jid, type: "chat", id: randomUUID() }, xml("composing", { xmlns: NS_CHATSTATES })));
    await sleep(800);
    expect(phone.received.slice(mark).filter((el) => el.is("message")).map(String)).toEqual([]);
    await bob.send(xml("message", { to: phone.jid, type: "chat", id: randomUUID() }, xml("body", {}, "psst")));
    await phone.waitFor((el) => el.is("message") && el.getChildText("body") === "psst");
    expect(phone.received.slice(mark).some((el) => el.getChild("composing", NS_CHATSTATES) !== undefined)).toBe(true);
  });

  it("--csi-max-held 0: room traffic is never held, an inactive phone gets presence updates at once", async () => {
    const { room, bob, phone } = await busyRoom("csi-off", noHold);
    await phone.send(xml("inactive", { xmlns: NS_CSI }));
    await sleep(200);
    await churn(bob, room, "live anyway");
    const p = await phone.waitFor((el) => hasStatus(el, "live anyway"));
    expect(p.getChild("delay", NS_DELAY)).toBeUndefined();
  });
});
