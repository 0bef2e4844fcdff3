import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { NS_MUC_USER, createRoom, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  async function connect(port: number, user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }

  /** The real JID bob (owner, non-anonymous room) sees behind alice's occupant: the account session. */
  async function accountSessionJid(bob: TestClient, room: string): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const p = occupantsSeen(bob, room).get("alice");
      const jid = p?.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid;
      if (jid) return String(jid);
      await sleep(50);
    }
    throw new Error("alice's occupant not seen");
  }

  beforeAll(async () => {
    proxy = await startProxy({
      upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--room-idle-leave", "1", "--account-resource-prefix", "mmx-", "--account-session-linger", "1"],
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  describe("the account session", () => {
    it("uses the configured resource prefix and answers ping and disco#info itself", async () => {
      const room = uniqueRoom(server.muc, "acct");
      const bob = await connect(server.port, "bob", "acct");
      await createRoom(bob, room, "bob");
      const alice = await connect(proxy.port, "alice", "acct");
      await join(alice, room, "alice");
      const jid = await accountSessionJid(bob, room);
      expect(jid).toMatch(/^alice@localhost\/mmx-[0-9a-f]{8}$/);
      const pong = await bob.xmpp.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      expect(pong.attrs.type).toBe("result");
      const info = await bob.xmpp.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
      expect(info.getChild("query")?.getChild("identity")?.attrs.category).toBe("client");
      await expect(bob.xmpp.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: "jabber:iq:version" }))))
        .rejects.toMatchObject({ condition: "service-unavailable" });
    });

    it("sends no broadcast presence: contacts never see it and bare-JID chat never reaches it", async () => {
      const bob = await connect(server.port, "bob", "contact");
      await bob.send(xml("presence")); // available: an unavailable session is sent no presence at all
      const alice = await connect(proxy.port, "alice", "contact");
      await alice.send(xml("presence"));
      await sleep(200);
      // mutual subscription bob <-> alice
      alice.xmpp.on("stanza", (el: (typeof alice.received)[number]) => {
        if (el.is("presence") && el.attrs.type === "subscribe") void alice.send(xml("presence", { to: String(el.attrs.from).split("/")[0], type: "subscribed" }));
      });
      await bob.send(xml("presence", { to: "alice@localhost", type: "subscribe" }));
      // (if an earlier run left the subscription in place, the server answers for alice: either way
      // bob ends up subscribed and receives alice's presence)
      await sleep(300);
      await bob.send(xml("presence", { to: "alice@localhost", type: "probe" }));
      await bob.waitFor((el) => el.is("presence") && String(el.attrs.from).startsWith("alice@localhost/contact"));

      const room = uniqueRoom(server.muc, "contact");
      const owner = await connect(server.port, "carol", "owner");
      await createRoom(owner, room, "carol");
      await join(alice, room, "alice");
      const accountJid = await accountSessionJid(owner, room);
      await sleep(500);
      expect(bob.received.some((el) => el.is("presence") && el.attrs.from === accountJid)).toBe(false);

      const id = randomUUID();
      await bob.send(xml("message", { to: "alice@localhost", type: "chat", id }, xml("body", {}, "to the bare JID")));
      await alice.waitFor((el) => el.attrs.id === id);
      await sleep(300);
      expect(proxy.logs().some((l) => l.msg === "account session ignored a stanza" && l.id === id)).toBe(false);
      await bob.send(xml("presence", { to: "alice@localhost", type: "unsubscribe" }));
      await bob.send(xml("presence", { to: "alice@localhost", type: "unsubscribed" }));
    });

    it("turns a session's broadcast presence into the account's room presence, as a server would", async () => {
      const room = uniqueRoom(server.muc, "bcast");
      const bob = await connect(server.port, "bob", "bcast");
      await createRoom(bob, room, "bob");
      const alice = await connect(proxy.port, "alice", "bcast");
      await join(alice, room, "alice");
      await alice.send(xml("presence", {}, xml("show", {}, "dnd"), xml("status", {}, "in a meeting")));
      const p = await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "dnd");
      expect(p.getChildText("status")).toBe("in a meeting");
    });

    it("leaves a room after --room-idle-leave with no session joined", async () => {
      const room = uniqueRoom(server.muc, "idle");
      const bob = await connect(server.port, "bob", "idle");
      await createRoom(bob, room, "bob");
      // carol has no other room or session through this proxy, so her account session closes afterwards
      const carol = await connect(proxy.port, "carol", "idle");
      await join(carol, room, "carol");
      await carol.stop(); // not a leave: the account stays ...
      await sleep(500);
      expect(occupantsSeen(bob, room).has("carol")).toBe(true);
      // ... until the idle time (1 s) has passed and the next tick (every 5 s) sees it
      await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/carol` && el.attrs.type === "unavailable", 12_000);
      // no room and no session of hers left: the account session goes after the linger (1 s here, §4.1)
      const closed = await proxy.waitForLog((l) => l.msg === "account session closed: linger over" && l.account === "carol@localhost", 5000);
      expect(closed).toBeTruthy();
    });
  });
});
