import { afterEach, describe, expect, it } from "vitest";
import type { AddressInfo } from "node:net";
import * as http from "node:http";
import * as net from "node:net";
import type * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { createLogger } from "../log.js";
import { WebSocket, WebSocketServer } from "ws";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import { WebSocketConnection } from "../websocket/connection.js";
import { NS_FRAMING } from "../../core/xml/ns.js";
import { WebSocketSplice, headerFrom } from "./ws-splice.js";

const servers: (http.Server | net.Server)[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

const quiet: StreamHandler = { onOpen: () => undefined, onStanza: () => undefined, onClose: () => undefined, onFramingError: () => undefined, onSocketClosed: () => undefined };
const OPEN = `<open xmlns='${NS_FRAMING}' to='localhost' version='1.0'/>`;
const SUCCESS = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met");
    await new Promise((r) => setTimeout(r, 10));
  }
};

/**
 * A WebSocket client whose first `<open/>` the forwarding node answered already (as ClientStream does),
 * spliced to a link whose far end (`owner`) stands for the owner node.
 */
async function spliced() {
  const server = http.createServer();
  servers.push(server);
  const wss = new WebSocketServer({ noServer: true });
  const conn = new Promise<WebSocketConnection>((resolve) => {
    server.on("upgrade", (req, socket: Duplex, head) => wss.handleUpgrade(req, socket, head, (ws) =>
      resolve(new WebSocketConnection(ws, socket, quiet, { limits: { maxStanzaSize: 4096, maxDepth: 16 }, keepaliveMs: 0 }))));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, "xmpp");
  const got: string[] = [];
  client.on("message", (d) => got.push(String(d)));
  let closeCode: number | undefined;
  client.on("close", (code) => (closeCode = code));
  await new Promise((r) => client.once("open", r));
  const c = await conn;
  client.send(OPEN); // taken by the forwarding node's own stream
  await new Promise((r) => setTimeout(r, 50));

  const linkServer = net.createServer();
  servers.push(linkServer);
  const ownerSide = new Promise<net.Socket>((resolve) => linkServer.once("connection", resolve));
  await new Promise<void>((r) => linkServer.listen(0, "127.0.0.1", r));
  const link = net.connect((linkServer.address() as AddressInfo).port, "127.0.0.1");
  await new Promise((r) => link.once("connect", r));
  const owner = await ownerSide;
  let fromClient = "";
  owner.on("data", (d: Buffer) => (fromClient += d.toString()));
  let ownerClosed = false;
  owner.on("close", () => (ownerClosed = true));
  owner.on("error", () => undefined);
  c.pause(); // as ClientStream.authOrForward leaves it
  const log = createLogger("silent");
  const splice = new WebSocketSplice(c, { maxStanzaSize: 1 << 20, maxDepth: 64 }, log);
  let spliceClosed = 0;
  splice.splice(link as unknown as tls.TLSSocket, () => spliceClosed++);
  return { client, got, owner, splice, spliceClosed: () => spliceClosed, fromClient: () => fromClient, ownerClosed: () => ownerClosed, closeCode: () => closeCode };
}

describe("WebSocketSplice: a WebSocket session forwarded to its owner node", () => {
  it("translates both ways: SASL success restarts both sides, header ↔ <open/>, stanzas one per message, close ↔ <close/>", async () => {
    const s = await spliced();
    s.owner.write(SUCCESS);
    await until(() => s.got.length === 1);
    expect(s.got[0]).toBe(SUCCESS);
    s.client.send(OPEN);
    await until(() => s.fromClient().includes("<stream:stream"));
    expect(s.fromClient()).toBe("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    // the owner's new header and features, its header cut across two writes
    s.owner.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/str");
    await new Promise((r) => setTimeout(r, 30));
    s.owner.write("eams' from='localhost' id='abc' version='1.0'><stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    await until(() => s.got.length === 3);
    expect(s.got[1]).toBe(`<open xmlns='${NS_FRAMING}' from='localhost' id='abc' version='1.0'/>`);
    expect(s.got[2]).toBe("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    // a stanza from the client goes on as it is; one from the owner, cut in two, arrives as one message with its namespace
    s.client.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await until(() => s.fromClient().endsWith("</iq>"));
    s.owner.write("<message to='a@localhost/r'><body>he");
    await new Promise((r) => setTimeout(r, 30));
    s.owner.write("llo</body></message>");
    await until(() => s.got.length === 4);
    expect(s.got[3]).toBe("<message xmlns='jabber:client' to='a@localhost/r'><body>hello</body></message>");
    // the client closes; the owner answers with its close tag and ends the link
    s.client.send(`<close xmlns='${NS_FRAMING}'/>`);
    await until(() => s.fromClient().endsWith("</stream:stream>"));
    s.owner.end("</stream:stream>");
    await until(() => s.closeCode() !== undefined);
    expect(s.got.at(-1)).toBe(`<close xmlns='${NS_FRAMING}'/>`);
    expect(s.closeCode()).toBe(1000);
  });

  it("a client that breaks the framing gets a stream error; the link to the owner is ended", async () => {
    const s = await spliced();
    s.client.send(OPEN); // no SASL success yet: an <open/> in the middle of the stream
    await until(() => s.ownerClosed());
    await until(() => s.closeCode() !== undefined);
    expect(s.got.some((m) => m.includes("<stream:error") && m.includes("not-well-formed"))).toBe(true);
    expect(s.fromClient()).toBe("");
  });

  it("the owner gone (link destroyed): the client gets <close/> and the WebSocket closes", async () => {
    const s = await spliced();
    s.owner.destroy();
    await until(() => s.closeCode() !== undefined);
    expect(s.got).toEqual([`<close xmlns='${NS_FRAMING}'/>`]);
  });

  it("the owner's stream not well-formed: the link is dropped, the client closed", async () => {
    const s = await spliced();
    s.owner.write("<message><body>x</wrong></message>");
    await until(() => s.closeCode() !== undefined);
    expect(s.got).toEqual([`<close xmlns='${NS_FRAMING}'/>`]);
  });

  it("the client gone: the link to the owner is closed (the owner sees its client leave)", async () => {
    const s = await spliced();
    s.client.terminate();
    await until(() => s.ownerClosed());
  });

  it("SIGTERM (stop with a URI): RFC 7395 §3.6.1 <close see-other-uri/>, the WebSocket closed, the link closed, reported once", async () => {
    const s = await spliced();
    s.splice.stop("wss://n2.example:5281/xmpp-websocket");
    await until(() => s.closeCode() !== undefined && s.ownerClosed());
    expect(s.got).toEqual([`<close xmlns='${NS_FRAMING}' see-other-uri='wss://n2.example:5281/xmpp-websocket'/>`]);
    expect(s.closeCode()).toBe(1000);
    expect(s.spliceClosed()).toBe(1);
  });

  it("SIGTERM without a URI: <system-shutdown/>, then <close/>", async () => {
    const s = await spliced();
    s.splice.stop(undefined);
    await until(() => s.closeCode() !== undefined && s.ownerClosed());
    expect(s.got[0]).toContain("<system-shutdown");
    expect(s.got.at(-1)).toBe(`<close xmlns='${NS_FRAMING}'/>`);
    expect(s.spliceClosed()).toBe(1);
  });

  it("SIGTERM while an element of the owner is in flight: it is completed first (whole elements that come with it go too); the client's later messages stay here", async () => {
    const s = await spliced();
    s.owner.write("<message to='a@localhost/r'><body>in fl");
    await new Promise((r) => setTimeout(r, 30));
    s.splice.stop("wss://n2.example/x");
    s.client.send("<message xmlns='jabber:client' to='b@localhost'><body>late</body></message>");
    await new Promise((r) => setTimeout(r, 50));
    expect(s.got).toEqual([]);
    s.owner.write("ight</body></message><message><body>next</body></message>");
    await until(() => s.closeCode() !== undefined);
    expect(s.got).toEqual(["<message xmlns='jabber:client' to='a@localhost/r'><body>in flight</body></message>",
      "<message xmlns='jabber:client'><body>next</body></message>", `<close xmlns='${NS_FRAMING}' see-other-uri='wss://n2.example/x'/>`]);
    expect(s.fromClient()).toBe("");
  });

  it("SIGTERM and the element in flight never completes: the client is told after the wait anyway", async () => {
    const s = await spliced();
    s.owner.write("<message><body>never");
    await new Promise((r) => setTimeout(r, 30));
    s.splice.stop(undefined);
    await until(() => s.closeCode() !== undefined, 5000);
    expect(s.got[0]).toContain("<system-shutdown");
  });

  it("the owner's own SIGTERM: its <close see-other-uri/> on the link is this client's closing message", async () => {
    const s = await spliced();
    s.owner.write(`<close xmlns='${NS_FRAMING}' see-other-uri='wss://n3.example:5281/ws'/></stream:stream>`);
    await until(() => s.closeCode() !== undefined && s.ownerClosed());
    expect(s.got).toEqual([`<close xmlns='${NS_FRAMING}' see-other-uri='wss://n3.example:5281/ws'/>`]);
    expect(s.spliceClosed()).toBe(1);
  });

  it("builds a stream header from <open/> attributes, escaped, unknown ones dropped", () => {
    expect(headerFrom({ to: "a'b", version: "1.0", "xml:lang": "en", xmlns: NS_FRAMING, foo: "x" }))
      .toBe("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='a&apos;b' version='1.0' xml:lang='en'>");
  });
});
