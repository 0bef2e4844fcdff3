import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import type { Element } from "ltx";
import { MAX_HELD_WHILE_WAITING } from "./room-state.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, TABLET, groupchat, join, joinedRoom, kinds, occupant, selfPresence, sent, subject, upstream, x } from "./test-kit.js";

const OTHER_ROOM = "other@conference.example.org";

describe("session → room", () => {
  it("groupchat from a joined session goes via the account session, id and origin-id kept, from removed", () => {
    const a = joinedRoom();
    const msg = x(`<message type='groupchat' to='${ROOM}' id='c1' from='${PHONE}'><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`);
    const acts = a.fromSession(PHONE, msg, 2000);
    const [up] = upstream(acts);
    expect(kinds(acts)).toEqual(["toRoomUpstream"]);
    expect(up?.attrs).toEqual({ type: "groupchat", to: ROOM, id: "c1" });
    expect(up?.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id).toBe("o1");
  });

  it("the room's reflection is the echo every joined session receives, once", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    a.fromSession(PHONE, x(`<message type='groupchat' to='${ROOM}' id='c1'><body>hi</body></message>`), 2000);
    const echo = a.fromRoom(groupchat(ROOM, "alice", ACCOUNT_SESSION, "hi", { id: "c1" }), 2001);
    expect(sent(echo, PHONE)).toHaveLength(1);
    expect(sent(echo, LAPTOP)).toHaveLength(1);
    expect(echo).toHaveLength(2);
  });

  it("PMs to an occupant go via the account session and are not echoed back", () => {
    const a = joinedRoom();
    const acts = a.fromSession(PHONE, x(`<message type='chat' to='${ROOM}/bob' id='p1'><body>psst</body></message>`), 2000);
    expect(upstream(acts)[0]?.attrs).toMatchObject({ to: `${ROOM}/bob`, type: "chat", id: "p1" });
    expect(sent(acts, PHONE)).toEqual([]);
  });

  it("error stanzas from a joined session are never sent to the room", () => {
    const a = joinedRoom();
    expect(a.fromSession(PHONE, x(`<message type='error' to='${ROOM}/bob'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`), 2000)).toEqual([]);
    expect(a.fromSession(PHONE, x(`<presence type='error' to='${ROOM}'/>`), 2000)).toEqual([]);
    expect(a.fromSession(PHONE, x(`<iq type='error' id='zz' to='${ROOM}/bob'/>`), 2000)).toEqual([{ kind: "passthrough" }]); // own stream, not the occupant
  });

  it("a session that has not joined passes through untouched, even in a room the account is in", () => {
    const a = joinedRoom();
    for (const s of [
      x(`<message type='groupchat' to='${ROOM}'><body>x</body></message>`),
      x(`<message type='chat' to='${ROOM}/bob'><body>x</body></message>`),
      x(`<iq type='get' id='d' to='${ROOM}/bob'><query xmlns='jabber:iq:version'/></iq>`),
      x(`<presence to='${ROOM}/alice'/>`),
      x(`<presence type='unavailable' to='${ROOM}/alice'/>`),
      x(`<message type='error' to='${ROOM}'/>`),
      x(`<message type='groupchat' to='${OTHER_ROOM}'><body>x</body></message>`),
      x(`<message type='chat' to='bob@example.org'><body>x</body></message>`),
      x(`<iq type='get' id='r' ><query xmlns='jabber:iq:roster'/></iq>`),
    ]) {
      expect(a.fromSession(TABLET, s, 2000)).toEqual([{ kind: "passthrough" }]);
    }
  });

  describe("messages from a session whose join is pending (§6.1: held until it is an occupant)", () => {
    /** PHONE's join sent, the account session up: the account's join is on its way upstream. */
    function pending(): RoomMachine {
      const a = new RoomMachine(ALICE);
      a.setAccountSessionJid(ACCOUNT_SESSION);
      a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
      a.accountSessionUp(1000);
      return a;
    }
    const gc = (id: string, body = id): Element => x(`<message type='groupchat' to='${ROOM}' id='${id}'><body>${body}</body></message>`);

    it("held, then sent as the account's occupant in order right after the session's self-presence", () => {
      const a = pending();
      expect(a.fromSession(PHONE, gc("m1"), 1001)).toEqual([]);
      expect(a.fromSession(PHONE, x(`<message type='chat' to='${ROOM}/bob' id='p1'><body>psst</body></message>`), 1001)).toEqual([]);
      expect(a.fromSession(PHONE, x(`<message type='error' to='${ROOM}'/>`), 1001)).toEqual([]); // never to the room
      const acts = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
      expect(sent(acts, PHONE)[0]?.attrs).toMatchObject({ id: "j1", from: `${ROOM}/alice` });
      expect(upstream(acts).map((m) => m.attrs.id)).toEqual(["m1", "p1"]);
      const firstUp = acts.findIndex((x) => x.kind === "toRoomUpstream");
      const self = acts.findIndex((x) => x.kind === "toSession" && x.session === PHONE);
      expect(self).toBeLessThan(firstUp);
      // and the room's reflection of m1 is the echo, as for any message of a joined session
      expect(sent(a.fromRoom(groupchat(ROOM, "alice", ACCOUNT_SESSION, "m1", { id: "m1" }), 1003), PHONE)).toHaveLength(1);
    });

    it("join, message, leave in one breath: the message goes, then the account leaves, as a server takes them in stream order", () => {
      const a = pending();
      a.fromSession(PHONE, gc("m1"), 1001);
      expect(a.fromSession(PHONE, x(`<presence type='unavailable' to='${ROOM}/alice' id='l1'/>`), 1001)).toEqual([]);
      const acts = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
      const ups = upstream(acts);
      expect(ups[0]?.attrs.id).toBe("m1");
      expect(ups[1]?.attrs).toMatchObject({ type: "unavailable", to: `${ROOM}/alice` });
      const toPhone = sent(acts, PHONE);
      expect(toPhone.map((p) => p.attrs.type)).toEqual([undefined, "unavailable"]); // joined, then left
      expect(toPhone[1]?.attrs.id).toBe("l1");
      expect(a.hasState()).toBe(false);
    });

    it("a refused join: each held message gets the room's not-acceptable with its id; nothing reaches the room", () => {
      const a = pending();
      a.fromSession(PHONE, gc("m1"), 1001);
      const err = x(`<presence from='${ROOM}/alice' to='${ACCOUNT_SESSION}' type='error' id='mmx-join-1'><x xmlns='http://jabber.org/protocol/muc'/><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
      const acts = a.fromRoom(err, 1002);
      const [joinErr, bounce] = sent(acts, PHONE);
      expect(joinErr?.attrs).toMatchObject({ type: "error", id: "j1" });
      expect(bounce?.attrs).toMatchObject({ type: "error", id: "m1", from: ROOM, to: PHONE });
      expect(bounce?.getChild("error")?.getChild("not-acceptable")).toBeDefined();
      expect(upstream(acts)).toEqual([]);
    });

    it("a join that times out bounces them too", () => {
      const a = new RoomMachine(ALICE, { joinTimeoutMs: 5000 });
      a.setAccountSessionJid(ACCOUNT_SESSION);
      a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
      a.accountSessionUp(1000);
      a.fromSession(PHONE, gc("m1"), 1001);
      const acts = a.tick(6001);
      expect(sent(acts, PHONE).map((m) => [m.name, m.attrs.id])).toEqual([["presence", "j1"], ["message", "m1"]]);
    });

    it(`at most ${MAX_HELD_WHILE_WAITING} are held; the next is refused with resource-constraint (wait)`, () => {
      const a = pending();
      for (let i = 0; i < MAX_HELD_WHILE_WAITING; i++) expect(a.fromSession(PHONE, gc(`m${i}`), 1001)).toEqual([]);
      const acts = a.fromSession(PHONE, gc("over"), 1001);
      expect(acts[0]).toEqual({ kind: "stanzaRefused", room: ROOM, code: "HELD_WHILE_JOINING_FULL" });
      expect(sent(acts, PHONE)[0]?.getChild("error")?.getChild("resource-constraint")).toBeDefined();
      expect(upstream(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002))).toHaveLength(MAX_HELD_WHILE_WAITING);
    });

    it("a session that waits on a joined room's rebuild gets its messages sent once it is answered from state", () => {
      const a = joinedRoom();
      a.accountSessionDown(2000);
      a.accountSessionUp(2001);
      a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 2002);
      expect(a.fromSession(LAPTOP, gc("m2"), 2003)).toEqual([]);
      a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { role: "moderator", affiliation: "owner" }), 2004);
      a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 2005);
      const acts = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Hello"), 2006);
      expect(sent(acts, LAPTOP).some((p) => p.name === "presence" && p.attrs.id === "j2")).toBe(true);
      expect(upstream(acts).map((m) => m.attrs.id)).toEqual(["m2"]);
    });
  });

  it("IQs to the bare room (disco, MAM, config, affiliations) use the session's own stream", () => {
    const a = joinedRoom();
    for (const q of [
      "<query xmlns='http://jabber.org/protocol/disco#info'/>",
      "<query xmlns='urn:xmpp:mam:2'/>",
      "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
      "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>",
    ]) {
      expect(a.fromSession(PHONE, x(`<iq type='get' id='q' to='${ROOM}'>${q}</iq>`), 2000)).toEqual([{ kind: "passthrough" }]);
    }
  });

  it("role changes (§8 kick/voice) need the occupant: via the account session, id remapped", () => {
    const a = joinedRoom();
    const acts = a.fromSession(PHONE, x(`<iq type='set' id='k1' to='${ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='bob' role='none'/></query></iq>`), 2000);
    const [up] = upstream(acts);
    expect(up?.attrs.to).toBe(ROOM);
    expect(up?.attrs.id).not.toBe("k1");
    const res = a.fromRoom(x(`<iq type='result' id='${String(up?.attrs.id)}' from='${ROOM}' to='${ACCOUNT_SESSION}'/>`), 2001);
    expect(sent(res, PHONE)[0]?.attrs).toEqual({ type: "result", id: "k1", from: ROOM, to: PHONE });
  });

  it("knowsRoom tells the proxy which bare JIDs are rooms of this account", () => {
    const a = joinedRoom();
    expect(a.knowsRoom(ROOM)).toBe(true);
    expect(a.knowsRoom(ROOM.toUpperCase())).toBe(true);
    expect(a.knowsRoom(OTHER_ROOM)).toBe(false);
    expect(a.knowsRoom("")).toBe(false);
  });

  it("stanzas of a session of another account are never routed through this account", () => {
    const a = joinedRoom();
    expect(a.fromSession("mallory@example.org/x", x(`<message type='groupchat' to='${ROOM}'><body>x</body></message>`), 2000)).toEqual([{ kind: "passthrough" }]);
    expect(a.fromSession("mallory@example.org/x", join(ROOM, "alice"), 2000)).toEqual([{ kind: "passthrough" }]);
    expect(a.rooms()[0]?.sessions).toEqual([PHONE]);
  });
});

describe("IQ id remapping", () => {
  it("an IQ to an occupant goes upstream with a unique id; only the asking session gets the reply, with its id and to", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    const q1 = upstream(a.fromSession(PHONE, x(`<iq type='get' id='same' to='${ROOM}/bob'><vCard xmlns='vcard-temp'/></iq>`), 2000))[0]!;
    const q2 = upstream(a.fromSession(LAPTOP, x(`<iq type='get' id='same' to='${ROOM}/bob'><vCard xmlns='vcard-temp'/></iq>`), 2000))[0]!;
    expect(q1.attrs.id).not.toBe(q2.attrs.id);
    expect(q1.attrs.from).toBeUndefined();
    const r2 = a.fromRoom(x(`<iq type='result' id='${String(q2.attrs.id)}' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></iq>`), 2001);
    expect(kinds(r2)).toEqual(["toSession"]);
    expect(sent(r2, LAPTOP)[0]?.attrs).toEqual({ type: "result", id: "same", from: `${ROOM}/bob`, to: LAPTOP });
    expect(sent(r2, LAPTOP)[0]?.getChild("vCard", "vcard-temp")?.getChildText("FN")).toBe("Bob");
    const e1 = a.fromRoom(x(`<iq type='error' id='${String(q1.attrs.id)}' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`), 2002);
    expect(sent(e1, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "same", to: PHONE });
    // a second reply with the same id finds nothing
    expect(a.fromRoom(x(`<iq type='result' id='${String(q1.attrs.id)}' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'/>`), 2003)).toEqual([]);
  });

  it("a reply from someone else than asked is dropped (spoofing guard)", () => {
    const a = joinedRoom();
    const q = upstream(a.fromSession(PHONE, x(`<iq type='get' id='v' to='${ROOM}/bob'><query xmlns='jabber:iq:version'/></iq>`), 2000))[0]!;
    expect(a.fromRoom(x(`<iq type='result' id='${String(q.attrs.id)}' from='${ROOM}/eve' to='${ACCOUNT_SESSION}'/>`), 2001)).toEqual([]);
  });

  it("unanswered IQs time out on tick with remote-server-timeout to the asker", () => {
    const a = joinedRoom({ iqTimeoutMs: 1000 });
    a.fromSession(PHONE, x(`<iq type='get' id='v' to='${ROOM}/bob'><query xmlns='jabber:iq:version'/></iq>`), 2000);
    expect(a.tick(2500)).toEqual([]);
    const t = a.tick(3000);
    expect(sent(t, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "v", from: `${ROOM}/bob` });
    expect(sent(t, PHONE)[0]?.getChild("error")?.getChild("remote-server-timeout")).toBeDefined();
  });

  it("an occupant's IQ to our occupant is relayed to one joined session and its reply goes back with the original id", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    const req = x(`<iq type='get' id='bobs' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><query xmlns='jabber:iq:version'/></iq>`);
    const acts = a.fromRoom(req, 2000);
    expect(acts).toHaveLength(1);
    const act = acts[0]!;
    if (act.kind !== "toSession") throw new Error("expected toSession");
    expect(act.stanza.attrs.to).toBe(act.session);
    expect(act.stanza.attrs.id).not.toBe("bobs");
    const reply = x(`<iq type='result' id='${String(act.stanza.attrs.id)}' to='${ROOM}/bob'><query xmlns='jabber:iq:version'><name>c</name></query></iq>`);
    const back = a.fromSession(act.session, reply, 2001);
    expect(upstream(back)[0]?.attrs).toEqual({ type: "result", id: "bobs", to: `${ROOM}/bob` });
  });

  it("occupant IQ with no session joined: service-unavailable from the account session", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 1500);
    const acts = a.fromRoom(x(`<iq type='get' id='q' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><query xmlns='jabber:iq:version'/></iq>`), 2000);
    expect(upstream(acts)[0]?.attrs).toMatchObject({ type: "error", id: "q", to: `${ROOM}/bob` });
  });

  it("a session that goes away with a relayed IQ pending: the occupant gets an error", () => {
    const a = joinedRoom();
    a.fromRoom(x(`<iq type='get' id='q' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><query xmlns='jabber:iq:version'/></iq>`), 2000);
    const gone = a.sessionGone(PHONE, 2001);
    expect(upstream(gone).find((s) => s.name === "iq")?.attrs).toMatchObject({ type: "error", id: "q", to: `${ROOM}/bob` });
  });

  it("pings to the account's occupant are answered by the account session itself (XEP-0199)", () => {
    const a = joinedRoom();
    const acts = a.fromRoom(x(`<iq type='get' id='p' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><ping xmlns='urn:xmpp:ping'/></iq>`), 2000);
    expect(kinds(acts)).toEqual(["toRoomUpstream"]);
    expect(upstream(acts)[0]?.attrs).toEqual({ type: "result", id: "p", to: `${ROOM}/bob` });
  });
});

describe("self-ping (XEP-0410)", () => {
  const ping = (to: string) => x(`<iq type='get' id='sp' to='${to}'><ping xmlns='urn:xmpp:ping'/></iq>`);

  it("to room/ownNick from a joined session: result from state, nothing upstream", () => {
    const a = joinedRoom();
    const acts = a.fromSession(PHONE, ping(`${ROOM}/alice`), 2000);
    expect(acts).toEqual([{ kind: "toSession", session: PHONE, stanza: expect.anything() }]);
    expect(sent(acts, PHONE)[0]?.attrs).toEqual({ type: "result", id: "sp", from: `${ROOM}/alice`, to: PHONE });
  });

  it("from a non-joined session to a known room: not-acceptable (cancel), from the pinged JID", () => {
    const a = joinedRoom();
    const r = sent(a.fromSession(TABLET, ping(`${ROOM}/alice`), 2000), TABLET)[0]!;
    expect(r.attrs).toEqual({ type: "error", id: "sp", from: `${ROOM}/alice`, to: TABLET });
    const err = r.getChild("error")!;
    expect(err.attrs.type).toBe("cancel");
    expect(err.getChild("not-acceptable", "urn:ietf:params:xml:ns:xmpp-stanzas")).toBeDefined();
  });

  it("to an unknown room: passthrough (the room answers itself)", () => {
    const a = joinedRoom();
    expect(a.fromSession(PHONE, ping(`${OTHER_ROOM}/alice`), 2000)).toEqual([{ kind: "passthrough" }]);
  });

  it("to another occupant: a normal remapped IQ", () => {
    const a = joinedRoom();
    const up = upstream(a.fromSession(PHONE, ping(`${ROOM}/bob`), 2000));
    expect(up[0]?.attrs.to).toBe(`${ROOM}/bob`);
    expect(up[0]?.attrs.id).not.toBe("sp");
  });

  it("after the account's nick changed, the new nick is the own nick", () => {
    const a = joinedRoom();
    a.fromRoom(occupant(ROOM, "alice", ACCOUNT_SESSION, { type: "unavailable", codes: ["303", "110"], itemNick: "ally" }), 2000);
    a.fromRoom(occupant(ROOM, "ally", ACCOUNT_SESSION, { codes: ["110"] }), 2001);
    expect(sent(a.fromSession(PHONE, ping(`${ROOM}/ally`), 2002), PHONE)[0]?.attrs.type).toBe("result");
  });
});
