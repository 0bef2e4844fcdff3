/**
 * XEP-0357 push for sleeping devices (docs/architecture.md §8.6), against real Prosody and ejabberd
 * (stock: neither has a push module loaded, so both refuse the client's <enable/> and the proxy
 * answers it), with a real app-server stand-in: an XEP-0114 component on the server
 * (test/support/component.ts) that records the publishes it receives. The phone is a byte-level
 * client (exact <enable/>, drop, <resume/>); bob is a client straight on the server.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { upstreamServers } from "../support/servers.js";
import { PushComponent, type ReceivedPublish } from "../support/component.js";
import { createRoom, groupchat, sleep, uniqueRoom } from "../support/muc.js";
import { until } from "../support/poll.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";

const cert = inject("proxyCert");
const SM = "urn:xmpp:sm:3";
/**
 * Long enough that what follows the first publish in a test (two stanzas sent back to back; the flood's 40
 * messages) is always coalesced into one more; three tests wait it out once each, so no longer than that.
 */
const INTERVAL_S = 3;

describe.each(upstreamServers())("XEP-0357 push against a real $kind", (server) => {
  let proxy: ProxyProcess;
  let app: PushComponent;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];
  const component = server.component!;

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--push-interval", String(INTERVAL_S)] });
    app = await PushComponent.connect(component);
  });
  afterAll(async () => {
    app?.close();
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  async function direct(user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(c);
    return c;
  }

  /** alice's phone through the proxy: logged in, bound on `resource`, SM with resumption enabled; resolves with its JID and SM id. */
  async function phone(resource: string, o: { sm?: boolean } = {}): Promise<{ raw: RawClient; jid: string; smId: string | undefined }> {
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    await raw.authenticate("alice", "alicepass");
    const jid = await raw.bind(resource);
    let smId: string | undefined;
    if (o.sm !== false) {
      raw.send(`<enable xmlns='${SM}' resume='true'/>`);
      smId = (await raw.waitFor(/<enabled [^>]*id=['"]([^'"]+)['"]/))[1];
    }
    return { raw, jid, smId };
  }

  async function joinRaw(raw: RawClient, room: string, nick: string): Promise<void> {
    raw.send(`<presence to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await raw.waitFor(new RegExp(`from=['"]${room}/${nick}['"][^]*?status code=['"]110['"]`));
  }

  /** XEP-0357 §5 <enable/> with a publish-options form; resolves once the client got its result. */
  async function enablePush(raw: RawClient, node: string): Promise<void> {
    const id = `push-${randomUUID().slice(0, 6)}`;
    raw.send(`<iq type='set' id='${id}'><enable xmlns='urn:xmpp:push:0' jid='${component.host}' node='${node}'>` +
      `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
      `<field var='secret'><value>s3cret-${node}</value></field></x></enable></iq>`);
    const m = await raw.waitFor(new RegExp(`<iq [^>]*id=['"]${id}['"][^>]*>`));
    expect(m[0]).toMatch(/type=['"]result['"]/);
  }

  const published = (node: string): ReceivedPublish[] => app.publishes.filter((p) => p.node === node);

  /** The account session has received the room message with this id (so any push decision about it is made). */
  const roomStanzaSeen = (id: string): Promise<unknown> => proxy.waitForLog((l) => l.msg === "room stanza" && l.id === id);

  /** Drops the phone's connection the way a network does and waits until its session hibernates. */
  async function drop(raw: RawClient, jid: string): Promise<void> {
    raw.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
  }

  async function roomWithBob(prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await direct("bob", "desk");
    await createRoom(bob, room, "bob");
    return { room, bob };
  }

  it("a hibernating phone: a mention publishes at once; a room PM and a 1:1 message right after are coalesced into one more; after the resume nothing", async () => {
    const { room, bob } = await roomWithBob("push");
    const node = `n-${randomUUID().slice(0, 8)}`;
    const p = await phone(`phone-${randomUUID().slice(0, 4)}`);
    await joinRaw(p.raw, room, "alice");
    await enablePush(p.raw, node);
    // stock servers have no push module: they refuse the <enable/>, the proxy answers it
    const refused = await proxy.waitForLog((l) => l.msg === "the server refused a push command: the proxy answers it (it pushes itself)");
    expect(refused.condition).toBe("service-unavailable");
    await drop(p.raw, p.jid);

    const other = await groupchat(bob, room, "nothing for her here");
    await roomStanzaSeen(other);
    await groupchat(bob, room, "hey alice, lunch?");
    await until("the mention's publish", () => published(node).length === 1);
    const first = published(node)[0]!;
    expect(first.summary).toEqual({ FORM_TYPE: "urn:xmpp:push:summary", "message-count": "1", "last-message-sender": `${room}/bob` });
    expect(first.options).toEqual({ FORM_TYPE: "http://jabber.org/protocol/pubsub#publish-options", secret: `s3cret-${node}` });
    // through the account session (the server stamps its full JID)
    expect(first.from).toMatch(/^alice@localhost\/minimix-/);

    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id: randomUUID() }, xml("body", {}, "psst"), xml("x", { xmlns: "http://jabber.org/protocol/muc#user" })));
    await bob.send(xml("message", { to: p.jid, type: "chat", id: randomUUID() }, xml("body", {}, "are you there?")));
    await until("the coalesced publish", () => published(node).length === 2, (INTERVAL_S + 10) * 1000);
    const second = published(node)[1]!;
    expect(second.summary["message-count"]).toBe("3");
    expect([`${room}/bob`, bob.jid]).toContain(second.summary["last-message-sender"]);
    expect(second.summary["last-message-body"]).toBeUndefined();
    expect(second.options.secret).toBe(`s3cret-${node}`);

    // the phone comes back: resume, and nothing more is pushed for it
    const back = await RawClient.connect(proxy.port);
    raws.push(back);
    await back.authenticate("alice", "alicepass");
    back.send(`<resume xmlns='${SM}' previd='${p.smId!}' h='0'/>`);
    await back.waitFor(/<resumed /);
    const later = await groupchat(bob, room, "alice, welcome back");
    await bob.send(xml("message", { to: p.jid, type: "chat", id: randomUUID() }, xml("body", {}, "and a 1:1")));
    await back.waitFor(/welcome back[^]*and a 1:1|and a 1:1[^]*welcome back/);
    await roomStanzaSeen(later);
    await sleep(500);
    expect(published(node)).toHaveLength(2);
  });

  it("<disable/> stops the pushes", async () => {
    const { room, bob } = await roomWithBob("pushoff");
    const node = `n-${randomUUID().slice(0, 8)}`;
    const p = await phone(`phone-${randomUUID().slice(0, 4)}`);
    await joinRaw(p.raw, room, "alice");
    await enablePush(p.raw, node);
    p.raw.send(`<iq type='set' id='off1'><disable xmlns='urn:xmpp:push:0' jid='${component.host}' node='${node}'/></iq>`);
    expect((await p.raw.waitFor(/<iq [^>]*id=['"]off1['"][^>]*>/))[0]).toMatch(/type=['"]result['"]/);
    await drop(p.raw, p.jid);
    const id = await groupchat(bob, room, "alice: still there?");
    await roomStanzaSeen(id);
    await sleep(500);
    expect(published(node)).toHaveLength(0);
  });

  it("an app server answering item-not-found removes the registration: no more publishes", async () => {
    const { room, bob } = await roomWithBob("pushgone");
    const node = `n-${randomUUID().slice(0, 8)}`;
    const p = await phone(`phone-${randomUUID().slice(0, 4)}`);
    await joinRaw(p.raw, room, "alice");
    await enablePush(p.raw, node);
    await drop(p.raw, p.jid);
    app.answer = { kind: "error", type: "cancel", condition: "item-not-found" };
    try {
      await groupchat(bob, room, "alice?");
      await until("the publish", () => published(node).length === 1);
      await proxy.waitForLog((l) => l.msg === "push registration removed after the app server's error" && l.session === p.jid);
    } finally {
      app.answer = { kind: "result" };
    }
    await sleep(INTERVAL_S * 1000); // past the interval: a registration still there would publish at once
    const id = await groupchat(bob, room, "alice??");
    await roomStanzaSeen(id);
    await sleep(500);
    expect(published(node)).toHaveLength(1);
  });

  it("a phone whose session ended (no SM) still gets room pushes while the account is in the room; binding its resource again stops them", async () => {
    const { room, bob } = await roomWithBob("pushgone2");
    const node = `n-${randomUUID().slice(0, 8)}`;
    const resource = `phone-${randomUUID().slice(0, 4)}`;
    const p = await phone(resource, { sm: false });
    await joinRaw(p.raw, room, "alice");
    await enablePush(p.raw, node);
    p.raw.close();
    await proxy.waitForLog((l) => l.msg === "push: device asleep (session ended)" && l.session === p.jid);
    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id: randomUUID() }, xml("body", {}, "psst")));
    await until("the room PM's publish", () => published(node).length === 1);
    expect(published(node)[0]!.summary["last-message-sender"]).toBe(`${room}/bob`);

    const again = await phone(resource, { sm: false });
    expect(again.jid).toBe(p.jid);
    await sleep(INTERVAL_S * 1000);
    const id = await groupchat(bob, room, "alice, ping");
    await roomStanzaSeen(id);
    await sleep(500);
    expect(published(node)).toHaveLength(1);
  });

  it("a silent app server and a flood of mentions neither slow the room for a connected session nor pile up publishes", async () => {
    const { room, bob } = await roomWithBob("pushflood");
    const node = `n-${randomUUID().slice(0, 8)}`;
    const p = await phone(`phone-${randomUUID().slice(0, 4)}`);
    await joinRaw(p.raw, room, "alice");
    await enablePush(p.raw, node);
    const laptop = await phone(`laptop-${randomUUID().slice(0, 4)}`, { sm: false });
    await joinRaw(laptop.raw, room, "alice");
    await drop(p.raw, p.jid);
    app.answer = { kind: "silent" };
    try {
      const n = 40;
      for (let i = 0; i < n; i++) await groupchat(bob, room, `alice flood ${i}`);
      await laptop.raw.waitFor(new RegExp(`alice flood ${n - 1}<`));
      for (let i = 0; i < n; i++) expect(laptop.raw.text).toContain(`alice flood ${i}<`);
      // one publish at once, the rest counted into at most one more per interval
      expect(published(node).length).toBeGreaterThanOrEqual(1);
      expect(published(node).length).toBeLessThanOrEqual(3);
    } finally {
      app.answer = { kind: "result" };
    }
  });
});

/**
 * A server with its own push module loaded (a private instance: ejabberd's mod_push, Prosody's
 * mod_cloud_notify from Debian's prosody-modules): the server accepts the <enable/> the proxy passes
 * on, and the two must not push the same message twice (docs/architecture.md §8.6). While the phone
 * hibernates its own leg is live at the server, so only the proxy pushes; once the session is gone, a
 * room PM (archived in the account's MAM) is the server's to push (mod_push's mam_message,
 * mod_cloud_notify's archive-message-added), and a mention (room archive, never the user's) the proxy's.
 */
const PUSH_MODULE = { ejabberd: { env: { EJABBERD_MOD_PUSH: "1" }, name: "mod_push" }, prosody: { env: { PROSODY_CLOUD_NOTIFY: "1" }, name: "mod_cloud_notify" } } as const;
describe.each(upstreamServers())("XEP-0357 push with the server's own push module loaded: a real $kind", (shared) => {
  let up: Upstream;
  let dir: string;
  let proxy: ProxyProcess;
  let app: PushComponent;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(joinPath(tmpdir(), "minimix-push-modpush-"));
    // the shared instance's certificate: test clients already trust it
    cpSync(joinPath(shared.dir, "certs"), joinPath(dir, "certs"), { recursive: true });
    up = await startUpstream(shared.kind, { dir, env: { ...PUSH_MODULE[shared.kind].env } });
    proxy = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--push-interval", "1"] });
    app = await PushComponent.connect(up.component!);
  }, 180_000);
  afterAll(async () => {
    app?.close();
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await up?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("hibernating: only the proxy pushes a 1:1 message; session gone: the server pushes the room PM, the proxy the mention and a <no-store/> PM — each once", async () => {
    const component = up.component!;
    const room = uniqueRoom(up.muc, "modpush");
    const bob = await connectClient({ port: up.port, username: "bob", password: "bobpass", resource: `desk-${randomUUID().slice(0, 4)}`, sm: false });
    clients.push(bob);
    await createRoom(bob, room, "bob");
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    await raw.authenticate("alice", "alicepass");
    const jid = await raw.bind(`phone-${randomUUID().slice(0, 4)}`);
    raw.send(`<enable xmlns='${SM}' resume='true' max='3'/>`); // a 3 s hibernation
    await raw.waitFor(/<enabled /);
    raw.send(`<presence to='${room}/alice'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await raw.waitFor(/status code=['"]110['"]/);
    const node = `n-${randomUUID().slice(0, 8)}`;
    raw.send(`<iq type='set' id='en1'><enable xmlns='urn:xmpp:push:0' jid='${component.host}' node='${node}'/></iq>`);
    expect((await raw.waitFor(/<iq [^>]*id=['"]en1['"][^>]*>/))[0]).toMatch(/type=['"]result['"]/);
    expect(proxy.logs().some((l) => l.msg === "the server refused a push command: the proxy answers it (it pushes itself)")).toBe(false);
    const fromProxy = (): ReceivedPublish[] => app.publishes.filter((p) => p.node === node && p.from.startsWith("alice@localhost/"));
    // the server's own publishes come from its domain (ejabberd) or the account's bare JID (Prosody)
    const fromServer = (): ReceivedPublish[] => app.publishes.filter((p) => p.node === node && !p.from.startsWith("alice@localhost/"));

    raw.close();
    await proxy.waitForLog((l) => l.msg === "connection lost: session hibernating until its client resumes" && l.jid === jid);
    await bob.send(xml("message", { to: jid, type: "chat", id: randomUUID() }, xml("body", {}, "are you there?")));
    await until("the proxy's publish", () => fromProxy().length === 1);
    expect(fromProxy()[0]!.summary["last-message-sender"]).toBe(bob.jid);
    await sleep(1000);
    expect(fromServer()).toHaveLength(0);

    await proxy.waitForLog((l) => l.msg === "push: device asleep (session ended)" && l.session === jid, 15_000);
    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id: randomUUID() }, xml("body", {}, "psst"), xml("x", { xmlns: "http://jabber.org/protocol/muc#user" })));
    await until("the server's publish for the room PM", () => fromServer().length === 1);
    await groupchat(bob, room, "alice, are you around?");
    await until("the proxy's publish for the mention", () => fromProxy().length === 2);
    expect(fromProxy()[1]!.summary["last-message-sender"]).toBe(`${room}/bob`);
    // a PM marked <no-store/> is not archived: the server's module never sees it, so the proxy pushes it
    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id: randomUUID() }, xml("body", {}, "off the record"),
      xml("x", { xmlns: "http://jabber.org/protocol/muc#user" }), xml("no-store", { xmlns: "urn:xmpp:hints" })));
    await until("the proxy's publish for the unarchived PM", () => fromProxy().length === 3);
    await sleep(1500);
    expect(fromProxy()).toHaveLength(3);
    expect(fromServer()).toHaveLength(1);
  });
});
