/**
 * Another client library than the suite's own: slixmpp (Python, Debian's python3-slixmpp) through the
 * proxy, on both servers. Its habits differ from @xmpp/client's: it picks its own SASL mechanism from
 * what the proxy offers (SCRAM, -PLUS where it thinks it can bind), enables XEP-0198 with resumption
 * by itself, joins rooms with XEP-0045's plugin and waits for the self-presence. What is tested is the
 * protocol the proxy speaks, not one library's way of using it. (This file found two login bugs: a
 * first SASL attempt refused at once left the stream refusing every later <auth/>, and -PLUS with
 * tls-unique on TLS 1.3, which slixmpp sends and ejabberd accepts, was refused — so slixmpp could not
 * log in through the proxy at all.)
 *
 * alice has logged in once with her password (PLAIN, @xmpp/client), so the proxy holds her SCRAM
 * records and verifies slixmpp's SCRAM itself (docs/architecture.md §3.5): her sessions are on the
 * account layer, one occupant in the room however many of them joined.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { createRoom, groupchat, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";
import { SlixClient, slixmppAvailable, type SlixEvent } from "../support/slix-client.js";
import { until } from "../support/poll.js";

const cert = inject("proxyCert");
describe.each(upstreamServers())("slixmpp through the proxy ($kind)", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];
  const slix: SlixClient[] = [];

  beforeAll(async () => {
    if (!slixmppAvailable()) throw new Error("python3-slixmpp is not installed for /usr/bin/python3: `npm test` installs it (apt-get install python3-slixmpp)");
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
    // the password once, as a first login does: the proxy makes alice's SCRAM records
    const first = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: `plain-${randomUUID().slice(0, 4)}` });
    await first.stop();
    await proxy.waitForLog((l) => l.msg === "SCRAM records created after a password login" || l.msg === "SCRAM records replaced after a password login");
  });
  afterAll(async () => {
    await Promise.all(slix.map((s) => s.stop()));
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  async function alice(resource: string, transport: "starttls" | "direct" = "starttls"): Promise<{ client: SlixClient; ready: Extract<SlixEvent, { ev: "ready" }> }> {
    const port = transport === "direct" ? proxy.tlsPort : proxy.port;
    const r = await SlixClient.start(`alice@localhost/${resource}-${randomUUID().slice(0, 4)}`, "alicepass", port, cert.certFile, transport);
    slix.push(r.client);
    return r;
  }

  async function bobIn(prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await connectClient({ port: server.port, username: "bob", password: "bobpass", resource: `${prefix}-${randomUUID().slice(0, 4)}` });
    clients.push(bob);
    await createRoom(bob, room, "bob");
    return { room, bob };
  }

  it("logs in with SCRAM the proxy verifies, gets XEP-0198; two sessions are one occupant; messages reach each exactly once", async () => {
    const { room, bob } = await bobIn("slix");
    const phone = await alice("phone");
    const laptop = await alice("laptop");
    for (const s of [phone, laptop]) {
      // slixmpp 1.8 binds with tls-unique, on TLS 1.3 too: accepted, unadvertised (§3.5)
      expect(s.ready.mechanism).toMatch(/^SCRAM-SHA-[0-9]+-PLUS$/);
      // XEP-0198 with resumption: the proxy's own (§8.4), whatever the server offers
      expect(await s.client.waitFor((e) => e.ev === "sm")).toMatchObject({ resumable: true });
    }
    // verified by the proxy against the record (not relayed): the account layer serves it
    expect(proxy.logs().some((l) => l.msg === "authenticated" && l.user === "alice@localhost" && String(l.mechanism).startsWith("SCRAM-"))).toBe(true);

    phone.client.send({ op: "join", room, nick: "alice" });
    const j1 = await phone.client.waitFor((e) => e.ev === "joined" || e.ev === "error");
    expect(j1).toMatchObject({ ev: "joined", room });
    expect((j1 as Extract<SlixEvent, { ev: "joined" }>).occupants).toEqual(expect.arrayContaining(["bob", "alice"]));
    laptop.client.send({ op: "join", room, nick: "alice" });
    const j2 = await laptop.client.waitFor((e) => e.ev === "joined" || e.ev === "error");
    expect(j2).toMatchObject({ ev: "joined", room });

    // bob sees one alice: her account joined once; the laptop's join was answered by the proxy
    await until("bob sees alice", () => occupantsSeen(bob, room).has("alice"));
    const alicePresences = (): number => bob.received.filter((el) => el.is("presence") && el.attrs.from === `${room}/alice`).length;
    const seenBefore = alicePresences();

    const id = await groupchat(bob, room, "from bob to both");
    for (const s of [phone.client, laptop.client]) await s.waitFor((e) => e.ev === "groupchat" && e.body === "from bob to both");
    await sleep(300); // a duplicate would come right behind
    for (const s of [phone.client, laptop.client]) {
      expect(s.groupchats("from bob to both")).toHaveLength(1);
      expect(s.groupchats("from bob to both")[0]!.id).toBe(id);
    }

    phone.client.send({ op: "say", room, body: "from the phone", id: `slix-${randomUUID()}` });
    await bob.waitFor((el) => el.is("message") && el.getChildText("body") === "from the phone");
    // the room's reflection reaches both of alice's sessions (the sender's own included, XEP-0045 §7.4)
    for (const s of [phone.client, laptop.client]) await s.waitFor((e) => e.ev === "groupchat" && e.body === "from the phone");
    expect(alicePresences()).toBe(seenBefore);
  });

  it("over direct TLS (XEP-0368, slixmpp's use_ssl): logs in, joins, gets the room's messages", async () => {
    const { room, bob } = await bobIn("slixdirect");
    const phone = await alice("direct", "direct");
    expect(phone.ready.mechanism).toMatch(/^SCRAM-SHA-/);
    phone.client.send({ op: "join", room, nick: "alice" });
    expect(await phone.client.waitFor((e) => e.ev === "joined" || e.ev === "error")).toMatchObject({ ev: "joined", room });
    const body = `direct ${randomUUID().slice(0, 6)}`;
    await groupchat(bob, room, body);
    await phone.client.waitFor((e) => e.ev === "groupchat" && e.body === body);
  });

  it("a bot's join, message and leave sent back to back (as go-sendxmpp posts): the message reaches the room once, then alice leaves", async () => {
    const { room, bob } = await bobIn("slixbot");
    const bot = await alice("bot");
    const id = `bot-${randomUUID()}`;
    bot.client.send({ op: "post", room, nick: "alice", body: "posted by a bot", id });
    // the room takes the message from alice's occupant: straight to the server, the join is handled
    // before the message on one stream; through the proxy the message waits for the account's join
    const got = await bob.waitFor((el) => el.is("message") && el.getChildText("body") === "posted by a bot").catch((e: unknown) => {
      throw new Error(`${String(e)}; the bot saw ${JSON.stringify(bot.client.events)}; its stderr: ${bot.client.stderrText()}`);
    });
    expect(got.attrs.from).toBe(`${room}/alice`);
    await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable");
    await sleep(300);
    expect(bob.received.filter((el) => el.is("message") && el.getChildText("body") === "posted by a bot")).toHaveLength(1);
    expect(bot.client.events.some((e) => e.ev === "error")).toBe(false);
    expect(bot.client.events.filter((e) => e.ev === "presence" && e.from === `${room}/alice`).map((e) => (e as Extract<SlixEvent, { ev: "presence" }>).type)).toContain("unavailable");
  });

  it("a session that leaves gets its own unavailable self-presence; the room sees no one leave while the other stays", async () => {
    const { room, bob } = await bobIn("slixleave");
    const phone = await alice("phone");
    const laptop = await alice("laptop");
    for (const s of [phone.client, laptop.client]) {
      s.send({ op: "join", room, nick: "alice" });
      expect(await s.waitFor((e) => e.ev === "joined" || e.ev === "error")).toMatchObject({ ev: "joined" });
    }
    await until("bob sees alice", () => occupantsSeen(bob, room).has("alice"));

    laptop.client.send({ op: "leave", room, nick: "alice" });
    const gone = await laptop.client.waitFor((e) => e.ev === "presence" && e.from === `${room}/alice` && e.type === "unavailable");
    expect((gone as Extract<SlixEvent, { ev: "presence" }>).codes).toContain(110);

    const body = `still here ${randomUUID().slice(0, 6)}`;
    await groupchat(bob, room, body);
    await phone.client.waitFor((e) => e.ev === "groupchat" && e.body === body);
    await sleep(300);
    expect(laptop.client.groupchats(body)).toHaveLength(0);
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
  });

  it("its TCP connection dies: slixmpp resumes the stream (XEP-0198 §5) and gets what was posted meanwhile exactly once, without a new join", async () => {
    const { room, bob } = await bobIn("slixcut");
    const phone = await alice("phone");
    phone.client.send({ op: "join", room, nick: "alice" });
    expect(await phone.client.waitFor((e) => e.ev === "joined" || e.ev === "error")).toMatchObject({ ev: "joined" });
    await until("bob sees alice", () => occupantsSeen(bob, room).has("alice"));
    const alicePresences = (): number => bob.received.filter((el) => el.is("presence") && el.attrs.from === `${room}/alice`).length;
    const seenBefore = alicePresences();

    phone.client.send({ op: "cut" });
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes", 15_000);
    const bodies = [`while away 1 ${randomUUID().slice(0, 4)}`, `while away 2 ${randomUUID().slice(0, 4)}`];
    for (const b of bodies) await groupchat(bob, room, b);

    await phone.client.waitFor((e) => e.ev === "resumed", 30_000);
    for (const b of bodies) await phone.client.waitFor((e) => e.ev === "groupchat" && e.body === b);
    await sleep(300);
    for (const b of bodies) expect(phone.client.groupchats(b)).toHaveLength(1);
    // no new join: the room never saw alice's occupant change
    expect(alicePresences()).toBe(seenBefore);
    // and the stream works after the resume
    const after = `after the resume ${randomUUID().slice(0, 4)}`;
    await groupchat(bob, room, after);
    await phone.client.waitFor((e) => e.ev === "groupchat" && e.body === after);
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
  });
});
