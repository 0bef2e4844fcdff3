import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, connectError, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { traits, upstreamServers } from "../support/servers.js";
import { establishedTo } from "../support/sockets.js";

const cert = inject("proxyCert");

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  async function client(user: "alice" | "bob" | "carol", resource: string, transport: "starttls" | "direct" = "starttls", port?: number): Promise<TestClient> {
    const c = await connectClient({
      port: port ?? (transport === "direct" ? proxy.tlsPort : proxy.port),
      transport,
      username: user,
      password: `${user}pass`,
      resource,
    });
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  describe("pass-through c2s proxy", () => {
    it("logs in through STARTTLS and binds the JID the server assigned", async () => {
      const c = await client("alice", "starttls-login");
      expect(c.jid).toBe("alice@localhost/starttls-login");
      const bound = await proxy.waitForLog((l) => l.msg === "resource bound" && l.jid === c.jid);
      expect(bound.transport).toBe("starttls");
      // the server routes to exactly that full JID: a direct client addresses it and the proxy delivers
      const direct = await client("bob", "direct-check", "starttls", server.port);
      const id = randomUUID();
      await direct.send(xml("message", { to: c.jid, type: "chat", id }, xml("body", {}, "to your full jid")));
      const got = await c.waitFor((el) => el.is("message") && el.attrs.id === id);
      expect(got.attrs.from).toBe(direct.jid);
    });

    it("logs in through direct TLS (XEP-0368)", async () => {
      const c = await client("alice", "direct-login", "direct");
      expect(c.jid).toBe("alice@localhost/direct-login");
      expect(c.xmpp.isSecure()).toBe(true);
    });

    it("reaches the server over direct TLS upstream (--upstream-tls direct)", async () => {
      const p = await startProxy({ upstreamPort: server.tlsPort, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--upstream-tls", "direct"] });
      try {
        const c = await connectClient({ port: p.port, username: "carol", password: "carolpass", resource: "up-direct" });
        clients.push(c);
        expect(c.jid).toBe("carol@localhost/up-direct");
        const res = await c.xmpp.iqCaller.request(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
        expect(res.attrs.type).toBe("result");
        await c.stop();
      } finally {
        await p.stop();
      }
    });

    it("fetches the roster", async () => {
      const c = await client("carol", "roster");
      const res = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      expect(res.is("query", "jabber:iq:roster")).toBe(true);
    });

    it("carries chat messages and presence between two users both on the proxy", async () => {
      const a = await client("alice", "chat-a");
      const b = await client("bob", "chat-b");
      const id = randomUUID();
      await a.send(xml("message", { to: b.jid, type: "chat", id }, xml("body", {}, "hello bob ✓")));
      const msg = await b.waitFor((el) => el.is("message") && el.attrs.id === id);
      expect(msg.attrs.from).toBe(a.jid);
      expect(msg.getChildText("body")).toBe("hello bob ✓");
      // directed presence
      await b.send(xml("presence", { to: a.jid }, xml("status", {}, "here")));
      const pres = await a.waitFor((el) => el.is("presence") && el.attrs.from === b.jid);
      expect(pres.getChildText("status")).toBe("here");
    });

    it("carries messages between a proxied user and a direct one, both ways", async () => {
      const viaProxy = await client("alice", "mixed-proxy");
      const direct = await client("carol", "mixed-direct", "starttls", server.port);
      const id1 = randomUUID();
      await viaProxy.send(xml("message", { to: direct.jid, type: "chat", id: id1 }, xml("body", {}, "from proxy")));
      expect((await direct.waitFor((el) => el.attrs.id === id1)).attrs.from).toBe(viaProxy.jid);
      const id2 = randomUUID();
      await direct.send(xml("message", { to: viaProxy.jid, type: "chat", id: id2 }, xml("body", {}, "from direct")));
      expect((await viaProxy.waitFor((el) => el.attrs.id === id2)).getChildText("body")).toBe("from direct");
    });

    it("passes a 200 KiB stanza and answers a 300 KiB one with policy-violation", async () => {
      const a = await client("alice", "big-a");
      const b = await client("bob", "big-b");
      const big = "x".repeat(200 * 1024);
      const id = randomUUID();
      await a.send(xml("message", { to: b.jid, type: "chat", id }, xml("body", {}, big)));
      const got = await b.waitFor((el) => el.attrs.id === id, 20_000);
      expect(got.getChildText("body")).toHaveLength(big.length);

      const raw = await RawClient.connect(proxy.port);
      await raw.login("carol", "carolpass", "huge");
      raw.send(`<message to='${b.jid}' type='chat'><body>${"y".repeat(300 * 1024)}</body></message>`);
      await raw.waitFor(/<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await raw.waitClosed();
    });

    it("answers malformed XML with a stream error while another session keeps working", async () => {
      const a = await client("alice", "survivor");
      const b = await client("bob", "survivor-peer");
      const raw = await RawClient.connect(proxy.port);
      await raw.login("carol", "carolpass", "broken");
      raw.send("<message><body>unclosed</message>");
      await raw.waitFor(/<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await raw.waitClosed();
      const id = randomUUID();
      await a.send(xml("message", { to: b.jid, type: "chat", id }, xml("body", {}, "still here")));
      expect((await b.waitFor((el) => el.attrs.id === id)).getChildText("body")).toBe("still here");
    });

    it("refuses restricted XML (a comment) with restricted-xml", async () => {
      const raw = await RawClient.connect(proxy.port);
      await raw.login("carol", "carolpass", "comment");
      raw.send("<message><!-- hi --></message>");
      await raw.waitFor(/<restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await raw.waitClosed();
    });

    it("reports a wrong password as not-authorized and leaves no upstream connection open", async () => {
      const before = establishedTo(proxy.child.pid!, server.port);
      const err = await connectError({ port: proxy.port, username: "alice", password: "wrong", resource: "bad" });
      expect(err.condition).toBe("not-authorized");
      await proxy.waitForLog((l) => l.msg === "authentication failed upstream");
      // the proxy closed its upstream stream for the failed attempt
      await expect.poll(() => establishedTo(proxy.child.pid!, server.port), { timeout: 5000 }).toBeLessThanOrEqual(before);
    });

    it("answers a stream to a domain it does not serve with host-unknown", async () => {
      const raw = await RawClient.connect(proxy.port);
      raw.send(raw.header("example.org"));
      await raw.waitFor(/<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      await raw.waitClosed();
    });

    it("refuses SASL before TLS (encryption required)", async () => {
      const raw = await RawClient.connect(proxy.port);
      raw.send(raw.header());
      await raw.waitFor(/<starttls/);
      expect(raw.text).not.toMatch(/<mechanisms/);
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("\0alice\0alicepass").toString("base64")}</auth>`);
      await raw.waitFor(/<policy-violation/);
      await raw.waitClosed();
    });

    it("offers the server's SCRAM hash (also -PLUS) and PLAIN after TLS (--client-sasl auto), and refuses other mechanisms", async () => {
      const raw = await RawClient.connect(proxy.port);
      await raw.startTls();
      raw.send(raw.header());
      const m = await raw.waitFor(/<mechanisms[^>]*>(.*?)<\/mechanisms>/);
      expect(m[1]).toBe("<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>");
      raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-512'>biwsbj1hbGljZSxyPXh5eg==</auth>");
      await raw.waitFor(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism\/>/);
      raw.close();
    });

    it("authenticates upstream with the strongest mechanism the server offers, never a -PLUS one", async () => {
      // what the server itself offers after TLS (ejabberd adds SCRAM-SHA-1-PLUS)
      const raw = await RawClient.connect(server.port);
      await raw.startTls();
      raw.send(raw.header());
      const m = await raw.waitFor(/<mechanisms[^>]*>(.*?)<\/mechanisms>/);
      raw.close();
      const offered = [...m[1]!.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((x) => x[1]);
      expect(offered.sort()).toEqual([...traits(server.kind).mechanisms].sort());
      // what the proxy picked for a client login
      const c = await client("bob", "mech");
      const line = await proxy.waitForLog((l) => l.msg === "authenticated" && l.user === "bob@localhost");
      expect(line.mechanism).toBe("PLAIN");
      expect(line.upstreamMechanism).toBe(traits(server.kind).picked);
      expect(String(line.upstreamMechanism)).not.toMatch(/-PLUS$/);
      expect(c.jid).toBe("bob@localhost/mech");
    });

    it("replaces the server's stream management with its own in the post-auth features (docs/architecture.md §8.4)", async () => {
      const raw = await RawClient.connect(proxy.port);
      const features = await raw.authenticate("bob", "bobpass");
      expect(features).toMatch(/urn:ietf:params:xml:ns:xmpp-bind/);
      // exactly one <sm/>, the proxy's own (the server offers sm:2 and sm:3; both stripped)
      expect(features.match(/urn:xmpp:sm:/g)).toHaveLength(1);
      expect(features).toContain("<sm xmlns='urn:xmpp:sm:3'/>");
      expect(features).not.toMatch(/urn:xmpp:sm:2/);
      raw.close();
    });

    it("never logs a password or a SASL payload", async () => {
      const c = await client("alice", "logcheck");
      await c.stop();
      await connectError({ port: proxy.port, username: "bob", password: "wrong-secret-xyz", resource: "x" });
      const out = proxy.stdout() + proxy.stderr();
      for (const secret of ["alicepass", "bobpass", "carolpass", "wrong-secret-xyz"]) expect(out).not.toContain(secret);
      for (const payload of ["\0alice\0alicepass", "\0bob\0wrong-secret-xyz"]) {
        expect(out).not.toContain(Buffer.from(payload).toString("base64"));
      }
      expect(out).not.toMatch(/<auth |<response |<challenge |<success /);
    });
  });

  describe("failures", () => {
    it("reports an unreachable upstream as remote-connection-failed and keeps running", async () => {
      const dead = await startProxy({ upstreamPort: 1, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
      try {
        const err = await connectError({ port: dead.port, username: "alice", password: "alicepass", resource: "x" });
        expect(err.condition).toBe("remote-connection-failed");
        const again = await connectError({ port: dead.port, username: "bob", password: "bobpass", resource: "y" });
        expect(again.condition).toBe("remote-connection-failed");
        expect(dead.child.exitCode).toBeNull();
      } finally {
        await dead.stop();
      }
    });

    it("sends system-shutdown to every client on SIGTERM and exits 0", async () => {
      const p = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
      const raw1 = await RawClient.connect(p.port);
      await raw1.login("alice", "alicepass", "shutdown1");
      const raw2 = await RawClient.connect(p.tlsPort, true);
      await raw2.login("bob", "bobpass", "shutdown2");
      const code = await p.stop("SIGTERM");
      expect(code).toBe(0);
      for (const r of [raw1, raw2]) {
        await r.waitFor(/<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
        await r.waitClosed();
      }
    });
  });
});
