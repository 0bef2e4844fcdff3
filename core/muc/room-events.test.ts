import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, TABLET, codes, groupchat, join, joinedRoom, kinds, occupant, selfPresence, sent, subject, upstream, x } from "./test-kit.js";

function twoSessions(): RoomMachine {
  const a = joinedRoom();
  a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
  return a;
}

describe("room → sessions fan-out", () => {
  it("a groupchat message reaches every joined session once, only `to` changed", () => {
    const a = twoSessions();
    const m = x(
      `<message type='groupchat' from='${ROOM}/bob' to='${ACCOUNT_SESSION}' id='b1'><body>hey</body><stanza-id xmlns='urn:xmpp:sid:0' by='${ROOM}' id='s1'/><markable xmlns='urn:xmpp:chat-markers:0'/></message>`,
    );
    const acts = a.fromRoom(m, 2000);
    expect(acts).toHaveLength(2);
    for (const s of [PHONE, LAPTOP]) {
      const got = sent(acts, s)[0]!;
      const expected = x(m.toString());
      expected.attrs.to = s;
      expect(got.toString()).toBe(expected.toString());
    }
    expect(sent(acts, TABLET)).toEqual([]);
    expect(a.rooms()[0]?.buffered).toBe(1);
  });

  it("occupant presences update the list and fan out; leaves and kicks of others too", () => {
    const a = twoSessions();
    const joinCarol = a.fromRoom(occupant(ROOM, "carol", ACCOUNT_SESSION), 2000);
    expect(joinCarol).toHaveLength(2);
    expect(a.rooms()[0]?.occupants).toBe(2);
    const kicked = a.fromRoom(occupant(ROOM, "carol", ACCOUNT_SESSION, { type: "unavailable", role: "none", codes: ["307"] }), 2001);
    expect(codes(sent(kicked, PHONE)[0]!)).toEqual(["307"]);
    expect(a.rooms()[0]?.occupants).toBe(1);
    expect(a.hasState()).toBe(true);
    const banned = a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { type: "unavailable", role: "none", affiliation: "outcast", codes: ["301"] }), 2002);
    expect(sent(banned, LAPTOP)).toHaveLength(1);
    expect(a.rooms()[0]).toMatchObject({ occupants: 0, sessions: [PHONE, LAPTOP] });
  });

  it("another occupant's rename (303 then the new nick) updates the list", () => {
    const a = twoSessions();
    const r1 = a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { type: "unavailable", codes: ["303"], itemNick: "robert" }), 2000);
    const r2 = a.fromRoom(occupant(ROOM, "robert", ACCOUNT_SESSION), 2001);
    expect(r1).toHaveLength(2);
    expect(r2).toHaveLength(2);
    expect(a.rooms()[0]?.occupants).toBe(1);
    const replay = sent(a.fromSession(TABLET, join(ROOM, "alice"), 2002), TABLET);
    expect(replay[0]?.attrs.from).toBe(`${ROOM}/robert`);
  });

  it("subject changes are stored and fanned out", () => {
    const a = twoSessions();
    const acts = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "New"), 2000);
    expect(acts).toHaveLength(2);
    expect(a.rooms()[0]?.subject).toBe("New");
  });

  it("PMs from occupants (chat from room/nick) reach every joined session", () => {
    const a = twoSessions();
    const acts = a.fromRoom(x(`<message type='chat' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`), 2000);
    expect(sent(acts, PHONE)).toHaveLength(1);
    expect(sent(acts, LAPTOP)).toHaveLength(1);
    expect(a.rooms()[0]?.buffered).toBe(0); // PMs are not room history
  });

  it("a bounced message goes back to its sender only", () => {
    const a = twoSessions();
    a.fromSession(LAPTOP, x(`<message type='groupchat' to='${ROOM}' id='m9'><body>x</body></message>`), 2000);
    const acts = a.fromRoom(x(`<message type='error' id='m9' from='${ROOM}' to='${ACCOUNT_SESSION}'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`), 2001);
    expect(kinds(acts)).toEqual(["toSession"]);
    expect(sent(acts, LAPTOP)).toHaveLength(1);
  });

  it("stanzas not addressed to this account (or to another resource than the account session) are dropped", () => {
    const a = twoSessions();
    expect(a.fromRoom(groupchat(ROOM, "bob", "bob@example.org/x", "leak?"), 2000)).toEqual([]);
    expect(a.fromRoom(groupchat(ROOM, "bob", `${ALICE}/phone`, "leak?"), 2000)).toEqual([]);
    expect(a.handles(groupchat(ROOM, "bob", "bob@example.org/x", "leak?"))).toBe(false);
    expect(a.handles(groupchat(ROOM, "bob", ACCOUNT_SESSION, "ok"))).toBe(true);
    expect(a.handles(groupchat("unknown@conference.example.org", "bob", ACCOUNT_SESSION, "no"))).toBe(false);
  });

  it("the history buffer is bounded", () => {
    const a = joinedRoom({ historyLimit: 3 });
    for (let i = 0; i < 10; i++) a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, `m${i}`), 2000 + i);
    expect(a.rooms()[0]?.buffered).toBe(3);
  });
});

describe("removal of the account's occupant (§8-§10)", () => {
  const cases: Array<[string, string]> = [
    ["kick", "<status code='307'/>"],
    ["ban", "<status code='301'/>"],
    ["affiliation change", "<status code='321'/>"],
    ["members-only", "<status code='322'/>"],
    ["technical", "<status code='333'/>"],
    ["destroy", `<destroy jid='new@conference.example.org'><reason>moved</reason></destroy>`],
  ];
  for (const [name, extra] of cases) {
    it(`${name}: forwarded to every joined session, room state cleared, a later join starts fresh`, () => {
      const a = twoSessions();
      const removal = x(
        `<presence type='unavailable' from='${ROOM}/alice' to='${ACCOUNT_SESSION}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>${extra}<status code='110'/></x></presence>`,
      );
      const acts = a.fromRoom(removal, 2000);
      expect(sent(acts, PHONE)).toHaveLength(1);
      expect(sent(acts, LAPTOP)).toHaveLength(1);
      expect(sent(acts, PHONE)[0]?.toString()).toContain(extra.slice(0, 10));
      expect(kinds(acts)).toContain("closeAccountSession");
      expect(a.hasState()).toBe(false);
      expect(a.rooms()).toEqual([]);
      // later traffic from the room is ignored, a new join goes upstream again
      expect(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "late"), 2001)).toEqual([]);
      expect(kinds(a.fromSession(PHONE, join(ROOM, "alice"), 2002))).toEqual(["openAccountSession", "toRoomUpstream"]);
    });
  }

  it("a removal while sessions wait on a rejoin reaches the waiting ones with their ids", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.accountSessionUp(1000);
    const acts = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["307"], { type: "unavailable", role: "none" }), 1001);
    expect(sent(acts, PHONE)[0]?.attrs.id).toBe("j1");
    expect(a.hasState()).toBe(false);
  });
});

describe("nick change by one session (§7.6)", () => {
  it("goes upstream; the 303 sequence reaches every session; the requester gets its id back", () => {
    const a = twoSessions();
    const acts = a.fromSession(PHONE, x(`<presence to='${ROOM}/ally' id='n1'/>`), 2000);
    expect(upstream(acts)[0]?.attrs).toMatchObject({ to: `${ROOM}/ally`, id: "n1" });
    const un = a.fromRoom(occupant(ROOM, "alice", ACCOUNT_SESSION, { type: "unavailable", codes: ["303", "110"], itemNick: "ally" }), 2001);
    expect(sent(un, PHONE)).toHaveLength(1);
    expect(sent(un, LAPTOP)).toHaveLength(1);
    expect(a.hasState()).toBe(true); // 303 is not a removal
    const av = a.fromRoom(occupant(ROOM, "ally", ACCOUNT_SESSION, { codes: ["110"] }), 2002);
    expect(sent(av, PHONE)[0]?.attrs.id).toBe("n1");
    expect(sent(av, LAPTOP)[0]?.attrs.id).toBeUndefined();
    expect(a.rooms()[0]?.nick).toBe("ally");
    // later joins are told the new nick
    const replay = sent(a.fromSession(TABLET, join(ROOM, "alice"), 2003), TABLET);
    const self = replay.find((s) => codes(s).includes("110"))!;
    expect(self.attrs.from).toBe(`${ROOM}/ally`);
    expect(codes(self)).toContain("210");
  });

  it("a refused nick change (409) goes to the requester only", () => {
    const a = twoSessions();
    a.fromSession(PHONE, x(`<presence to='${ROOM}/bob' id='n2'/>`), 2000);
    const err = a.fromRoom(x(`<presence type='error' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), 2001);
    expect(kinds(err)).toEqual(["toSession"]);
    expect(sent(err, PHONE)[0]?.attrs).toMatchObject({ id: "n2", type: "error" });
    expect(a.rooms()[0]).toMatchObject({ nick: "alice", sessions: [PHONE, LAPTOP] });
  });
});

describe("the room's own presence from the bare room JID (ejabberd: room caps)", () => {
  const caps = (ver: string, id = "r1"): ReturnType<typeof x> =>
    x(`<presence from='${ROOM}' to='${ACCOUNT_SESSION}' id='${id}'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://www.process-one.net/en/ejabberd/' ver='${ver}'/></presence>`);

  it("before the occupant list: reaches the waiting session, and the join completes as usual", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.accountSessionUp(1000);
    const room = a.fromRoom(caps("v1"), 1001);
    expect(sent(room, PHONE).map((s) => s.attrs)).toEqual([{ from: ROOM, to: PHONE, id: "r1" }]);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1002);
    const self = sent(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["100"]), 1003), PHONE);
    expect(self).toHaveLength(1);
    expect(self[0]?.attrs.id).toBe("j1");
    expect(a.rooms()[0]).toMatchObject({ state: "joined", sessions: [PHONE], occupants: 1 });
  });

  it("is replayed first to a later join, and is not counted as an occupant", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(caps("v1"), 1001);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1002);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1003);
    a.fromRoom(caps("v2", "r2"), 1004); // config changed: fanned out live, and the replay has the new one
    const replay = sent(a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1005), LAPTOP);
    expect(replay.map((s) => s.attrs.from)).toEqual([ROOM, `${ROOM}/bob`, `${ROOM}/alice`]);
    expect(replay[0]?.getChild("c")?.attrs.ver).toBe("v2");
    expect(replay[0]?.attrs.to).toBe(LAPTOP);
    expect(a.rooms()[0]?.occupants).toBe(1);
  });

  it("a config change reaches every joined session; a rejoin repeats it only when it changed", () => {
    const a = twoSessions();
    const live = a.fromRoom(caps("v1"), 2000);
    expect(sent(live, PHONE)).toHaveLength(1);
    expect(sent(live, LAPTOP)).toHaveLength(1);
    a.accountSessionDown(2001);
    a.accountSessionUp(2002);
    expect(a.fromRoom(caps("v1", "other-id"), 2003)).toEqual([]); // same content, new id: not repeated
    expect(sent(a.fromRoom(caps("v3"), 2004), PHONE)).toHaveLength(1);
  });

  it("an unavailable or error presence from the bare room is not stored or fanned out", () => {
    const a = twoSessions();
    expect(a.fromRoom(x(`<presence type='unavailable' from='${ROOM}' to='${ACCOUNT_SESSION}'/>`), 2000)).toEqual([]);
    const replay = sent(a.fromSession(TABLET, join(ROOM, "alice"), 2001), TABLET);
    expect(replay[0]?.attrs.from).toBe(`${ROOM}/bob`);
  });
});
