/**
 * XMPP over WebSocket (RFC 7395, docs/websocket.md): a real proxy (the CLI) with --listen-ws in
 * front of a real Prosody, driven by @xmpp/client 0.14 over wss and by a raw `ws` peer for the
 * framing rules.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { NS_MUC_USER, createRoom, groupchat, groupchatsWithBody, isSelfPresence, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";
import { RawWs, connectWsClient } from "../support/ws-client.js";

const prosody = inject("prosody");
const cert = inject("proxyCert");
const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";
const OPEN = `<open xmlns='${NS_FRAMING}' to='localhost' version='1.0'/>`;

function wsListeners(p: ProxyProcess): { wss: string; ws: string } {
  const l = p.logs().filter((x) => x.msg === "listening" && x.transport === "websocket");
  const secure = l.find((x) => x.tls === true)!;
  const plain = l.find((x) => x.tls === false)!;
  return { wss: `wss://localhost:${String(secure.port)}/xmpp-websocket`, ws: `ws://127.0.0.1:${String(plain.port)}/xmpp-websocket` };
}

describe("XMPP over WebSocket (RFC 7395) against a real Prosody", () => {
  let proxy: ProxyProcess;
  let urls: { wss: string; ws: string };
  const clients: TestClient[] = [];
  const raws: RawWs[] = [];

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--listen-ws", "127.0.0.1:0", "--listen-ws-plain", "127.0.0.1:0"] });
    urls = wsListeners(proxy);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    for (const r of raws) r.ws.terminate();
    await proxy?.stop();
  });

  async function wsClient(user: string, resource: string, url = urls.wss): Promise<TestClient> {
    const c = await connectWsClient({ url, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }
  async function raw(url = urls.wss, protocols: string | string[] = "xmpp"): Promise<RawWs> {
    const r = await RawWs.connect(url, protocols);
    raws.push(r);
    return r;
  }

  it("@xmpp/client logs in over wss, gets its roster, and chats with a user on the XMPP listener", async () => {
    const c = await wsClient("alice", "browser");
    expect(c.jid).toMatch(/^alice@localhost\/browser-/);
    const roster = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    expect(roster.is("query", "jabber:iq:roster")).toBe(true);

    const carol = await connectClient({ port: proxy.port, username: "carol", password: "carolpass", resource: `tcp-${randomUUID().slice(0, 4)}` });
    clients.push(carol);
    const id1 = randomUUID();
    await c.send(xml("message", { to: carol.jid, type: "chat", id: id1 }, xml("body", {}, "from the browser")));
    const got = await carol.waitFor((el) => el.attrs.id === id1);
    expect(got.getChildText("body")).toBe("from the browser");
    expect(String(got.attrs.from)).toBe(c.jid);
    const id2 = randomUUID();
    await carol.send(xml("message", { to: c.jid, type: "chat", id: id2 }, xml("body", {}, "back to the browser")));
    expect((await c.waitFor((el) => el.attrs.id === id2)).getChildText("body")).toBe("back to the browser");

    await proxy.waitForLog((l) => l.msg === "authenticated" && l.transport === "websocket");
  });

  it("a WebSocket session and a TCP session of one account share one room occupant", async () => {
    const room = uniqueRoom(prosody.muc, "ws");
    const bob = await connectClient({ port: prosody.port, username: "bob", password: "bobpass", resource: `owner-${randomUUID().slice(0, 4)}` });
    clients.push(bob);
    await createRoom(bob, room, "bob");
    const browser = await wsClient("alice", "converse");
    const phone = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: `phone-${randomUUID().slice(0, 4)}` });
    clients.push(phone);
    expect(isSelfPresence(await join(browser, room, "alice", { history: { maxstanzas: "0" } }), room)).toBe(true);
    expect(isSelfPresence(await join(phone, room, "alice", { history: { maxstanzas: "0" } }), room)).toBe(true);

    await sleep(300);
    const alices = [...occupantsSeen(bob, room).values()].filter((p) =>
      String(p.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid ?? "").startsWith("alice@localhost/"));
    expect(alices).toHaveLength(1);
    expect(String(alices[0]!.getChild("x", NS_MUC_USER)!.getChild("item")!.attrs.jid)).toMatch(/^alice@localhost\/minimix-/);

    const id = await groupchat(bob, room, "to both alices");
    for (const c of [browser, phone]) await c.waitFor((el) => el.attrs.id === id && el.is("message"));
    await sleep(200);
    for (const c of [browser, phone]) expect(groupchatsWithBody(c, room, "to both alices")).toHaveLength(1);
    // and the browser speaks in the room as the shared occupant
    const fromBrowser = await groupchat(browser, room, "typed in the browser");
    await bob.waitFor((el) => el.attrs.id === fromBrowser && el.attrs.from === `${room}/alice`);
    await phone.waitFor((el) => el.is("message") && el.getChildText("body") === "typed in the browser");
  });

  it("speaks RFC 7395 framing: <open/>, self-contained features, one element per message", async () => {
    const r = await raw();
    expect(r.ws.protocol).toBe("xmpp");
    r.send(OPEN);
    const open = await r.waitFor(/^<open /);
    expect(open).toMatch(new RegExp(`^<open xmlns='${NS_FRAMING}' from='localhost' id='[0-9a-f]+' version='1.0' xml:lang='en'/>$`));
    const features = await r.waitFor(/^<stream:features/);
    expect(features).toMatch(/^<stream:features xmlns:stream='http:\/\/etherx.jabber.org\/streams'>/);
    expect(features).toContain("<mechanism>PLAIN</mechanism>");
    expect(features).not.toContain("starttls"); // RFC 7395 §3.9: TLS is the WebSocket's
    const auth = Buffer.from("\0alice\0alicepass").toString("base64");
    r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    await r.waitFor(/^<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'\/>$/);
    r.send(OPEN);
    await r.waitFor(/^<stream:features xmlns:stream=[^>]*>(?:(?!<\/stream:features>).)*urn:ietf:params:xml:ns:xmpp-bind/s);
    r.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw-${randomUUID().slice(0, 4)}</resource></bind></iq>`);
    const bound = await r.waitFor(/id=["']b1["']/);
    expect(bound).toMatch(/^<iq xmlns='jabber:client' /); // stanzas get the namespace they inherited on TCP
    r.send(`<close xmlns='${NS_FRAMING}'/>`);
    await r.waitFor(/^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/);
    expect(await r.waitClosed()).toBe(1000);
  });

  it("a plain ws listener on loopback works too (behind a TLS-terminating reverse proxy)", async () => {
    const c = await wsClient("carol", "plain", urls.ws);
    expect(c.jid).toMatch(/^carol@localhost\//);
    await proxy.waitForLog((x) => x.msg === "resource bound" && x.transport === "websocket" && String(x.jid) === c.jid);
  });

  it("takes the client address from X-Forwarded-For on the plain loopback listener", async () => {
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(urls.ws, "xmpp", { headers: { "X-Forwarded-For": "198.51.100.7, 203.0.113.9" } });
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    await proxy.waitForLog((l) => l.msg === "connection accepted" && l.transport === "websocket" && l.ip === "203.0.113.9");
    ws.terminate();
  });

  describe("framing errors end the stream with a stream error and <close/>", () => {
    async function expectStreamError(messages: (string | Buffer)[], condition: string, binary = false): Promise<RawWs> {
      const r = await raw();
      for (const m of messages) r.send(m, binary && m !== OPEN);
      const err = await r.waitFor(/^<stream:error/);
      expect(err).toMatch(new RegExp(`^<stream:error xmlns:stream='http://etherx.jabber.org/streams'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`));
      await r.waitFor(/^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/);
      await r.waitClosed();
      const i = r.messages.findIndex((m) => m.startsWith("<stream:error"));
      expect(r.messages.slice(i + 2)).toEqual([]); // nothing after <close/>
      return r;
    }

    it("a message that is not XML", async () => {
      await expectStreamError([OPEN, "hello, server"], "not-well-formed");
    });
    it("two elements in one message", async () => {
      await expectStreamError([OPEN, "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>"], "not-well-formed");
    });
    it("half an element in one message", async () => {
      await expectStreamError([OPEN, "<message xmlns='jabber:client'><body>"], "not-well-formed");
    });
    it("a binary message", async () => {
      await expectStreamError([OPEN, Buffer.from("<presence xmlns='jabber:client'/>")], "not-well-formed", true);
    });
    it("an RFC 6120 stream header instead of <open/>", async () => {
      const r = await expectStreamError(["<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"],
        "not-well-formed");
      expect(r.messages[0]).toMatch(/^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/); // our <open/> precedes the error
    });
    it("<open/> in another namespace", async () => {
      await expectStreamError(["<open xmlns='jabber:client' to='localhost' version='1.0'/>"], "invalid-namespace");
    });
    it("a stanza before authentication", async () => {
      await expectStreamError([OPEN, "<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>"], "not-authorized");
    });
    it("a second <open/> in the middle of a stream", async () => {
      await expectStreamError([OPEN, OPEN], "not-well-formed");
    });
  });

  describe("the upgrade is refused", () => {
    it("without the xmpp subprotocol", async () => {
      await expect(RawWs.connect(urls.wss, "chat")).rejects.toMatchObject({ status: 400 });
      await expect(RawWs.connect(urls.wss, [])).rejects.toMatchObject({ status: 400 });
    });
    it("on another path", async () => {
      await expect(RawWs.connect(urls.wss.replace("/xmpp-websocket", "/other"))).rejects.toMatchObject({ status: 404 });
    });
    it("a plain HTTP request gets 426", async () => {
      const res = await fetch(urls.ws.replace("ws://", "http://"));
      expect(res.status).toBe(426);
    });
  });
});

describe("XMPP over WebSocket: shutdown", () => {
  it("SIGTERM sends <system-shutdown/> and <close/> to WebSocket clients, then closes the socket", async () => {
    const proxy = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--listen-ws", "127.0.0.1:0"] });
    const port = proxy.logs().find((x) => x.msg === "listening" && x.transport === "websocket")!.port as number;
    const url = `wss://localhost:${port}/xmpp-websocket`;
    const lib = await connectWsClient({ url, username: "alice", password: "alicepass", resource: `bye-${randomUUID().slice(0, 4)}` });
    const r = await RawWs.connect(url);
    r.send(OPEN);
    await r.waitFor(/^<stream:features/);
    const libError = new Promise<string | undefined>((resolve) => lib.xmpp.on("error", (e: { condition?: string }) => resolve(e.condition)));
    const libClosed = new Promise<void>((resolve) => lib.xmpp.on("disconnect", () => resolve()));
    expect(await proxy.stop("SIGTERM")).toBe(0);
    await r.waitFor(/^<stream:error xmlns:stream='http:\/\/etherx.jabber.org\/streams'><system-shutdown /);
    await r.waitFor(/^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/);
    expect(await r.waitClosed()).toBe(1000);
    await Promise.race([libClosed, sleep(5000).then(() => Promise.reject(new Error("@xmpp/client was not disconnected")))]);
    expect(await libError).toBe("system-shutdown");
    await lib.stop();
  });
});

describe("XMPP over WebSocket: unauthenticated-connection limits", () => {
  it("an upgrade over --max-unauthenticated-per-ip is refused with HTTP 503; authenticating frees the slot", async () => {
    const proxy = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--listen-ws", "127.0.0.1:0", "--max-unauthenticated-per-ip", "1"] });
    try {
      const port = proxy.logs().find((x) => x.msg === "listening" && x.transport === "websocket")!.port as number;
      const url = `wss://localhost:${port}/xmpp-websocket`;
      const first = await RawWs.connect(url);
      await expect(RawWs.connect(url)).rejects.toMatchObject({ status: 503 });
      await proxy.waitForLog((l) => l.code === "UNAUTH_PER_IP" && l.transport === "websocket");
      first.send(OPEN);
      await first.waitFor(/^<stream:features/);
      first.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("\0carol\0carolpass").toString("base64")}</auth>`);
      await first.waitFor(/^<success /);
      const second = await RawWs.connect(url);
      second.ws.terminate();
      first.ws.terminate();
    } finally {
      await proxy.stop();
    }
  });
});
