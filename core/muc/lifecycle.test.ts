import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import {
  ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, TABLET, codes, delayStamp, groupchat, iso, join, joinedRoom, kinds, occupant,
  selfPresence, sent, subject, upstream, x,
} from "./test-kit.js";

const leave = (to = ROOM, id?: string) => x(`<presence type='unavailable' to='${to}'${id ? ` id='${id}'` : ""}/>`);

describe("explicit leave (§7.14)", () => {
  it("answers the leaving session alone with unavailable self-presence, 110, role none; the account stays", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    const acts = a.fromSession(PHONE, leave(`${ROOM}/alice`, "l1"), 2000);
    expect(kinds(acts)).toEqual(["toSession"]);
    const p = sent(acts, PHONE)[0]!;
    expect(p.attrs).toMatchObject({ type: "unavailable", from: `${ROOM}/alice`, to: PHONE, id: "l1" });
    expect(codes(p)).toEqual(["110"]);
    expect(p.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("item")?.attrs.role).toBe("none");
    expect(a.rooms()[0]?.sessions).toEqual([LAPTOP]);
    // it no longer gets room traffic
    expect(sent(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "x"), 2001), PHONE)).toEqual([]);
  });

  it("the last session leaving explicitly makes the account leave upstream and lets the account session close", () => {
    const a = joinedRoom();
    const acts = a.fromSession(PHONE, x(`<presence type='unavailable' to='${ROOM}'><status>bye</status></presence>`), 2000);
    expect(kinds(acts)).toEqual(["toSession", "toRoomUpstream", "closeAccountSession"]);
    expect(upstream(acts)[0]?.attrs).toEqual({ type: "unavailable", to: `${ROOM}/alice` });
    expect(upstream(acts)[0]?.getChildText("status")).toBe("bye");
    expect(a.hasState()).toBe(false);
  });

  it("the account leaves only when the last session left explicitly: others having disconnected does not matter", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    expect(upstream(a.sessionGone(LAPTOP, 1600))).toEqual([]);
    expect(kinds(a.fromSession(PHONE, leave(), 2000))).toContain("toRoomUpstream");
  });

  it("the echo of our leave is swallowed, even when the room is joined again before it arrives", () => {
    const a = joinedRoom();
    a.fromSession(PHONE, leave(), 2000);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j9" }), 2001);
    // tail of the old occupancy, then the echo: ignored
    expect(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "old"), 2002)).toEqual([]);
    expect(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, [], { type: "unavailable", role: "none" }), 2003)).toEqual([]);
    expect(a.rooms()[0]?.state).toBe("joining");
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 2004);
    expect(sent(self, PHONE)[0]?.attrs.id).toBe("j9");
  });

  it("a waiting session can leave; when it was the only one the pending join is undone", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    const acts = a.fromSession(PHONE, leave(), 1001);
    expect(sent(acts, PHONE)[0]?.attrs.type).toBe("unavailable");
    expect(upstream(acts)[0]?.attrs.type).toBe("unavailable");
    expect(a.hasState()).toBe(false);
    expect(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002)).toEqual([]);
  });
});

describe("disconnects and idle leave", () => {
  it("sessionGone is not a leave: no upstream traffic, nothing to others, buffer keeps collecting", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    expect(a.sessionGone(PHONE, 2000)).toEqual([]);
    expect(a.rooms()[0]?.sessions).toEqual([LAPTOP]);
    a.sessionGone(LAPTOP, 2001);
    expect(a.rooms()[0]).toMatchObject({ sessions: [], upstreamJoined: true, idleSince: 2001 });
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "while away"), 2002);
    expect(a.rooms()[0]?.buffered).toBe(1);
  });

  it("a rejoin with <history since=…> gets exactly the missed messages", () => {
    const a = joinedRoom();
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "seen1"), 10_000);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "seen2"), 20_000);
    a.sessionGone(PHONE, 21_000);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed1"), 30_000);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed2"), 40_000);
    const acts = a.fromSession(PHONE, join(ROOM, "alice", { history: `<history since='${iso(20_000)}'/>` }), 50_000);
    // no upstream join: only the account's presence back from xa to the session's
    expect(upstream(acts).map((p) => [p.name, p.getChild("x"), p.getChildText("show")])).toEqual([["presence", undefined, null]]);
    const msgs = sent(acts, PHONE).filter((s) => s.getChild("body"));
    expect(msgs.map((m) => m.getChildText("body"))).toEqual(["missed1", "missed2"]);
    expect(msgs.map((m) => delayStamp(m))).toEqual([iso(30_000), iso(40_000)]);
  });

  it("idle leave: after idleLeaveMs with no session the account leaves; a session coming back resets the clock", () => {
    const a = joinedRoom({ idleLeaveMs: 10_000 });
    a.sessionGone(PHONE, 2000);
    expect(a.tick(11_999)).toEqual([]);
    a.fromSession(PHONE, join(ROOM, "alice"), 11_999);
    expect(a.tick(50_000)).toEqual([]);
    a.sessionGone(PHONE, 60_000);
    const acts = a.tick(70_000);
    expect(kinds(acts)).toEqual(["toRoomUpstream", "closeAccountSession"]);
    expect(upstream(acts)[0]?.attrs).toEqual({ type: "unavailable", to: `${ROOM}/alice` });
    expect(a.hasState()).toBe(false);
  });

  it("idle leave also applies to a join that everyone stopped waiting for", () => {
    const a = new RoomMachine(ALICE, { idleLeaveMs: 1000 });
    a.fromSession(PHONE, join(ROOM, "alice"), 0);
    a.accountSessionUp(0);
    a.sessionGone(PHONE, 10);
    expect(a.fromRoom(selfPresence(ROOM, "alice", `${ALICE}/minimix-x`), 20)).toEqual([]);
    expect(a.rooms()[0]).toMatchObject({ state: "joined", sessions: [] });
    expect(kinds(a.tick(1010))).toEqual(["toRoomUpstream", "closeAccountSession"]);
  });
});

describe("presence aggregation", () => {
  const pres = (show?: string, status?: string) =>
    x(`<presence to='${ROOM}/alice'>${show ? `<show>${show}</show>` : ""}${status ? `<status>${status}</status>` : ""}</presence>`);

  it("sends the most available presence upstream, only when it changes", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    const away = a.fromSession(PHONE, pres("away"), 2000);
    expect(upstream(away)).toEqual([]); // laptop is still plain available
    const xa = a.fromSession(LAPTOP, pres("xa"), 2001);
    expect(upstream(xa)[0]?.getChildText("show")).toBe("away"); // phone's away is now the best
    expect(upstream(xa)[0]?.attrs.to).toBe(`${ROOM}/alice`);
    expect(upstream(a.fromSession(LAPTOP, pres("dnd"), 2002))).toEqual([]); // away still beats dnd
    const chat = upstream(a.fromSession(LAPTOP, pres("chat", "talk to me"), 2003))[0]!;
    expect(chat.getChildText("show")).toBe("chat");
    expect(chat.getChildText("status")).toBe("talk to me");
    expect(upstream(a.fromSession(LAPTOP, pres("chat", "talk to me"), 2004))).toEqual([]);
    // the best session leaving changes the aggregate
    const left = a.fromSession(LAPTOP, x(`<presence type='unavailable' to='${ROOM}'/>`), 2005);
    expect(upstream(left)[0]?.getChildText("show")).toBe("away");
  });

  it("dnd ranks above xa; available above away; ties go to the latest update", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice", { show: "xa" }), 1500);
    a.fromSession(PHONE, pres("xa", "phone idle"), 2000);
    expect(upstream(a.fromSession(LAPTOP, pres("xa", "laptop idle"), 2001))[0]?.getChildText("status")).toBe("laptop idle");
    expect(upstream(a.fromSession(PHONE, pres("dnd"), 2002))[0]?.getChildText("show")).toBe("dnd");
  });

  it("a disconnect of the best session changes the aggregate for the remaining ones", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice", { show: "away" }), 1500);
    const gone = a.sessionGone(PHONE, 2000);
    expect(upstream(gone)[0]?.getChildText("show")).toBe("away");
    // no session left: the away presence (awayPresence, default xa), see "away presence" below
    expect(upstream(a.sessionGone(LAPTOP, 2001)).map((p) => p.getChildText("show"))).toEqual(["xa"]);
  });

  it("a broadcast presence (no to) counts in every joined room's aggregate and still passes through", () => {
    const a = joinedRoom();
    const away = a.fromSession(PHONE, x(`<presence><show>away</show><status>lunch</status></presence>`), 2000);
    expect(away[0]).toEqual({ kind: "passthrough" });
    const up = upstream(away)[0]!;
    expect(up.attrs.to).toBe(`${ROOM}/alice`);
    expect(up.getChildText("show")).toBe("away");
    expect(up.getChildText("status")).toBe("lunch");
    // unchanged: nothing more upstream; a broadcast unavailable is not a leave
    expect(upstream(a.fromSession(PHONE, x(`<presence><show>away</show><status>lunch</status></presence>`), 2001))).toEqual([]);
    expect(a.fromSession(PHONE, x(`<presence type='unavailable'/>`), 2002)).toEqual([{ kind: "passthrough" }]);
    expect(a.rooms()[0]?.sessions).toContain(PHONE);
  });

  it("presence not meant for occupancy (subscribe, probe) passes through", () => {
    const a = joinedRoom();
    expect(a.fromSession(PHONE, x(`<presence type='subscribe' to='${ROOM}'/>`), 2000)).toEqual([{ kind: "passthrough" }]);
  });
});

describe("account session drop and rejoin", () => {
  it("no leave is shown; the rejoin asks since the last stanza seen (minus margin) with the password; missed messages reach joined sessions once", () => {
    const a = new RoomMachine(ALICE, { rejoinSinceMarginMs: 1000 });
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice", { password: "pw", history: "<history maxstanzas='0'/>" }), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1001);
    a.fromRoom(occupant(ROOM, "carol", ACCOUNT_SESSION), 1001);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
    a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 1003);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "live", { id: "b1" }), 10_000);
    expect(a.accountSessionDown(11_000)).toEqual([]);
    expect(a.upstreamState()).toBe("opening");
    expect(a.rooms()[0]).toMatchObject({ sessions: [PHONE], upstreamJoined: false });
    // while down, a groupchat from the session is held, not lost and not sent before the rejoin
    expect(a.fromSession(PHONE, x(`<message type='groupchat' to='${ROOM}' id='held'><body>h</body></message>`), 12_000)).toEqual([]);
    // self-ping is still answered from state
    expect(sent(a.fromSession(PHONE, x(`<iq type='get' id='sp' to='${ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>`), 12_000), PHONE)[0]?.attrs.type).toBe("result");
    const up = a.accountSessionUp(20_000);
    const ups = upstream(up);
    expect(ups).toHaveLength(2);
    const rejoin = ups[0]!;
    expect(rejoin.attrs.to).toBe(`${ROOM}/alice`);
    const mx = rejoin.getChild("x", "http://jabber.org/protocol/muc")!;
    expect(mx.getChildText("password")).toBe("pw");
    expect(mx.getChildren("history")).toHaveLength(1);
    expect(mx.getChild("history")?.attrs).toEqual({ since: iso(9000) });
    expect(ups[1]?.attrs.id).toBe("held");
    // the room answers: bob still there (unchanged: not forwarded), carol gone (synthesised leave), self, overlap + missed, subject repeated
    expect(a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 20_001)).toEqual([]);
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 20_002);
    expect(sent(self, PHONE).map((p) => [p.attrs.from, p.attrs.type])).toEqual([[`${ROOM}/carol`, "unavailable"]]);
    expect(a.rooms()[0]).toMatchObject({ upstreamJoined: true, occupants: 1 });
    expect(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "live", { id: "b1", stamp: iso(10_000) }), 20_003)).toEqual([]);
    const missed = a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed", { id: "b2", stamp: iso(15_000) }), 20_004);
    expect(sent(missed, PHONE)).toHaveLength(1);
    expect(a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 20_005)).toEqual([]);
    expect(sent(a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T2"), 20_006), PHONE)).toHaveLength(1);
  });

  it("a join pending when the upstream drops is sent again on reconnect, with the original request", () => {
    const a = new RoomMachine(ALICE);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1", history: "<history maxstanzas='3'/>" }), 1000);
    a.accountSessionUp(1000);
    a.accountSessionDown(1001);
    const ups = upstream(a.accountSessionUp(2000));
    expect(ups).toHaveLength(1);
    expect(ups[0]?.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs).toEqual({ maxstanzas: "3" });
    expect(a.rooms()[0]?.waiting).toEqual([PHONE]);
  });

  it("a new first join while reconnecting is queued with the open upstream (no second openAccountSession)", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    const acts = a.fromSession(PHONE, join("other@conference.example.org", "alice"), 2001);
    expect(kinds(acts)).toEqual(["toRoomUpstream"]);
    const up = upstream(a.accountSessionUp(3000));
    expect(up.map((s) => s.attrs.to)).toEqual([`${ROOM}/alice`]); // only the rejoin; the new join is already queued
  });

  it("IQs in flight when the upstream drops get remote-server-timeout", () => {
    const a = joinedRoom();
    a.fromSession(PHONE, x(`<iq type='get' id='v' to='${ROOM}/bob'><query xmlns='jabber:iq:version'/></iq>`), 2000);
    const acts = a.accountSessionDown(2001);
    expect(sent(acts, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "v" });
  });

  it("a failed rejoin (e.g. banned meanwhile) reaches the sessions and clears the room", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.accountSessionUp(3000);
    const acts = a.fromRoom(x(`<presence type='error' from='${ROOM}/alice' to='${ACCOUNT_SESSION}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), 3001);
    expect(sent(acts, PHONE)).toHaveLength(1);
    expect(a.hasState()).toBe(false);
  });

  it("idle rooms are rejoined too (the buffer keeps collecting for a later since-join)", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 1500);
    a.accountSessionDown(2000);
    expect(upstream(a.accountSessionUp(3000))).toHaveLength(1);
  });

  it("a session joining while the account rejoins is answered from state", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    const acts = a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    expect(upstream(acts)).toEqual([]);
    expect(sent(acts, TABLET).find((s) => codes(s).includes("110"))?.attrs.id).toBe("t");
  });
});
