import { afterEach, describe, expect, it } from "vitest";
import type { AddressInfo } from "node:net";
import * as http from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import type { FramingError } from "../../core/xml/errors.js";
import { streamHeader } from "../../core/xml/stream.js";
import type { StreamHandler } from "../stream/xmpp-connection.js";
import { WebSocketConnection } from "./connection.js";
import { NS_FRAMING } from "../../core/xml/ns.js";
import { WS_CLOSE } from "./framing.js";

interface Recorded {
  events: string[];
  closed: Promise<Error | undefined>;
}

function recorder(): StreamHandler & Recorded {
  let done!: (e: Error | undefined) => void;
  const events: string[] = [];
  return {
    events,
    closed: new Promise((r) => (done = r)),
    onOpen: (name, attrs) => void events.push(`open ${name} ${attrs.to ?? ""} ${attrs.xmlns ?? ""}`),
    onStanza: (name, bytes) => void events.push(`stanza ${name} ${bytes.toString()}`),
    onClose: () => void events.push("close"),
    onFramingError: (err: FramingError) => void events.push(`error ${err.condition}`),
    onSocketClosed: (err) => done(err),
  };
}

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server-side WebSocketConnection and a `ws` client connected to it. */
async function pair(keepaliveMs = 0, clientOpts: ConstructorParameters<typeof WebSocket>[2] = {}) {
  const server = http.createServer();
  servers.push(server);
  const wss = new WebSocketServer({ noServer: true });
  const h = recorder();
  const conn = new Promise<WebSocketConnection>((resolve) => {
    server.on("upgrade", (req, socket: Duplex, head) => wss.handleUpgrade(req, socket, head, (ws) =>
      resolve(new WebSocketConnection(ws, socket, h, { limits: { maxStanzaSize: 4096, maxDepth: 16 }, keepaliveMs }))));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, "xmpp", clientOpts);
  const got: string[] = [];
  client.on("message", (d) => got.push(String(d)));
  await new Promise((r) => client.once("open", r));
  return { conn: await conn, h, client, got };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("WebSocketConnection", () => {
  it("turns <open/>, stanzas and <close/> into StreamHandler calls", async () => {
    const { h, client } = await pair();
    client.send(`<open xmlns='${NS_FRAMING}' to='example.org' version='1.0'/>`);
    client.send("<presence xmlns='jabber:client'/>");
    client.send(`<close xmlns='${NS_FRAMING}'/>`);
    await until(() => h.events.length === 3);
    expect(h.events).toEqual(["open stream:stream example.org jabber:client", "stanza presence <presence xmlns='jabber:client'/>", "close"]);
    client.close();
  });

  it("expects a new <open/> after restart(), and only then", async () => {
    const { conn, h, client } = await pair();
    const open = `<open xmlns='${NS_FRAMING}' to='example.org' version='1.0'/>`;
    client.send(open);
    await until(() => h.events.length === 1);
    conn.restart();
    client.send(open);
    client.send(open);
    await until(() => h.events.length === 3);
    expect(h.events.slice(1)).toEqual(["open stream:stream example.org jabber:client", "error not-well-formed"]);
    client.close();
  });

  it("writes translated messages and counts bytes; end() sends <close/> and closes with 1000", async () => {
    const { conn, h, client, got } = await pair();
    expect(conn.write(streamHeader({ from: "example.org", id: "1" }))).toBe(true);
    conn.write("<message from='a@example.org'/>");
    conn.end();
    const code = await new Promise<number>((r) => client.once("close", (c) => r(c)));
    expect(code).toBe(1000);
    expect(got).toEqual([`<open xmlns='${NS_FRAMING}' from='example.org' id='1' version='1.0' xml:lang='en'/>`,
      "<message xmlns='jabber:client' from='a@example.org'/>", WS_CLOSE]);
    expect(conn.bytesOut).toBe(got.reduce((n, m) => n + Buffer.byteLength(m), 0));
    expect(conn.write("<presence/>")).toBe(false); // nothing after <close/>
    expect(await h.closed).toBeUndefined();
  });

  it("fail() before a header sends <open/>, the stream error and <close/>", async () => {
    const { conn, client, got } = await pair();
    conn.fail("host-unknown", undefined, streamHeader({ from: "example.org", id: "2" }));
    await new Promise((r) => client.once("close", r));
    expect(got).toHaveLength(3);
    expect(got[1]).toBe("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    expect(got[2]).toBe(WS_CLOSE);
  });

  it("has no STARTTLS and no TLS of its own on a plain socket", async () => {
    const { conn, client } = await pair();
    expect(conn.tlsProtocol).toBeUndefined();
    await expect(conn.upgradeServer()).rejects.toThrow(/no STARTTLS/);
    client.close();
  });

  it("pause() stops reading messages until resume()", async () => {
    const { conn, h, client } = await pair();
    client.send(`<open xmlns='${NS_FRAMING}' to='example.org' version='1.0'/>`);
    await until(() => h.events.length === 1);
    conn.pause();
    client.send("<presence xmlns='jabber:client'/>");
    await new Promise((r) => setTimeout(r, 100));
    expect(h.events).toHaveLength(1);
    conn.resume();
    await until(() => h.events.length === 2);
    client.close();
  });

  it("pings for keepalive and drops a peer that stops answering", async () => {
    const { h, client } = await pair(1000, { autoPong: false });
    let pings = 0;
    client.on("ping", () => pings++);
    const err = await h.closed;
    expect(err?.message).toMatch(/keepalive/);
    expect(pings).toBeGreaterThanOrEqual(3);
  }, 10_000);

  it("a peer that answers pings stays connected", async () => {
    const { h, client } = await pair(1000);
    let pings = 0;
    client.on("ping", () => pings++);
    await new Promise((r) => setTimeout(r, 2500));
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(client.readyState).toBe(WebSocket.OPEN);
    client.close();
    expect(await h.closed).toBeUndefined();
  });
});
