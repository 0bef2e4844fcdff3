import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { NS_MUC_USER, createRoom, join, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const NS_CARBONS = "urn:xmpp:carbons:2";
const NS_FORWARD = "urn:xmpp:forward:0";

/** The message a carbon of `kind` (XEP-0280 §5 received, §6 sent) wraps, if `el` is one. */
function carbonInner(el: Element, kind: "sent" | "received"): Element | undefined {
  if (!el.is("message")) return undefined;
  return el.getChild(kind, NS_CARBONS)?.getChild("forwarded", NS_FORWARD)?.getChild("message");
}

/** How `c` received the message with this id: as itself, as a sent carbon, as a received carbon. */
function copies(c: TestClient, id: string): { plain: number; sent: Element[]; received: number } {
  return {
    plain: c.received.filter((el) => el.is("message") && el.attrs.id === id).length,
    sent: c.received.flatMap((el) => {
      const inner = carbonInner(el, "sent");
      return inner && inner.attrs.id === id ? [inner] : [];
    }),
    received: c.received.filter((el) => carbonInner(el, "received")?.attrs.id === id).length,
  };
}

function pm(to: string, body: string, withX: boolean, id = randomUUID()): Element {
  // XEP-0045 §7.5: clients SHOULD mark PMs with an empty muc#user <x/> (Conversations, Dino do)
  return xml("message", { to, type: "chat", id }, xml("body", {}, body), ...(withX ? [xml("x", { xmlns: NS_MUC_USER })] : []));
}

/**
 * XEP-0280 and room PMs, measured against what the same server does for a direct client pair:
 * the yardstick is carol with two resources straight on the server, both carbons-enabled and
 * joined; alice has two sessions through the proxy, also carbons-enabled and joined.
 */
describe.each(upstreamServers())("carbons against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  async function connect(user: "alice" | "bob" | "carol", resource: string, port: number): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }
  /** What a phone does after binding: enable carbons, then send its initial presence (ejabberd only copies to available resources). */
  async function carbonsOn(c: TestClient): Promise<void> {
    await c.xmpp.iqCaller.set(xml("enable", { xmlns: NS_CARBONS }));
    await c.send(xml("presence"));
  }

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  for (const withX of [true, false]) {
    it(`room PMs ${withX ? "with" : "without"} <x xmlns=muc#user/>: the sender gets no copy of its own PM, the other session what a direct client gets, incoming PMs once each`, async () => {
      const room = uniqueRoom(server.muc, "carbons");
      const bob = await connect("bob", "owner", server.port);
      await createRoom(bob, room, "bob");
      // the yardstick: two direct resources of carol
      const d1 = await connect("carol", "d1", server.port);
      const d2 = await connect("carol", "d2", server.port);
      // through the proxy: two sessions of alice
      const p1 = await connect("alice", "p1", proxy.port);
      const p2 = await connect("alice", "p2", proxy.port);
      for (const c of [d1, d2, p1, p2]) await carbonsOn(c);
      for (const c of [d1, d2]) await join(c, room, "carol", { history: { maxstanzas: "0" } });
      for (const c of [p1, p2]) await join(c, room, "alice", { history: { maxstanzas: "0" } });

      // each first session sends bob a PM
      const direct = randomUUID();
      const proxied = randomUUID();
      await d1.send(pm(`${room}/bob`, "from carol", withX, direct));
      await p1.send(pm(`${room}/bob`, "from alice", withX, proxied));
      await bob.waitFor((el) => el.attrs.id === direct);
      await bob.waitFor((el) => el.attrs.id === proxied);
      // bob answers each nick, then sends a second round as a marker: whatever the servers copy
      // of the first round has reached every session once the marker has
      const toCarol = randomUUID();
      const toAlice = randomUUID();
      await bob.send(pm(`${room}/carol`, "to carol", false, toCarol));
      await bob.send(pm(`${room}/alice`, "to alice", false, toAlice));
      const markCarol = randomUUID();
      const markAlice = randomUUID();
      for (const c of [d1, d2]) await c.waitFor((el) => el.attrs.id === toCarol);
      for (const c of [p1, p2]) await c.waitFor((el) => el.attrs.id === toAlice);
      await bob.send(pm(`${room}/carol`, "marker", false, markCarol));
      await bob.send(pm(`${room}/alice`, "marker", false, markAlice));
      for (const c of [d1, d2]) await c.waitFor((el) => el.attrs.id === markCarol);
      for (const c of [p1, p2]) await c.waitFor((el) => el.attrs.id === markAlice);

      const yard = { sender: copies(d1, direct), other: copies(d2, direct), in1: copies(d1, toCarol), in2: copies(d2, toCarol) };
      const got = { sender: copies(p1, proxied), other: copies(p2, proxied), in1: copies(p1, toAlice), in2: copies(p2, toAlice) };
      // What the servers do for direct clients (docs/compatibility.md): Prosody 0.12 copies an
      // outgoing PM only when it lacks the muc#user mark, ejabberd 23.01 copies it either way.
      expect(yard.other.sent.length).toBe(server.kind === "prosody" && withX ? 0 : 1);

      // bob got each PM once
      expect(bob.received.filter((el) => el.attrs.id === proxied)).toHaveLength(1);
      // The sending session never sees its own PM again (XEP-0280 §6: not to the sending client).
      expect(yard.sender.plain + yard.sender.sent.length + yard.sender.received).toBe(0);
      expect(got.sender.plain + got.sender.sent.length + got.sender.received).toBe(0);
      // The other session gets what a direct client gets from this server: at most one sent carbon,
      // naming the session that sent it, as the server names a direct sender.
      expect(yard.other.sent.length).toBeLessThanOrEqual(1);
      expect(got.other.sent.length).toBe(yard.other.sent.length);
      expect(got.other.plain + got.other.received).toBe(yard.other.plain + yard.other.received);
      for (const inner of got.other.sent) {
        expect(inner.attrs.from).toBe(p1.jid);
        expect(inner.attrs.to).toBe(`${room}/bob`);
        expect(inner.getChildText("body")).toBe("from alice");
      }
      for (const inner of yard.other.sent) expect(inner.attrs.from).toBe(d1.jid);
      // Incoming PMs reach each joined session exactly once, as they reach each direct resource.
      for (const x of [yard.in1, yard.in2, got.in1, got.in2]) expect(x.plain + x.received).toBe(1);
      expect(got.in1.plain).toBe(1);
      expect(got.in2.plain).toBe(1);
    });
  }
});
