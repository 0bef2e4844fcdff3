/**
 * Protocol abuse against the real proxy in front of each real server (Prosody, ejabberd; issue 5): each abuse gets a
 * clear stream or stanza error, the connection is closed where the spec says so, and a bystander
 * session on the same proxy carries on.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { traits, upstreamServers } from "../support/servers.js";
import { RawClient } from "../support/raw-client.js";
import { NS_MUC_USER, createRoom, groupchat, isSelfPresence, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const plain = (u: string, p: string): string => Buffer.from(`\0${u}\0${p}`).toString("base64");

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  let bystander: TestClient;
  const clients: TestClient[] = [];

  async function viaProxy(user: "alice" | "bob" | "carol", resource: string, port = proxy.port): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }
  async function direct(user: "bob" | "carol", resource: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }

  /** The bystander still gets an answer from the server through the proxy. */
  async function bystanderAlive(): Promise<void> {
    const id = randomUUID();
    await bystander.send(xml("iq", { type: "get", id, to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    const r = await bystander.waitFor((el) => el.is("iq") && el.attrs.id === id, 5000);
    expect(r.attrs.type).toBe("result");
  }

  /** A raw client that has done STARTTLS and read the SASL features. */
  async function tlsRaw(): Promise<RawClient> {
    const c = await RawClient.connect(proxy.port);
    await c.startTls();
    c.send(c.header());
    await c.waitFor(/<mechanisms/);
    return c;
  }

  function streamErrorOf(text: string): string | undefined {
    return /<stream:error><([a-z-]+) /.exec(text)?.[1];
  }

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
    bystander = await viaProxy("carol", "bystander");
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  describe("stanzas before authentication", () => {
    it("plain text before STARTTLS: policy-violation, closed", async () => {
      const c = await RawClient.connect(proxy.port);
      c.send(c.header());
      await c.waitFor(/<starttls/);
      c.send("<message to='bob@localhost'><body>in clear</body></message>");
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("policy-violation");
      await bystanderAlive();
    });

    it.each([
      ["a message", "<message to='bob@localhost' type='chat'><body>hi</body></message>"],
      ["a bind", "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>x</resource></bind></iq>"],
      ["a presence", "<presence/>"],
    ])("%s after TLS but before SASL: not-authorized, closed, nothing reaches the server", async (_l, stanza) => {
      const c = await tlsRaw();
      c.send(stanza);
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("not-authorized");
      await bystanderAlive();
    });

    it("a stanza instead of the stream restart after <success/>: invalid-namespace (the stream must restart)", async () => {
      const c = await tlsRaw();
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plain("alice", "alicepass")}</auth>`);
      await c.waitFor(/<success/);
      c.send("<message to='bob@localhost' type='chat'><body>early</body></message>");
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("invalid-namespace");
    });
  });

  describe("SASL abuse", () => {
    it("a replayed <auth/> after success never re-authenticates: unsupported-stanza-type, closed", async () => {
      const c = await RawClient.connect(proxy.port);
      const jid = await c.login("alice", "alicepass", `replay-${randomUUID().slice(0, 4)}`);
      const before = proxy.logs().filter((l) => l.msg === "authenticated").length;
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plain("bob", "bobpass")}</auth>`);
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("unsupported-stanza-type");
      expect(c.text).not.toContain("<success");
      await sleep(100);
      expect(proxy.logs().filter((l) => l.msg === "authenticated").length).toBe(before);
      expect(proxy.logs().some((l) => l.msg === "negotiation element after authentication")).toBe(true);
      expect(jid).toMatch(/^alice@localhost\//);
      await bystanderAlive();
    });

    it("STARTTLS again after authentication: unsupported-stanza-type", async () => {
      const c = await RawClient.connect(proxy.port);
      await c.login("alice", "alicepass", `tls2-${randomUUID().slice(0, 4)}`);
      c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("unsupported-stanza-type");
    });

    it("an oversized SASL payload is cut while it arrives (policy-violation), never buffered to --max-stanza-size", async () => {
      const c = await tlsRaw();
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>`);
      const junk = "QUFB".repeat(1024); // 4 KiB of base64
      for (let i = 0; i < 64 && !c.closed; i++) {
        c.send(junk);
        await sleep(2);
      }
      await c.waitClosed();
      expect(streamErrorOf(c.text)).toBe("policy-violation");
      const line = await proxy.waitForLog((l) => l.msg === "bad input from client" && l.code === "XML_STANZA_TOO_LARGE");
      expect(String(line.reason)).toContain("16384");
      await bystanderAlive();
    });

    it("a SASL payload within the stanza limit but beyond PLAIN's bounds: malformed-request; no password in logs", async () => {
      const c = await tlsRaw();
      const secret = `S3cret-${randomUUID()}`;
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0alice\0${secret}${"x".repeat(6000)}`).toString("base64")}</auth>`);
      await c.waitFor(/<failure/);
      expect(c.text).toContain("<malformed-request/>");
      // a wrong password that fits: not-authorized from upstream, and the password is never logged
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plain("alice", secret)}</auth>`);
      await c.waitFor(/<not-authorized/);
      c.close();
      await sleep(100);
      expect(proxy.stdout()).not.toContain(secret);
      expect(proxy.stdout()).not.toContain(plain("alice", secret));
    });
  });

  describe("after authentication", () => {
    it("bind twice: the second bind is refused by the server; the session keeps its JID and works", async () => {
      const c = await RawClient.connect(proxy.port);
      const jid = await c.login("alice", "alicepass", `bind-${randomUUID().slice(0, 4)}`);
      c.send("<iq type='set' id='bind2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>second</resource></bind></iq>");
      const m = await c.waitFor(/<iq[^>]*id='bind2'[^>]*>[\s\S]*?<\/iq>/);
      expect(m[0]).toContain("type='error'");
      expect(m[0]).not.toContain("<jid>");
      c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      await c.waitFor(/id='p1'[^>]*type='result'|type='result'[^>]*id='p1'/);
      expect(proxy.logs().filter((l) => l.msg === "resource bound" && String(l.jid).startsWith(jid.split("/")[0]!) && l.jid !== jid
        && String(l.jid).endsWith("/second"))).toHaveLength(0);
      c.close();
    });

    it("from spoofing on the session's own stream: the recipient sees the session's real full JID, or the server ends the stream", async () => {
      const bob = await direct("bob", "spoof-observer");
      const forged = traits(server.kind).forgedFrom;
      for (const [id, from] of [["s1", "carol@localhost/x"], ["s2", "alice@localhost"], ["s3", "alice@localhost/other"], ["s4", "localhost"]] as const) {
        const c = await RawClient.connect(proxy.port);
        const jid = await c.login("alice", "alicepass", `spoof-${randomUUID().slice(0, 4)}`);
        c.send(`<message to='${bob.jid}' from='${from}' id='${id}' type='chat'><body>spoof ${id}</body></message>`);
        if (forged === "rewritten" || from === "alice@localhost") {
          const got = await bob.waitFor((el) => el.is("message") && el.attrs.id === id);
          expect(got.attrs.from).toBe(jid);
          c.close();
        } else {
          // ejabberd: the server's stream error, passed through by the proxy; nothing delivered
          await c.waitClosed();
          expect(streamErrorOf(c.text)).toBe("invalid-from");
        }
      }
      await sleep(200);
      const spoofs = bob.received.filter((el) => el.is("message") && /^s[1-4]$/.test(String(el.attrs.id)));
      for (const m of spoofs) expect(String(m.attrs.from)).toMatch(/^alice@localhost\/spoof-/);
    });

    it("from spoofing through the account layer: the room sees the account's occupant, never the forged JID", async () => {
      const room = uniqueRoom(server.muc, "spoof");
      const bob = await direct("bob", "owner");
      await createRoom(bob, room, "bob");
      const alice = await viaProxy("alice", "spoofer");
      expect(isSelfPresence(await join(alice, room, "alice", { history: { maxstanzas: "0" } }), room)).toBe(true);
      const id = randomUUID();
      await alice.send(xml("message", { to: room, type: "groupchat", id, from: "carol@localhost/evil" }, xml("body", {}, "forged")));
      const got = await bob.waitFor((el) => el.is("message") && el.attrs.id === id);
      expect(got.attrs.from).toBe(`${room}/alice`);
      // the real JID bob (owner, non-anonymous room) sees for the nick is alice's account session
      const item = occupantsSeen(bob, room).get("alice")?.getChild("x", NS_MUC_USER)?.getChild("item");
      expect(String(item?.attrs.jid)).toMatch(/^alice@localhost\/minimix-/);
    });

    it("stanzas to another account's account session are not room traffic there: no reach into its state", async () => {
      // carol (via proxy) joins a room, so carol's account session exists; alice targets it
      const room = uniqueRoom(server.muc, "iso");
      const bob = await direct("bob", "owner");
      await createRoom(bob, room, "bob");
      const carol = await viaProxy("carol", "victim");
      await join(carol, room, "carol", { history: { maxstanzas: "0" } });
      const carolAccount = String(occupantsSeen(bob, room).get("carol")?.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid);
      expect(carolAccount).toMatch(/^carol@localhost\/minimix-/);
      const alice = await viaProxy("alice", "intruder");
      const before = carol.received.length;
      // a fake room message and a fake occupant presence addressed to carol's account session. A
      // forged `from` never gets there: Prosody overwrites it, ejabberd ends the stream (invalid-from,
      // see above), so it is forged only where the stream survives it.
      const forge = (from: string): { from?: string } => (traits(server.kind).forgedFrom === "rewritten" ? { from } : {});
      await alice.send(xml("message", { to: carolAccount, type: "groupchat", ...forge(`${room}/bob`) }, xml("body", {}, "fake room message")));
      await alice.send(xml("presence", { to: carolAccount, ...forge(`${room}/ghost`) }, xml("x", { xmlns: NS_MUC_USER })));
      const iqId = randomUUID();
      await alice.send(xml("iq", { to: carolAccount, type: "get", id: iqId }, xml("query", { xmlns: "jabber:iq:version" })));
      const answer = await alice.waitFor((el) => el.is("iq") && el.attrs.id === iqId);
      expect(answer.attrs.type).toBe("error");
      await sleep(300);
      const leaked = carol.received.slice(before).filter((el) => el.getChildText("body") === "fake room message" ||
        String(el.attrs.from).endsWith("/ghost") || String(el.attrs.from) === alice.jid);
      expect(leaked).toHaveLength(0);
    });
  });

  describe("per-account room limit (--max-rooms-per-account 3)", () => {
    // a proxy of its own: accounts keep their rooms after their sessions left (until idle-leave)
    let limited: ProxyProcess;
    beforeAll(async () => {
      limited = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
        extraArgs: ["--max-rooms-per-account", "3"] });
    });
    afterAll(async () => {
      await limited?.stop();
    });
    it("the 4th room is refused by the proxy with policy-violation; other accounts and known rooms are unaffected", async () => {
      const bob = await direct("bob", "limit-owner");
      const rooms = Array.from({ length: 5 }, () => uniqueRoom(server.muc, "limit"));
      for (const r of rooms) await createRoom(bob, r, "bob");
      const phone = await viaProxy("alice", "limit-phone", limited.port);
      const laptop = await viaProxy("alice", "limit-laptop", limited.port);
      for (const r of rooms.slice(0, 3)) expect(isSelfPresence(await join(phone, r, "alice", { history: { maxstanzas: "0" } }), r)).toBe(true);
      // a second session of the same account joining a room the account is already in: not a new room
      expect(isSelfPresence(await join(laptop, rooms[0]!, "alice", { history: { maxstanzas: "0" } }), rooms[0]!)).toBe(true);

      const refused = await join(laptop, rooms[3]!, "alice", { id: "over-limit" });
      expect(refused.attrs.type).toBe("error");
      expect(refused.attrs.id).toBe("over-limit");
      expect(refused.attrs.to).toBe(laptop.jid);
      expect(refused.getChild("error")?.attrs.type).toBe("cancel");
      expect(refused.getChild("error")?.getChild("policy-violation", "urn:ietf:params:xml:ns:xmpp-stanzas")).toBeTruthy();
      await sleep(300);
      expect(occupantsSeen(bob, rooms[3]!).has("alice")).toBe(false); // never reached the server
      expect(limited.logs().some((l) => l.msg === "join refused: per-account room limit" && l.code === "ROOM_LIMIT")).toBe(true);

      // the other account (carol) is not limited by alice's rooms
      const carol = await viaProxy("carol", "limit-other", limited.port);
      expect(isSelfPresence(await join(carol, rooms[3]!, "carol", { history: { maxstanzas: "0" } }), rooms[3]!)).toBe(true);

      // leaving one room (both sessions that are in it) frees a slot
      for (const c of [phone, laptop]) await c.send(xml("presence", { to: `${rooms[0]}/alice`, type: "unavailable" }));
      await sleep(300);
      expect(isSelfPresence(await join(phone, rooms[4]!, "alice", { history: { maxstanzas: "0" } }), rooms[4]!)).toBe(true);
    });

    it("a join with the MUC namespace spelled with character references is still counted", async () => {
      const bob = await direct("bob", "limit-owner2");
      const rooms = Array.from({ length: 4 }, () => uniqueRoom(server.muc, "limref"));
      for (const r of rooms) await createRoom(bob, r, "bob");
      const c = await RawClient.connect(limited.port);
      await c.login("carol", "carolpass", `ref-${randomUUID().slice(0, 4)}`);
      // carol is in 1 room already (previous test); fill up to the limit
      for (const r of rooms.slice(0, 2)) await rawJoin(c, r, "carol");
      c.send(`<presence id='sneaky' to='${rooms[2]}/carol'><x xmlns='http&#58;//jabber.org/protocol/muc'/></presence>`);
      const m = await c.waitFor(/<presence[^>]*id=["']sneaky["'][^>]*>[\s\S]*?<\/presence>/);
      expect(m[0]).toMatch(/type=["']error["']/);
      expect(m[0]).toContain("policy-violation");
      c.close();
    });
  });

  describe("hostile bytes on authenticated streams (the fuzz suite's inputs, against the real proxy)", () => {
    const HOSTILE = [
      "<!DOCTYPE x [<!ENTITY lol 'lol'>]>", "<message>&lol9;</message>", "<message><!-- c --></message>", "<?php ?>",
      "<message>\u0000</message>", "<message to='a' to='b'/>", "<foo:bar/>", "<message foo:to='x'/>", "</message>",
      "<message><body>a]]>b</body></message>", `<message>${"<a>".repeat(100)}`, "<message>\ufffe</message>", "hello",
      `<message><body>${"x".repeat(300_000)}</body></message>`, "<![CDATA[x]]>", "<message a='<'/>", "<1a/>",
    ];
    it.each(HOSTILE.map((h, i) => [i, h.length > 60 ? `${h.slice(0, 40)}… (${h.length} chars)` : h, h]))(
      "#%i %s: a stream error, the stream closed, its upstream leg closed, others unaffected", async (_i, _label, hostile) => {
        const c = await RawClient.connect(proxy.port);
        const jid = await c.login("alice", "alicepass", `hostile-${randomUUID().slice(0, 6)}`);
        // split at a random point: the framer's verdict does not depend on chunking
        const bytes = Buffer.from(hostile as string);
        const cut = Math.floor(Math.random() * bytes.length);
        c.send(bytes.subarray(0, cut));
        await sleep(5);
        c.send(bytes.subarray(cut));
        await c.waitClosed(5000);
        expect(streamErrorOf(c.text)).toMatch(/^(not-well-formed|restricted-xml|policy-violation|bad-namespace-prefix)$/);
        await proxy.waitForLog((l) => l.msg === "connection closed" && l.jid === jid);
        await bystanderAlive();
      });
  });

  describe("IQ ids and the proxy's remapped ids", () => {
    it("an occupant's IQ relayed to one session can only be answered by that session; colliding ids are harmless", async () => {
      const room = uniqueRoom(server.muc, "iqid");
      const owner = await direct("bob", "iq-owner");
      await createRoom(owner, room, "bob");
      // two raw sessions of bob's account through the proxy (raw: no library auto-answers IQs), nick "bobby"
      const phone = await RawClient.connect(proxy.port);
      const laptop = await RawClient.connect(proxy.port);
      const jids = [await phone.login("bob", "bobpass", `iq-phone-${randomUUID().slice(0, 4)}`),
        await laptop.login("bob", "bobpass", `iq-laptop-${randomUUID().slice(0, 4)}`)];
      for (const c of [phone, laptop]) await rawJoin(c, room, "bobby");

      // the owner asks the account's occupant: relayed to one session with a remapped id
      const askId = `ask-${randomUUID().slice(0, 6)}`;
      await owner.send(xml("iq", { type: "get", id: askId, to: `${room}/bobby` }, xml("query", { xmlns: "jabber:iq:version" })));
      const relayRe = /<iq[^>]*type=["']get["'][^>]*>\s*<query xmlns=["']jabber:iq:version["']/;
      const which = await Promise.race([phone, laptop].map((c) => c.waitFor(relayRe).then(() => c)));
      const target = which;
      const other = target === phone ? laptop : phone;
      const tag = /<iq[^>]*type=["']get["'][^>]*>/.exec(target.text.slice(target.text.search(relayRe)))![0];
      const remapped = /\sid=["']([^"']+)["']/.exec(tag)![1]!;
      const asker = /\sfrom=["']([^"']+)["']/.exec(tag)![1]!;
      expect(remapped).not.toBe(askId);
      expect(asker).toBe(`${room}/bob`);
      expect(other.text).not.toMatch(relayRe); // relayed to one session only
      void jids;

      // the OTHER session forges the answer with the remapped id: the asker must not get it
      other.send(`<iq type='result' id='${remapped}' to='${asker}'><query xmlns='jabber:iq:version'><name>forged</name></query></iq>`);
      // the other session's own IQ with the very same id string is remapped too, answered with its own id
      other.send(`<iq type='get' id='${remapped}' to='${room}/bob'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await sleep(300);
      expect(owner.received.filter((el) => el.is("iq") && el.attrs.id === askId && el.getChild("query")?.getChildText("name") === "forged")).toHaveLength(0);
      expect(owner.received.filter((el) => el.is("iq") && el.attrs.id === askId && el.attrs.type === "result")).toHaveLength(0);

      // the right session answers: the owner gets exactly one result, with its own id, from the occupant
      target.send(`<iq type='result' id='${remapped}' to='${asker}'><query xmlns='jabber:iq:version'><name>real</name></query></iq>`);
      const answer = await owner.waitFor((el) => el.is("iq") && el.attrs.id === askId && el.attrs.type === "result");
      expect(answer.attrs.from).toBe(`${room}/bobby`);
      expect(answer.getChild("query")?.getChildText("name")).toBe("real");
      await sleep(200);
      expect(owner.received.filter((el) => el.is("iq") && el.attrs.id === askId && el.attrs.type === "result")).toHaveLength(1);
      // the owner (a client) does not answer pings here, so the other session's own ping gets the room's/owner's reply
      // with its own id back — or nothing; it must never be taken for the relayed IQ:
      const pong = other.text.match(new RegExp(`<iq[^>]*id=["']${remapped}["'][^>]*>`, "g")) ?? [];
      for (const p of pong) expect(p).toMatch(new RegExp(`from=["']${room}/bob["']`));
      phone.close();
      laptop.close();
      await bystanderAlive();
    });
  });
});

async function rawJoin(c: RawClient, room: string, nick: string): Promise<void> {
  c.send(`<presence to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
  await c.waitFor(new RegExp(`from=["']${room}/${nick}["'][^>]*>(?:(?!</presence>)[\\s\\S])*?status code=["']110["']`));
}
