import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import {
  ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, TABLET, codes, delayStamp, groupchat, iso, join, joinedRoom, kinds, occupant,
  selfPresence, sent, subject, upstream, x,
} from "./test-kit.js";

function fresh(): RoomMachine {
  const a = new RoomMachine(ALICE);
  a.setAccountSessionJid(ACCOUNT_SESSION);
  return a;
}

describe("first join (XEP-0045 §7.2)", () => {
  it("opens the account session and sends one join with the session's nick and password, asking the history the buffer holds", () => {
    const a = fresh();
    const acts = a.fromSession(PHONE, join(ROOM, "alice", { id: "j1", password: "s3cret", history: "<history maxstanzas='5'/>", show: "away" }), 1000);
    expect(kinds(acts)).toEqual(["openAccountSession", "toRoomUpstream"]);
    const [j] = upstream(acts);
    expect(j?.attrs.to).toBe(`${ROOM}/alice`);
    expect(j?.attrs.from).toBeUndefined();
    expect(j?.attrs.id).not.toBe("j1"); // our own id upstream; the session's id is restored on replies
    const mx = j?.getChild("x", "http://jabber.org/protocol/muc");
    expect(mx?.getChildText("password")).toBe("s3cret");
    // issue 10 §3: the account's own request (--room-history), not the first session's
    expect(mx?.getChildren("history")).toHaveLength(1);
    expect(mx?.getChild("history")?.attrs).toEqual({ maxstanzas: "200" });
    expect(j?.getChildText("show")).toBe("away");
    expect(a.rooms()[0]).toMatchObject({ room: ROOM, nick: "alice", state: "joining", waiting: [PHONE], sessions: [] });
  });

  it("does not open the account session again when it is already up", () => {
    const a = fresh();
    a.accountSessionUp(0);
    const acts = a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    expect(kinds(acts)).toEqual(["toRoomUpstream"]);
    // a second room: still no open
    expect(kinds(a.fromSession(PHONE, join("other@conference.example.org", "alice"), 1001))).toEqual(["toRoomUpstream"]);
  });

  it("a queued first join is not sent again when the account session comes up", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    expect(a.accountSessionUp(1001)).toEqual([]);
  });

  it("sessions joining while the join is pending wait (no second upstream join)", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    const acts = a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1001);
    expect(acts).toEqual([]);
    expect(a.rooms()[0]?.waiting).toEqual([PHONE, LAPTOP]);
  });

  it("fans the join's stanzas to every waiting session in order, each self-presence with its own id", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1000);
    a.accountSessionUp(1000);
    const occ = a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1001);
    expect(sent(occ, PHONE)[0]?.attrs).toMatchObject({ from: `${ROOM}/bob`, to: PHONE });
    expect(sent(occ, LAPTOP)[0]?.attrs).toMatchObject({ from: `${ROOM}/bob`, to: LAPTOP });
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["201"]), 1002);
    const p = sent(self, PHONE)[0];
    const l = sent(self, LAPTOP)[0];
    expect(p?.attrs).toMatchObject({ to: PHONE, id: "j1", from: `${ROOM}/alice` });
    expect(l?.attrs).toMatchObject({ to: LAPTOP, id: "j2" });
    expect(codes(p!)).toEqual(expect.arrayContaining(["110", "201"])); // the fresh join did create the room
    expect(codes(p!)).not.toContain("210");
    // the room's history is held until the subject ends it, then each session gets its slice first
    const hist = a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "old", { stamp: "2024-01-01T00:00:00Z" }), 1003);
    expect(hist).toEqual([]);
    const subj = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Topic"), 1004);
    for (const s of [PHONE, LAPTOP]) {
      const got = sent(subj, s);
      expect(got).toHaveLength(2);
      expect(got[0]?.getChildText("body")).toBe("old");
      expect(delayStamp(got[0]!)).toBe("2024-01-01T00:00:00Z");
      expect(got[1]?.getChildText("subject")).toBe("Topic");
    }
    expect(a.rooms()[0]).toMatchObject({ state: "joined", sessions: [PHONE, LAPTOP], waiting: [], occupants: 1, buffered: 1, subject: "Topic" });
  });

  it("a session that starts waiting mid-list first gets the occupants already announced", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1001);
    const acts = a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1002);
    expect(sent(acts, LAPTOP).map((s) => s.attrs.from)).toEqual([`${ROOM}/bob`]);
    expect(upstream(acts)).toEqual([]);
  });

  it("210 and from=room/accountNick for a waiting session that asked for another nick", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.fromSession(LAPTOP, join(ROOM, "ally", { id: "j2" }), 1000);
    a.accountSessionUp(1000);
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
    const l = sent(self, LAPTOP)[0]!;
    expect(l.attrs.from).toBe(`${ROOM}/alice`);
    expect(codes(l)).toEqual(expect.arrayContaining(["110", "210"]));
    expect(codes(sent(self, PHONE)[0]!)).not.toContain("210");
  });

  it("the room's nick assignment (210) becomes the account's nick", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    const self = a.fromRoom(selfPresence(ROOM, "Alice (work)", ACCOUNT_SESSION, ["210"]), 1001);
    expect(codes(sent(self, PHONE)[0]!)).toContain("210");
    expect(a.rooms()[0]?.nick).toBe("Alice (work)");
  });
});

describe("join errors (§7.2.6-§7.2.11)", () => {
  for (const [cond, code] of [["conflict", "409"], ["not-authorized", "401"], ["forbidden", "403"], ["registration-required", "407"], ["service-unavailable", "503"]] as const) {
    it(`${code} ${cond}: every waiting session gets it with its own id, state dropped, account may close`, () => {
      const a = fresh();
      a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
      a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1000);
      a.accountSessionUp(1000);
      const err = x(`<presence from='${ROOM}/alice' to='${ACCOUNT_SESSION}' type='error' id='mmx-join-1'><x xmlns='http://jabber.org/protocol/muc'/><error type='cancel' code='${code}'><${cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`);
      const acts = a.fromRoom(err, 1001);
      expect(sent(acts, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "j1", to: PHONE });
      expect(sent(acts, LAPTOP)[0]?.attrs).toMatchObject({ type: "error", id: "j2", to: LAPTOP });
      expect(sent(acts, PHONE)[0]?.getChild("error")?.getChild(cond)).toBeDefined();
      expect(kinds(acts)).toContain("closeAccountSession");
      expect(a.hasState()).toBe(false);
    });
  }

  it("an error from the bare room is a join error too; a later join starts fresh", () => {
    const a = fresh();
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(x(`<presence from='${ROOM}' to='${ACCOUNT_SESSION}' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), 1001);
    expect(a.hasState()).toBe(false);
    const again = a.fromSession(PHONE, join(ROOM, "alice"), 1002);
    expect(kinds(again)).toEqual(["openAccountSession", "toRoomUpstream"]);
  });
});

describe("later joins answered from state", () => {
  it("occupants, self-presence last with 110/100/170 and the session's id, history with delay, then subject; no upstream traffic", () => {
    const a = joinedRoom();
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "m1", { id: "g1" }), 2000);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "m0", { id: "g0", stamp: "2020-01-01T00:00:00Z" }), 2500);
    const acts = a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 3000);
    expect(upstream(acts)).toEqual([]);
    const out = sent(acts, LAPTOP);
    expect(out.map((s) => s.name)).toEqual(["presence", "presence", "message", "message", "message"]);
    expect(out[0]?.attrs.from).toBe(`${ROOM}/bob`);
    const self = out[1]!;
    expect(self.attrs).toMatchObject({ id: "j2", to: LAPTOP, from: `${ROOM}/alice` });
    expect(codes(self).sort()).toEqual(["100", "110", "170"]);
    expect(out[2]?.getChildText("body")).toBe("m1");
    expect(delayStamp(out[2]!)).toBe(iso(2000));
    expect(out[2]?.getChild("delay", "urn:xmpp:delay")?.attrs.from).toBe(ROOM);
    expect(delayStamp(out[3]!)).toBe("2020-01-01T00:00:00Z"); // the room's delay is kept
    expect(out[4]?.getChildText("subject")).toBe("Hello");
    expect(out.every((s) => s.attrs.to === LAPTOP)).toBe(true);
    expect(a.rooms()[0]?.sessions).toEqual([PHONE, LAPTOP]);
  });

  it("never replays a stale 201; adds 210 when the session asked for another nick", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["201"], { affiliation: "owner", role: "moderator" }), 1001);
    const acts = a.fromSession(LAPTOP, join(ROOM, "ally", { id: "j2" }), 1002);
    const self = sent(acts, LAPTOP).find((s) => s.name === "presence")!;
    expect(codes(self)).not.toContain("201");
    expect(codes(self)).toEqual(expect.arrayContaining(["110", "210"]));
    expect(self.attrs.from).toBe(`${ROOM}/alice`);
  });

  it("empty <subject/> when the room has none", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1001);
    a.fromRoom(x(`<message type='groupchat' from='${ROOM}' to='${ACCOUNT_SESSION}'><subject/></message>`), 1002);
    const out = sent(a.fromSession(LAPTOP, join(ROOM, "alice"), 1003), LAPTOP);
    const last = out[out.length - 1]!;
    expect(last.name).toBe("message");
    expect(last.getChild("subject")).toBeDefined();
    expect(last.getChildText("subject")).toBe("");
  });

  it("a join while joined is a resync: the same session gets the full state again", () => {
    const a = joinedRoom();
    const out = sent(a.fromSession(PHONE, join(ROOM, "alice", { id: "again" }), 2000), PHONE);
    expect(out.find((s) => s.name === "presence" && codes(s).includes("110"))?.attrs.id).toBe("again");
    expect(a.rooms()[0]?.sessions).toEqual([PHONE]);
  });

  it("a session joining before the subject arrived gets the live subject, not an empty one", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1001);
    const out = sent(a.fromSession(TABLET, join(ROOM, "alice"), 1002), TABLET);
    expect(out.some((s) => s.getChild("subject") !== undefined)).toBe(false);
    const subj = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 1003);
    expect(sent(subj, TABLET)).toHaveLength(1);
    expect(sent(subj, PHONE)).toHaveLength(1);
  });

  describe("history as the session asks (§7.2.15)", () => {
    function withMessages(): RoomMachine {
      const a = joinedRoom({ defaultHistoryStanzas: 3 });
      for (let i = 1; i <= 6; i++) a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, `m${i}`, { id: `g${i}` }), 10_000 * i);
      return a;
    }
    const bodies = (a: RoomMachine, hist: string, now = 70_000): string[] =>
      sent(a.fromSession(LAPTOP, join(ROOM, "alice", { history: hist }), now), LAPTOP)
        .filter((s) => s.getChild("body"))
        .map((s) => s.getChildText("body") ?? "");

    it("maxstanzas", () => expect(bodies(withMessages(), "<history maxstanzas='2'/>")).toEqual(["m5", "m6"]));
    it("maxstanzas=0", () => expect(bodies(withMessages(), "<history maxstanzas='0'/>")).toEqual([]));
    it("maxchars=0 means no history", () => expect(bodies(withMessages(), "<history maxchars='0'/>")).toEqual([]));
    it("maxchars counts whole stanzas as sent and never truncates one", () => {
      const a = withMessages();
      const one = sent(a.fromSession(TABLET, join(ROOM, "alice", { history: "<history maxstanzas='1'/>" }), 70_000), TABLET).find((s) => s.getChild("body"))!;
      const len = one.toString().replace(TABLET, LAPTOP).length;
      expect(bodies(a, `<history maxchars='${len * 2}'/>`)).toEqual(["m5", "m6"]);
      expect(bodies(a, `<history maxchars='${len * 2 - 1}'/>`)).toEqual(["m6"]);
    });
    it("seconds", () => expect(bodies(withMessages(), "<history seconds='25'/>", 70_000)).toEqual(["m5", "m6"]));
    it("since (strictly after)", () => expect(bodies(withMessages(), `<history since='${iso(40_000)}'/>`)).toEqual(["m5", "m6"]));
    it("limits combine to the smallest result", () =>
      expect(bodies(withMessages(), `<history since='${iso(20_000)}' maxstanzas='3' seconds='25'/>`)).toEqual(["m5", "m6"]));
    it("no <history/>: the configured default", () => expect(bodies(withMessages(), "")).toEqual(["m4", "m5", "m6"]));
  });
});
