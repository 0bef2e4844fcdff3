import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import * as net from "node:net";
import * as tls from "node:tls";
import { Duplex } from "node:stream";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { serverAgnosticBlocks, upstreamServers } from "../support/servers.js";

const server = upstreamServers()[0]!;
const cert = inject("proxyCert");
let proxy: ProxyProcess;

function v2Header(ip: [number, number, number, number], port: number): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const h = Buffer.alloc(16);
  h[0] = 0x21; // v2, PROXY
  h[1] = 0x11; // TCP over IPv4
  h.writeUInt16BE(12, 2);
  Buffer.from(ip).copy(h, 4);
  Buffer.from([127, 0, 0, 1]).copy(h, 8);
  h.writeUInt16BE(port, 12);
  h.writeUInt16BE(5223, 14);
  return Buffer.concat([sig, h]);
}

/**
 * Direct TLS behind a load balancer, the hard case: the PROXY header and the TLS ClientHello
 * arrive in ONE segment (as HAProxy sends them), so the proxy must hand the bytes after the
 * header to its TLS layer.
 */
function directTlsWithHeader(port: number, header: Buffer): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, "127.0.0.1", () => {
      let first = true;
      const d = new Duplex({
        read() {},
        write(chunk: Buffer, _e, cb) {
          raw.write(first ? Buffer.concat([header, chunk]) : chunk, cb);
          first = false;
        },
      });
      raw.on("data", (x) => d.push(x));
      raw.on("end", () => d.push(null));
      const s = tls.connect({ socket: d, servername: "localhost", ALPNProtocols: ["xmpp-client"] });
      s.once("secureConnect", () => resolve(s));
      s.once("error", reject);
    });
    raw.once("error", reject);
  });
}

beforeAll(async () => {
  proxy = await startProxy({
    upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
    extraArgs: ["--proxy-protocol", "--max-unauthenticated-per-ip", "1"],
  });
});
afterAll(async () => {
  await proxy?.stop();
});

describe.runIf(serverAgnosticBlocks())("PROXY protocol (--proxy-protocol)", () => {
  it("v1 on the STARTTLS listener: the session logs the real client address and works", async () => {
    const raw = await RawClient.connect(proxy.port);
    raw.send("PROXY TCP4 203.0.113.9 127.0.0.1 40000 5222\r\n");
    const jid = await raw.login("alice", "alicepass", "pp-v1");
    expect(jid).toBe("alice@localhost/pp-v1");
    const bound = await proxy.waitForLog((l) => l.msg === "resource bound" && l.jid === jid);
    expect(bound.ip).toBe("203.0.113.9");
    raw.close();
  });

  it("v2 on the direct-TLS listener, header and ClientHello in one segment", async () => {
    const s = await directTlsWithHeader(proxy.tlsPort, v2Header([198, 51, 100, 7], 41000));
    expect(s.alpnProtocol).toBe("xmpp-client");
    let got = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => (got += d));
    s.write("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    await expect.poll(() => got, { timeout: 5000 }).toMatch(/<mechanism>PLAIN<\/mechanism>/);
    const accepted = await proxy.waitForLog((l) => l.msg === "connection accepted" && l.transport === "direct-tls" && l.ip === "198.51.100.7");
    expect(accepted).toBeTruthy();
    s.destroy();
  });

  it("applies the per-IP limit to the address the header reports", async () => {
    const a = await RawClient.connect(proxy.port);
    a.send("PROXY TCP4 192.0.2.50 127.0.0.1 1 5222\r\n");
    a.send(a.header());
    await a.waitFor(/<starttls/);
    const b = await RawClient.connect(proxy.port);
    b.send("PROXY TCP4 192.0.2.50 127.0.0.1 2 5222\r\n");
    await b.waitFor(/<policy-violation/);
    await b.waitClosed();
    const c = await RawClient.connect(proxy.port); // same TCP source, other reported address: allowed
    c.send("PROXY TCP4 192.0.2.51 127.0.0.1 3 5222\r\n");
    c.send(c.header());
    await c.waitFor(/<starttls/);
    a.close();
    c.close();
  });

  it("closes a connection that does not start with a PROXY header", async () => {
    const raw = await RawClient.connect(proxy.port);
    raw.send(raw.header());
    await raw.waitClosed();
    expect(raw.text).toBe("");
    await proxy.waitForLog((l) => l.msg === "connection refused: bad PROXY protocol header");
  });
});

/** A plain TCP connection from a chosen loopback address (127.0.0.0/8 is all local on Linux). */
function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the peer sends until it closes the connection. */
function readUntilClosed(s: net.Socket, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const t = setTimeout(() => reject(new Error("still open")), timeoutMs);
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", () => undefined);
    s.once("close", () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
  });
}

describe.runIf(serverAgnosticBlocks())("PROXY protocol sources (--proxy-protocol-from 127.0.0.2)", () => {
  let only: ProxyProcess;
  beforeAll(async () => {
    only = await startProxy({
      upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--proxy-protocol", "--proxy-protocol-from", "127.0.0.2", "--proxy-protocol-from", "::1"],
    });
  });
  afterAll(async () => {
    await only?.stop();
  });

  it("a connection from another address is closed before anything is read, even with a well-formed header", async () => {
    for (const port of [only.port, only.tlsPort]) {
      const s = await connectFrom(port, "127.0.0.1");
      const got = readUntilClosed(s);
      s.write("PROXY TCP4 203.0.113.66 127.0.0.1 40000 5222\r\n");
      expect((await got).length).toBe(0);
    }
    // the proxy logs after it closed the socket: the second line may reach stdout a moment after the close
    const refusals = () => only.logs().filter((l) => l.code === "PROXY_UNTRUSTED_SOURCE");
    await expect.poll(() => refusals().length, { timeout: 5000 }).toBe(2);
    const lines = refusals();
    expect(lines.map((l) => l.transport).sort()).toEqual(["direct-tls", "starttls"]);
    expect(lines.every((l) => l.ip === "127.0.0.1" && l.msg === "connection refused: not from a --proxy-protocol-from source")).toBe(true);
    // never became a session: the forged address appears nowhere
    expect(only.stdout()).not.toContain("203.0.113.66");
    const m = await (await fetch(`http://127.0.0.1:${only.metricsPort}/metrics`)).text();
    expect(m).toContain('minimix_limit_breaches_total{leg="client",kind="PROXY_UNTRUSTED_SOURCE"} 2');
  });

  it("the configured source is served, and the address its header reports is used", async () => {
    const s = await connectFrom(only.port, "127.0.0.2");
    const raw = new (RawClient as unknown as new (s: net.Socket) => RawClient)(s);
    raw.send("PROXY TCP4 198.51.100.23 127.0.0.1 40000 5222\r\n");
    const jid = await raw.login("alice", "alicepass", "pp-from");
    const bound = await only.waitForLog((l) => l.msg === "resource bound" && l.jid === jid);
    expect(bound.ip).toBe("198.51.100.23");
    raw.close();
  });
});
