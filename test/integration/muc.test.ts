import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { traits, upstreamServers } from "../support/servers.js";
import {
  NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_USER, codes, createRoom, groupchat, groupchatsWithBody, isSelfPresence, join, occupantsSeen, sleep, uniqueRoom,
} from "../support/muc.js";

const cert = inject("proxyCert");

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  /** Through the proxy (alice, carol) or straight to the server (bob: an independent observer of the room). */
  async function viaProxy(user: "alice" | "carol", resource: string): Promise<TestClient> {
    const c = await connectClient({ port: proxy.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }
  async function direct(user: "bob" | "carol", resource: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }

  /** Room traffic the account session received from the server, as the proxy logs it at trace level. */
  function roomStanzasLogged(kind: string, type: string, ids: string[]): number {
    return proxy.logs().filter((l) => l.msg === "room stanza" && l.kind === kind && l.type === type && ids.includes(String(l.id))).length;
  }

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  describe("account-level MUC", () => {
    it("evidence: two alice sessions are one occupant; bob's 5 messages reach each session once and the account once", async () => {
      const room = uniqueRoom(server.muc, "evidence");
      const bob = await direct("bob", "owner");
      await createRoom(bob, room, "bob");
      const phone = await viaProxy("alice", "phone");
      const laptop = await viaProxy("alice", "laptop");
      const self1 = await join(phone, room, "alice", { history: { maxstanzas: "0" } });
      const self2 = await join(laptop, room, "alice", { history: { maxstanzas: "0" } });
      expect(isSelfPresence(self1, room) && isSelfPresence(self2, room)).toBe(true);

      // bob (owner of a non-anonymous room, straight on the server) sees exactly one alice, whose real JID is the account session
      await sleep(300);
      const aliceOccupants = [...occupantsSeen(bob, room).values()].filter((p) =>
        String(p.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid ?? "").startsWith("alice@localhost/"));
      expect(aliceOccupants).toHaveLength(1);
      const realJid = String(aliceOccupants[0]!.getChild("x", NS_MUC_USER)!.getChild("item")!.attrs.jid);
      expect(realJid).toMatch(/^alice@localhost\/minimix-/);
      expect(realJid).not.toBe(phone.jid);
      expect(realJid).not.toBe(laptop.jid);

      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await groupchat(bob, room, `evidence ${i}`));
      for (const c of [phone, laptop]) {
        await c.waitFor((el) => el.attrs.id === ids[4] && el.is("message"));
      }
      await sleep(200);
      for (let i = 0; i < 5; i++) {
        for (const c of [phone, laptop]) {
          const got = groupchatsWithBody(c, room, `evidence ${i}`);
          expect(got).toHaveLength(1);
          expect(got[0]!.attrs.to).toBe(c.jid);
          expect(got[0]!.attrs.id).toBe(ids[i]);
          expect(got[0]!.getChild("stanza-id", "urn:xmpp:sid:0")).toBeTruthy(); // server's stanza-id kept
        }
      }
      // Counted at the proxy's upstream edge: the account session received each message exactly once.
      expect(roomStanzasLogged("message", "groupchat", ids)).toBe(5);
    });

    it("answers a later join from state: occupants, self-presence with the session's id, history, subject", async () => {
      const room = uniqueRoom(server.muc, "state");
      const bob = await direct("bob", "state");
      await createRoom(bob, room, "bob");
      await bob.send(xml("message", { to: room, type: "groupchat" }, xml("subject", {}, "the topic")));
      await bob.waitFor((el) => el.is("message") && el.getChildText("subject") === "the topic"); // the room applied it
      const first = await viaProxy("alice", "first");
      await join(first, room, "alice");
      // the first join streams the room's own subject through
      expect((await first.waitFor((el) => el.is("message") && el.getChild("subject") !== undefined)).getChildText("subject")).toBe("the topic");
      await groupchat(bob, room, "before second join");
      await first.waitFor((el) => el.getChildText("body") === "before second join");

      const second = await viaProxy("alice", "second");
      const joinId = randomUUID();
      const before = proxy.logs().filter((l) => l.msg === "room stanza").length;
      const self = await join(second, room, "alice", { id: joinId, history: { maxstanzas: "5" } });
      expect(self.attrs.id).toBe(joinId);
      expect(codes(self)).toContain("110");
      expect(codes(self)).not.toContain("201");
      const sub = await second.waitFor((el) => el.is("message") && el.getChild("subject") !== undefined);
      expect(sub.getChildText("subject")).toBe("the topic");
      // order: occupants before self-presence, history before subject
      const idx = (pred: (el: (typeof second.received)[number]) => boolean): number => second.received.findIndex(pred);
      const bobPres = idx((el) => el.is("presence") && el.attrs.from === `${room}/bob`);
      const selfIdx = idx((el) => isSelfPresence(el, room));
      const hist = idx((el) => el.getChildText("body") === "before second join");
      const subjIdx = idx((el) => el.getChild("subject") !== undefined);
      expect(bobPres).toBeGreaterThanOrEqual(0);
      expect(bobPres).toBeLessThan(selfIdx);
      expect(selfIdx).toBeLessThan(hist);
      expect(hist).toBeLessThan(subjIdx);
      expect(second.received[hist]!.getChild("delay", "urn:xmpp:delay")).toBeTruthy();
      // no upstream traffic for that join
      await sleep(200);
      expect(proxy.logs().filter((l) => l.msg === "room stanza").length).toBe(before);
    });

    it("sends a 210 self-presence when a session asks for another nick than the account's", async () => {
      const room = uniqueRoom(server.muc, "nick210");
      const bob = await direct("bob", "n210");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "a210");
      const b = await viaProxy("alice", "b210");
      await join(a, room, "alice");
      const self = await join(b, room, "alice-other");
      expect(self.attrs.from).toBe(`${room}/alice`);
      expect(codes(self)).toEqual(expect.arrayContaining(["110", "210"]));
    });

    it("passes a join error (409 nick conflict) to every waiting session and keeps no state", async () => {
      const room = uniqueRoom(server.muc, "conflict");
      const bob = await direct("bob", "conflict");
      await createRoom(bob, room, "taken");
      const a = await viaProxy("alice", "c1");
      const err = await join(a, room, "taken");
      expect(err.attrs.type).toBe("error");
      expect(err.getChild("error")?.getChild("conflict")).toBeTruthy();
      // not half-joined: a join with a free nick works afterwards
      const ok = await join(a, room, "alice");
      expect(isSelfPresence(ok, room)).toBe(true);
      // a room without a subject ends the join with an empty <subject/> (§7.2.16)
      const subj = await a.waitFor((el) => el.is("message") && el.getChild("subject") !== undefined);
      expect(subj.getChildText("subject")).toBe("");
      expect(subj.attrs.from).toBe(room);
    });

    it("routes a session's groupchat through the account: every session gets the reflection once, ids kept", async () => {
      const room = uniqueRoom(server.muc, "send");
      const bob = await direct("bob", "send");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "s1");
      const b = await viaProxy("alice", "s2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      const id = randomUUID();
      await a.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, "from alice"), xml("origin-id", { xmlns: "urn:xmpp:sid:0", id })));
      for (const c of [a, b]) {
        const m = await c.waitFor((el) => el.is("message") && el.attrs.id === id);
        expect(m.attrs.from).toBe(`${room}/alice`);
      }
      const atBob = await bob.waitFor((el) => el.is("message") && el.attrs.id === id);
      expect(atBob.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id).toBe(id);
      await sleep(200);
      expect(a.received.filter((el) => el.attrs.id === id)).toHaveLength(1);
      expect(b.received.filter((el) => el.attrs.id === id)).toHaveLength(1);
    });

    it("answers XEP-0410 self-ping from state", async () => {
      const room = uniqueRoom(server.muc, "ping");
      const bob = await direct("bob", "ping");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "p1");
      await join(a, room, "alice");
      const t0 = Date.now();
      const res = await a.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${room}/alice` }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      expect(res.attrs.type).toBe("result");
      expect(Date.now() - t0).toBeLessThan(1000);
      const other = await viaProxy("alice", "p2");
      await expect(other.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${room}/alice` }, xml("ping", { xmlns: "urn:xmpp:ping" }))))
        .rejects.toMatchObject({ condition: "not-acceptable" });
    });

    it("relays an IQ to an occupant through the account session and maps the reply back to the asker only", async () => {
      const room = uniqueRoom(server.muc, "iq");
      const bob = await direct("bob", "iq");
      await createRoom(bob, room, "bob");
      bob.xmpp.on("stanza", (el: (typeof bob.received)[number]) => {
        if (el.is("iq") && el.attrs.type === "get" && el.getChild("query", "jabber:iq:version")) {
          void bob.send(xml("iq", { type: "result", id: el.attrs.id, to: el.attrs.from },
            xml("query", { xmlns: "jabber:iq:version" }, xml("name", {}, "bob-client"), xml("version", {}, "1"))));
        }
      });
      const a = await viaProxy("alice", "i1");
      const b = await viaProxy("alice", "i2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      const id = randomUUID();
      const res = await a.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${room}/bob`, id }, xml("query", { xmlns: "jabber:iq:version" })));
      expect(res.attrs.id).toBe(id);
      expect(res.getChild("query")?.getChildText("name")).toBe("bob-client");
      // bob saw the request from the room occupant, with an id that is not the client's
      const req = bob.received.find((el) => el.is("iq") && el.getChild("query", "jabber:iq:version"));
      expect(req?.attrs.from).toBe(`${room}/alice`);
      await sleep(200);
      expect(b.received.some((el) => el.is("iq") && el.attrs.id === id)).toBe(false);
    });

    it("delivers PMs from occupants to every joined session, and a session's PM once to its recipient", async () => {
      const room = uniqueRoom(server.muc, "pm");
      const bob = await direct("bob", "pm");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "pm1");
      const b = await viaProxy("alice", "pm2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      const id = randomUUID();
      await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id }, xml("body", {}, "psst"), xml("x", { xmlns: NS_MUC_USER })));
      for (const c of [a, b]) expect((await c.waitFor((el) => el.attrs.id === id)).attrs.from).toBe(`${room}/bob`);
      const back = randomUUID();
      await a.send(xml("message", { to: `${room}/bob`, type: "chat", id: back }, xml("body", {}, "hi bob"), xml("x", { xmlns: NS_MUC_USER })));
      await bob.waitFor((el) => el.attrs.id === back);
      await sleep(300);
      expect(bob.received.filter((el) => el.attrs.id === back)).toHaveLength(1);
      expect(a.received.filter((el) => el.attrs.id === back)).toHaveLength(0);
      expect(b.received.filter((el) => el.attrs.id === back)).toHaveLength(0);
    });

    it("aggregates presence: the room sees the most available of the sessions, sent only on change", async () => {
      const room = uniqueRoom(server.muc, "presence");
      const bob = await direct("bob", "presence");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "pr1");
      const b = await viaProxy("alice", "pr2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      const fromAlice = (): ReturnType<typeof bob.received.filter> => bob.received.filter((el) => el.is("presence") && el.attrs.from === `${room}/alice`);
      await sleep(200);
      const n0 = fromAlice().length;
      await a.send(xml("presence", { to: `${room}/alice` }, xml("show", {}, "away")));
      await sleep(400);
      expect(fromAlice().length).toBe(n0); // b is still available: the aggregate did not change
      await b.send(xml("presence", { to: `${room}/alice` }, xml("show", {}, "xa")));
      await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "away");
    });

    it("leaves: a session's leave answers only it; the account leaves when the last session leaves", async () => {
      const room = uniqueRoom(server.muc, "leave");
      const bob = await direct("bob", "leave");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "l1");
      const b = await viaProxy("alice", "l2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      await a.send(xml("presence", { to: `${room}/alice`, type: "unavailable" }));
      const gone = await a.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" && isSelfPresence(el, room));
      expect(gone.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.role).toBe("none");
      await sleep(300);
      expect(bob.received.some((el) => el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
      expect(b.received.some((el) => el.attrs.type === "unavailable")).toBe(false);
      const id = await groupchat(bob, room, "only b");
      await b.waitFor((el) => el.attrs.id === id);
      await sleep(200);
      expect(a.received.some((el) => el.attrs.id === id)).toBe(false);
      await b.send(xml("presence", { to: `${room}/alice`, type: "unavailable" }));
      await b.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" && isSelfPresence(el, room));
      await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable");
    });

    it("keeps the account joined across a disconnect, and a rejoin with history since gets exactly what was missed", async () => {
      const room = uniqueRoom(server.muc, "mobile");
      const bob = await direct("bob", "mobile");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "m1");
      await join(a, room, "alice");
      const seenId = await groupchat(bob, room, "seen");
      await a.waitFor((el) => el.attrs.id === seenId);
      const since = new Date().toISOString();
      await sleep(50);
      await a.stop(); // unclean from the room's point of view: no unavailable to the room
      const missed = [await groupchat(bob, room, "missed 1"), await groupchat(bob, room, "missed 2")];
      await sleep(300);
      expect(bob.received.some((el) => el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
      const back = await viaProxy("alice", "m1-back");
      await join(back, room, "alice", { history: { since } });
      await back.waitFor((el) => el.attrs.id === missed[1]);
      await sleep(200);
      const bodies = back.received.filter((el) => el.is("message") && el.getChildText("body")).map((el) => el.getChildText("body"));
      expect(bodies).toEqual(["missed 1", "missed 2"]);
    });

    it("forwards a kick (307) to every session and clears the room, so a later join starts fresh", async () => {
      const room = uniqueRoom(server.muc, "kick");
      const bob = await direct("bob", "kick");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "k1");
      const b = await viaProxy("alice", "k2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      await bob.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_ADMIN }, xml("item", { nick: "alice", role: "none" }, xml("reason", {}, "test"))), room);
      for (const c of [a, b]) {
        const k = await c.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" && codes(el).includes("307"));
        expect(codes(k)).toContain("110");
      }
      const again = await join(a, room, "alice");
      expect(isSelfPresence(again, room)).toBe(true);
      await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === undefined &&
        bob.received.indexOf(el) > bob.received.findIndex((p) => codes(p).includes("307")));
    });

    it("moves the shared occupant on a nick change: every session gets the 303 sequence", async () => {
      const room = uniqueRoom(server.muc, "rename");
      const bob = await direct("bob", "rename");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "r1");
      const b = await viaProxy("alice", "r2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      await a.send(xml("presence", { to: `${room}/alicia` }));
      for (const c of [a, b]) {
        const out = await c.waitFor((el) => el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable" && codes(el).includes("303"));
        expect(out.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.nick).toBe("alicia");
        await c.waitFor((el) => el.attrs.from === `${room}/alicia` && el.is("presence") && el.attrs.type === undefined);
      }
      await bob.waitFor((el) => el.attrs.from === `${room}/alicia`);
    });

    it("forwards the room's own presence (ejabberd: bare room JID with caps) on first and later joins, as a direct client gets it", async () => {
      const room = uniqueRoom(server.muc, "roompres");
      const bob = await direct("bob", "roompres");
      await createRoom(bob, room, "bob");
      const fromBareRoom = (c: TestClient): Element[] => c.received.filter((el) => el.is("presence") && el.attrs.from === room);
      const beforeSelf = (c: TestClient): number => {
        const self = c.received.findIndex((el) => isSelfPresence(el, room));
        return c.received.slice(0, self).filter((el) => el.is("presence") && el.attrs.from === room).length;
      };
      const carol = await direct("carol", "roompres");
      await join(carol, room, "carol");
      const a = await viaProxy("alice", "rp1");
      await join(a, room, "alice");
      const b = await viaProxy("alice", "rp2");
      await join(b, room, "alice");
      await sleep(200);
      const expected = beforeSelf(carol);
      if (server.kind === "ejabberd") expect(expected).toBeGreaterThan(0); // the quirk this test is about
      else expect(expected).toBe(0);
      expect(beforeSelf(a)).toBe(expected);
      expect(beforeSelf(b)).toBe(expected);
      // ejabberd sends a new one when the room's configuration changes; sessions get it like carol
      const n = [carol, a, b].map((c) => fromBareRoom(c).length);
      await bob.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" },
        xml("field", { var: "FORM_TYPE" }, xml("value", {}, "http://jabber.org/protocol/muc#roomconfig")),
        xml("field", { var: "muc#roomconfig_roomname" }, xml("value", {}, "renamed")))), room);
      await sleep(400);
      const carolGot = fromBareRoom(carol).length - n[0]!;
      expect(fromBareRoom(a).length - n[1]!).toBe(carolGot);
      expect(fromBareRoom(b).length - n[2]!).toBe(carolGot);
    });

    it("forwards a ban (301) to every session; a later join gets the room's 403 with the session's id", async () => {
      const room = uniqueRoom(server.muc, "ban");
      const bob = await direct("bob", "ban");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "b1");
      const b = await viaProxy("alice", "b2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      await bob.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_ADMIN }, xml("item", { jid: "alice@localhost", affiliation: "outcast" }, xml("reason", {}, "test"))), room);
      for (const c of [a, b]) {
        const ban = await c.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" && codes(el).includes("301"));
        expect(codes(ban)).toContain("110");
        expect(ban.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.affiliation).toBe("outcast");
      }
      const id = randomUUID();
      const err = await join(b, room, "alice", { id });
      expect(err.attrs.type).toBe("error");
      expect(err.attrs.id).toBe(id);
      expect(err.getChild("error")?.getChild("forbidden")).toBeTruthy();
    });

    it("survives the loss of the account session: it reconnects and rejoins with history since, sessions see no leave and miss nothing", async () => {
      const room = uniqueRoom(server.muc, "drop");
      const bob = await direct("bob", "drop");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "d1");
      const b = await viaProxy("alice", "d2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      const before = await groupchat(bob, room, "before the drop");
      await a.waitFor((el) => el.attrs.id === before);
      await b.waitFor((el) => el.attrs.id === before);
      // the account session's full JID, as the room owner sees it
      await sleep(200);
      const real = String([...occupantsSeen(bob, room).values()].map((p) => p.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid)
        .find((j) => String(j).startsWith("alice@localhost/minimix-")));
      const resource = real.slice(real.indexOf("/") + 1);
      const onlineBefore = proxy.logs().filter((l) => l.msg === "account session online").length;
      // a direct login with the same resource makes the server replace (kick) the account session
      const thief = await connectClient({ port: server.port, username: "alice", password: "alicepass", resource });
      await thief.stop();
      await proxy.waitForLog((l) => l.msg === "account session lost");
      const missed = await groupchat(bob, room, "while the account session was away");
      await expect.poll(() => proxy.logs().filter((l) => l.msg === "account session online").length, { timeout: 10_000 }).toBeGreaterThan(onlineBefore);
      // the reconnect re-authenticated with the kept SCRAM secret, never a -PLUS mechanism
      const online = proxy.logs().filter((l) => l.msg === "account session online");
      expect(online.map((l) => l.mechanism)).toEqual(online.map(() => traits(server.kind).picked));
      for (const c of [a, b]) await c.waitFor((el) => el.attrs.id === missed, 10_000);
      const after = await groupchat(bob, room, "after the rejoin");
      for (const c of [a, b]) await c.waitFor((el) => el.attrs.id === after);
      await sleep(300);
      for (const c of [a, b]) {
        const bodies = c.received.filter((el) => el.is("message") && el.attrs.type === "groupchat" && el.getChildText("body")).map((el) => el.getChildText("body"));
        expect(bodies).toEqual(["before the drop", "while the account session was away", "after the rejoin"]);
        expect(c.received.some((el) => el.is("presence") && el.attrs.type === "unavailable" && el.attrs.from === `${room}/alice`)).toBe(false);
      }
      // the room saw the account's occupant come back with a new account-session resource
      const back = await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === undefined &&
        String(el.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid) !== real);
      expect(String(back.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid)).toMatch(/^alice@localhost\/minimix-/);
    });

    it("passes 401 (password-protected) and 407 (members-only) join errors through, and joins with the password", async () => {
      const locked = uniqueRoom(server.muc, "pw");
      const bob = await direct("bob", "pw");
      await createRoom(bob, locked, "bob", {
        "muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "s3cret",
      });
      const a = await viaProxy("alice", "pw");
      const id = randomUUID();
      const denied = await join(a, locked, "alice", { id });
      expect(denied.attrs.type).toBe("error");
      expect(denied.attrs.id).toBe(id);
      expect(denied.getChild("error")?.getChild("not-authorized")).toBeTruthy();
      const ok = await join(a, locked, "alice", { password: "s3cret" });
      expect(isSelfPresence(ok, locked)).toBe(true);

      const members = uniqueRoom(server.muc, "members");
      await createRoom(bob, members, "bob", { "muc#roomconfig_membersonly": "1" });
      const refused = await join(a, members, "alice");
      expect(refused.attrs.type).toBe("error");
      expect(refused.getChild("error")?.getChild("registration-required")).toBeTruthy();
    });

    it("forwards a room's destruction to every joined session and forgets the room", async () => {
      const room = uniqueRoom(server.muc, "destroy");
      const bob = await direct("bob", "destroy");
      await createRoom(bob, room, "bob");
      const a = await viaProxy("alice", "d1");
      const b = await viaProxy("alice", "d2");
      await join(a, room, "alice");
      await join(b, room, "alice");
      await bob.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_OWNER }, xml("destroy", {}, xml("reason", {}, "done"))), room);
      for (const c of [a, b]) {
        const gone = await c.waitFor((el) => el.is("presence") && el.attrs.type === "unavailable" &&
          el.getChild("x", NS_MUC_USER)?.getChild("destroy") !== undefined);
        expect(gone.attrs.from).toBe(`${room}/alice`);
      }
      // state is gone: a new join goes to the server again (and creates a fresh room)
      const again = await join(a, room, "alice");
      expect(isSelfPresence(again, room)).toBe(true);
    });

    it("never shows one account's room traffic to another account's session", async () => {
      // alice's rooms (alice through the proxy, bob straight on the server) and carol's own room,
      // which carol joins through the same proxy: carol's session does get room traffic, just not alice's
      const aliceRooms = [uniqueRoom(server.muc, "iso-alice"), uniqueRoom(server.muc, "iso-alice")];
      const carolRoom = uniqueRoom(server.muc, "iso-carol");
      const bob = await direct("bob", "iso");
      for (const r of [...aliceRooms, carolRoom]) await createRoom(bob, r, "bob");
      const c = await viaProxy("carol", "iso");
      await join(c, carolRoom, "carol");
      const a1 = await viaProxy("alice", "iso1");
      const a2 = await viaProxy("alice", "iso2");
      for (const r of aliceRooms) {
        await join(a1, r, "alice");
        await join(a2, r, "alice");
      }

      // Every kind of room traffic, each carrying `marker` in its text and its id. The proxy
      // rewrites `to` on every delivery, so `to` says nothing about where a stanza came from:
      // what carol receives is judged by its content and by its origin.
      const marker = `iso-${randomUUID()}`;
      let seq = 0;
      const mid = (): string => `${marker}-${++seq}`;
      for (const r of aliceRooms) {
        await bob.send(xml("message", { to: r, type: "groupchat", id: mid() }, xml("body", {}, `${marker} from bob`)));
        await a1.send(xml("message", { to: r, type: "groupchat", id: mid() }, xml("body", {}, `${marker} from alice`)));
        await bob.send(xml("message", { to: r, type: "groupchat", id: mid() }, xml("subject", {}, `${marker} subject`)));
        await bob.send(xml("presence", { to: `${r}/bob`, id: mid() }, xml("status", {}, `${marker} status`)));
        await bob.send(xml("message", { to: `${r}/alice`, type: "chat", id: mid() }, xml("body", {}, `${marker} private to alice`)));
        await a1.send(xml("message", { to: `${r}/bob`, type: "chat", id: mid() }, xml("body", {}, `${marker} private from alice`)));
      }
      const carolsId = await groupchat(bob, carolRoom, "for carol");

      // alice's sessions got the room traffic (so it did pass through the proxy), carol got her room's
      const fromRoom = (el: Element, rooms: string[]): boolean => rooms.includes(String(el.attrs.from ?? "").split("/")[0]!);
      for (const r of aliceRooms) {
        for (const s of [a1, a2]) {
          for (const text of ["from bob", "from alice", "private to alice"]) {
            await s.waitFor((el) => fromRoom(el, [r]) && el.getChildText("body") === `${marker} ${text}`);
          }
          await s.waitFor((el) => fromRoom(el, [r]) && el.getChildText("subject") === `${marker} subject`);
          await s.waitFor((el) => fromRoom(el, [r]) && el.is("presence") && el.getChildText("status") === `${marker} status`);
        }
      }
      await c.waitFor((el) => el.attrs.id === carolsId && fromRoom(el, [carolRoom]));
      await sleep(500); // anything that would leak to carol has had time to arrive

      // over everything carol's client received: nothing with alice's content, nothing from alice's rooms
      const withMarker = (s: TestClient): string[] => s.received.filter((el) => el.toString().includes(marker)).map(String);
      const fromAliceRooms = (s: TestClient): string[] => s.received.filter((el) => fromRoom(el, aliceRooms)).map(String);
      expect(withMarker(c)).toEqual([]);
      expect(fromAliceRooms(c)).toEqual([]);
      // the same counts on alice's session are not empty: they do see what they look for
      expect(withMarker(a1).length).toBeGreaterThanOrEqual(aliceRooms.length * 5);
      expect(fromAliceRooms(a1).length).toBeGreaterThanOrEqual(aliceRooms.length * 5);
      expect(c.received.filter((el) => fromRoom(el, [carolRoom])).length).toBeGreaterThan(0);
    });
  });
});
