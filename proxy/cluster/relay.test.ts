import { afterEach, describe, expect, it } from "vitest";
import * as net from "node:net";
import type * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { createLogger } from "../log.js";
import { TcpRelay } from "./relay.js";

const SUCCESS = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met");
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A connected pair of sockets: [our end, the far end]. */
async function pair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  servers.push(server);
  const far = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const near = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
  await new Promise((r) => near.once("connect", r));
  return [near, await far];
}

/** A client (its far end `client`) relayed to an owner (its far end `owner`), as the forwarding node does. */
async function relayed() {
  const [clientNear, client] = await pair();
  const [linkNear, owner] = await pair();
  let toClient = "";
  let toOwner = "";
  let clientClosed = false;
  let ownerClosed = false;
  client.on("data", (d: Buffer) => (toClient += d.toString()));
  owner.on("data", (d: Buffer) => (toOwner += d.toString()));
  client.on("close", () => (clientClosed = true));
  owner.on("close", () => (ownerClosed = true));
  client.on("error", () => undefined);
  owner.on("error", () => undefined);
  let closed = 0;
  const relay = new TcpRelay(clientNear as unknown as tls.TLSSocket, linkNear as unknown as tls.TLSSocket, createLogger("silent"), () => closed++);
  relay.start();
  return { relay, client, owner, toClient: () => toClient, toOwner: () => toOwner, clientClosed: () => clientClosed, ownerClosed: () => ownerClosed, closed: () => closed };
}

describe("TcpRelay: a TCP session forwarded to its owner node", () => {
  it("relays both ways; the owner's elements whole, its stream restarted at SASL success", async () => {
    const r = await relayed();
    r.client.write("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
    await until(() => r.toOwner().endsWith("</iq>"));
    r.owner.write(SUCCESS);
    // the owner's new header follows the client's (RFC 6120 §6.4.6): never in the same read as <success/>
    await until(() => r.toClient() === SUCCESS);
    r.owner.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'><stream:features/>");
    r.owner.write("<message><body>he");
    await new Promise((res) => setTimeout(res, 30));
    r.owner.write("llo</body></message>");
    await until(() => r.toClient().endsWith("</message>"));
    expect(r.toClient()).toBe(`${SUCCESS}<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'><stream:features/><message><body>hello</body></message>`);
    r.owner.end("</stream:stream>");
    await until(() => r.clientClosed() && r.closed() === 1);
    expect(r.toClient().endsWith("</stream:stream>")).toBe(true);
  });

  it("passes the owner's whitespace keepalives on (the client's NAT and liveness check), also while an element is in flight", async () => {
    const r = await relayed();
    r.owner.write("<message><body>a</body></message>");
    await until(() => r.toClient() === "<message><body>a</body></message>");
    r.owner.write(" ");
    await until(() => r.toClient().endsWith(" "));
    r.owner.write("<message><body>b");
    await new Promise((res) => setTimeout(res, 30));
    r.owner.write(" "); // inside the element: the client has whole elements only, so a space is still fine there
    await until(() => r.toClient().length === "<message><body>a</body></message>  ".length);
    r.owner.write("</body></message>");
    await until(() => r.toClient().endsWith("</message>"));
    expect(r.toClient()).toBe("<message><body>a</body></message>  <message><body>b </body></message>");
    r.relay.stop(undefined);
    await until(() => r.closed() === 1);
  });

  it("SIGTERM (stop with an address): <see-other-host> between two elements, the owner's element in flight completed first; the link closed, reported once", async () => {
    const r = await relayed();
    r.owner.write("<message><body>in fl");
    await new Promise((res) => setTimeout(res, 30));
    r.relay.stop("n1.example:5222");
    r.client.write("<message to='x'><body>late</body></message>");
    await new Promise((res) => setTimeout(res, 50));
    expect(r.toClient()).toBe("");
    r.owner.write("ight</body></message>");
    await until(() => r.clientClosed() && r.ownerClosed() && r.closed() > 0);
    expect(r.toClient()).toBe("<message><body>in flight</body></message><stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>n1.example:5222</see-other-host>"
      + "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>the proxy node is restarting</text></stream:error></stream:stream>");
    expect(r.toOwner()).toBe("");
    expect(r.closed()).toBe(1);
  });

  it("SIGTERM without an address: <system-shutdown/>; an element that never completes is given up after the wait", async () => {
    const r = await relayed();
    r.owner.write("<message><body>never");
    await new Promise((res) => setTimeout(res, 30));
    r.relay.stop(undefined);
    await until(() => r.clientClosed() && r.closed() > 0, 5000);
    expect(r.toClient()).toMatch(/^<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>.*<\/stream:error><\/stream:stream>$/);
    expect(r.closed()).toBe(1);
  });

  it("the owner's stream not well-formed, or the client gone: both ends closed", async () => {
    const a = await relayed();
    a.owner.write("<message><body>x</wrong></message>");
    await until(() => a.clientClosed() && a.ownerClosed() && a.closed() > 0);
    expect(a.closed()).toBe(1);
    const b = await relayed();
    b.client.destroy();
    await until(() => b.ownerClosed() && b.closed() > 0);
    expect(b.closed()).toBe(1);
  });
});
