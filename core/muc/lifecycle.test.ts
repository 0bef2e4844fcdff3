import type { Element } from "ltx";
import { describe, expect, it } from "vitest";
import type { Action } from "./actions.js";
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
    expect(kinds(acts)).toEqual(["toSession", "toRoomUpstream", "roomLeft", "closeAccountSession"]);
    expect(acts.find((a) => a.kind === "roomLeft")).toEqual({ kind: "roomLeft", room: ROOM, reason: "last-session-left" });
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

  it("the last room left and joined again on the same account-session stream (kept online, §4.1): the old leave's echo is still swallowed", () => {
    const a = joinedRoom();
    const left = a.fromSession(PHONE, leave(), 2000);
    expect(kinds(left)).toContain("closeAccountSession");
    // the proxy kept the stream: the re-join's openAccountSession is answered with accountSessionUp at once
    const again = a.fromSession(PHONE, join(ROOM, "alice", { id: "j9" }), 2001);
    expect(kinds(again)).toEqual(["openAccountSession", "toRoomUpstream"]);
    expect(a.accountSessionUp(2001, true)).toEqual([]);
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
    expect(kinds(acts)).toEqual(["toRoomUpstream", "roomLeft", "closeAccountSession"]);
    expect(acts.find((a) => a.kind === "roomLeft")).toMatchObject({ reason: "idle-timeout" });
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
    expect(kinds(a.tick(1010))).toEqual(["toRoomUpstream", "roomLeft", "closeAccountSession"]);
  });

  it("--room-idle-leave 0 means never: an empty room is kept however long", () => {
    const a = joinedRoom({ idleLeaveMs: 0 });
    a.sessionGone(PHONE, 2000);
    expect(a.tick(2000)).toEqual([]);
    expect(a.tick(10 * 365 * 86_400_000)).toEqual([]);
    expect(a.hasState()).toBe(true);
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
    // a self-ping is held: the account is not in the room upstream right now (answered when the rejoin ends)
    expect(a.fromSession(PHONE, x(`<iq type='get' id='sp' to='${ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>`), 12_000)).toEqual([]);
    const up = a.accountSessionUp(20_000);
    const ups = upstream(up);
    expect(ups).toHaveLength(2);
    const rejoin = ups[0]!;
    expect(rejoin.attrs.to).toBe(`${ROOM}/alice`);
    const mx = rejoin.getChild("x", "http://jabber.org/protocol/muc")!;
    expect(mx.getChildText("password")).toBe("pw");
    expect(mx.getChildren("history")).toHaveLength(1);
    expect(mx.getChild("history")?.attrs).toEqual({ maxstanzas: "200", since: iso(9000) });
    expect(ups[1]?.attrs.id).toBe("held");
    // the room answers: bob still there (unchanged: not forwarded), carol gone (synthesised leave), self, overlap + missed, subject repeated
    expect(a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 20_001)).toEqual([]);
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 20_002);
    expect(sent(self, PHONE).map((p) => [p.attrs.from, p.attrs.type])).toEqual([[`${ROOM}/carol`, "unavailable"]]);
    expect(a.rooms()[0]).toMatchObject({ upstreamJoined: true, occupants: 1 });
    expect(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "live", { id: "b1", stamp: iso(10_000) }), 20_003)).toEqual([]);
    const missed = a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed", { id: "b2", stamp: iso(15_000) }), 20_004);
    expect(sent(missed, PHONE)).toHaveLength(1);
    // the repeated subject ends the rejoin: only the held self-ping is answered
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 20_005);
    expect(end.map((s) => (s.kind === "toSession" ? [s.session, s.stanza.attrs.id, s.stanza.attrs.type] : s.kind))).toEqual([[PHONE, "sp", "result"]]);
    expect(sent(a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T2"), 20_006), PHONE)).toHaveLength(1);
  });

  it("a join pending when the upstream drops is sent again on reconnect, with the original request (password kept, the account's history)", () => {
    const a = new RoomMachine(ALICE);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1", history: "<history maxstanzas='3'/>" }), 1000);
    a.accountSessionUp(1000);
    a.accountSessionDown(1001);
    const ups = upstream(a.accountSessionUp(2000));
    expect(ups).toHaveLength(1);
    expect(ups[0]?.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs).toEqual({ maxstanzas: "200" });
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
});

describe("rejoin after an upstream loss: the state is rebuilt before anyone is answered from it (issue 17)", () => {
  const ping = (id: string) => x(`<iq type='get' id='${id}' to='${ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const errorOf = (s: Element | undefined) => s?.getChild("error")?.children.map((c) => (c as Element).name)[0];
  /** The room answers the rejoin: carol now (bob left meanwhile), self, one message since, the subject. */
  function roomAnswersRejoin(a: RoomMachine, t: number): Action[] {
    return [
      ...a.fromRoom(occupant(ROOM, "carol", ACCOUNT_SESSION), t),
      ...a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["100"]), t + 1),
      ...a.fromRoom(groupchat(ROOM, "carol", ACCOUNT_SESSION, "while away", { id: "c1", stamp: iso(2500) }), t + 2),
      ...a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Hello"), t + 3),
    ];
  }

  it("a join while the account session is down waits, then is answered from the rebuilt state: occupants, self, history since, subject", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    expect(a.fromSession(TABLET, join(ROOM, "alice", { id: "t", history: `<history since='${iso(2000)}'/>` }), 2001)).toEqual([]);
    expect(a.rooms()[0]).toMatchObject({ waiting: [TABLET], sessions: [PHONE] });
    expect(upstream(a.accountSessionUp(3000))).toHaveLength(1);
    const acts = roomAnswersRejoin(a, 3001);
    const tablet = sent(acts, TABLET);
    expect(tablet.map((s) => [s.name, s.attrs.from, s.attrs.type])).toEqual([
      ["presence", `${ROOM}/carol`, undefined],
      ["presence", `${ROOM}/alice`, undefined],
      ["message", `${ROOM}/carol`, "groupchat"],
      ["message", `${ROOM}/bob`, "groupchat"],
    ]);
    expect(tablet[1]?.attrs.id).toBe("t");
    expect(codes(tablet[1]!)).toContain("110");
    expect(tablet[2]?.getChildText("body")).toBe("while away");
    // the session that stayed gets only the difference, once
    expect(sent(acts, PHONE).map((s) => [s.attrs.from, s.name === "message" ? s.getChildText("body") : s.attrs.type])).toEqual([
      [`${ROOM}/carol`, undefined],
      [`${ROOM}/bob`, "unavailable"],
      [`${ROOM}/carol`, "while away"],
    ]);
    expect(a.rooms()[0]).toMatchObject({ waiting: [], sessions: [PHONE, TABLET], upstreamJoined: true });
    expect(kinds(acts)).not.toContain("roomLeft");
  });

  it("a join after the account session is back but before the rejoin's subject waits too", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.accountSessionUp(3000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 3001);
    expect(a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 3002)).toEqual([]);
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Hello"), 3003);
    expect(sent(end, TABLET).find((s) => codes(s).includes("110"))?.attrs.id).toBe("t");
    // once rebuilt, joins are answered at once again
    expect(sent(a.fromSession(LAPTOP, join(ROOM, "alice", { id: "l" }), 3004), LAPTOP).find((s) => codes(s).includes("110"))?.attrs.id).toBe("l");
  });

  it("a resync join of a joined session during a rejoin is replayed once the state is rebuilt; it stays joined meanwhile", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    expect(a.fromSession(PHONE, join(ROOM, "alice", { id: "again" }), 2001)).toEqual([]);
    expect(a.rooms()[0]).toMatchObject({ sessions: [PHONE], waiting: [] });
    a.accountSessionUp(3000);
    const acts = roomAnswersRejoin(a, 3001);
    expect(sent(acts, PHONE).filter((s) => codes(s).includes("110")).map((s) => s.attrs.id)).toEqual(["again"]);
  });

  it("sessions gone during a rejoin are not a leave: the rejoin goes on, the room waits for the idle rules", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    expect(a.sessionGone(PHONE, 2001)).toEqual([]);
    const up = a.accountSessionUp(3000);
    expect(upstream(up).map((s) => s.attrs.type)).toEqual([undefined]);
    // the last session went away during the rejoin: the rejoin's own join carries the away presence
    // (--away-presence, default xa), and no separate presence follows it
    expect(upstream(up)[0]?.getChildText("show")).toBe("xa");
    const acts = roomAnswersRejoin(a, 3001);
    expect(upstream(acts)).toEqual([]);
    expect(kinds(acts)).not.toContain("roomLeft");
    expect(a.rooms()[0]).toMatchObject({ upstreamJoined: true, sessions: [], idleSince: 2001 });
  });

  it("down, up, down, up: each connection rejoins once; a join waiting across both is answered once, from the last", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    expect(upstream(a.accountSessionUp(3000))).toHaveLength(1);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 3001); // the first rejoin's answer is cut short
    a.accountSessionDown(3002);
    expect(upstream(a.accountSessionUp(4000))).toHaveLength(1);
    const acts = roomAnswersRejoin(a, 4001);
    expect(sent(acts, TABLET).filter((s) => codes(s).includes("110"))).toHaveLength(1);
    expect(sent(acts, TABLET).filter((s) => s.attrs.from === `${ROOM}/carol` && s.name === "presence")).toHaveLength(1);
    expect(sent(acts, TABLET).some((s) => s.attrs.from === `${ROOM}/bob` && s.name === "presence")).toBe(false);
  });

  it("a refused rejoin reaches the waiting sessions with their ids, and says why the account is out", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    a.accountSessionUp(3000);
    const acts = a.fromRoom(x(`<presence type='error' from='${ROOM}/alice' to='${ACCOUNT_SESSION}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), 3001);
    expect(sent(acts, TABLET)[0]?.attrs).toMatchObject({ type: "error", id: "t" });
    expect(sent(acts, PHONE)).toHaveLength(1);
    expect(acts.find((x) => x.kind === "roomLeft")).toMatchObject({ reason: "rejoin-refused" });
  });

  it("a self-ping during a rejoin is held and answered when it ends (XEP-0410)", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    expect(a.fromSession(PHONE, ping("p1"), 2001)).toEqual([]);
    a.accountSessionUp(3000);
    expect(a.fromSession(PHONE, ping("p2"), 3000)).toEqual([]);
    const acts = roomAnswersRejoin(a, 3001);
    expect(sent(acts, PHONE).filter((s) => s.name === "iq").map((s) => [s.attrs.id, s.attrs.type])).toEqual([["p1", "result"], ["p2", "result"]]);
    // joined upstream again: answered at once
    expect(sent(a.fromSession(PHONE, ping("p3"), 3005), PHONE)[0]?.attrs.type).toBe("result");
  });

  it("a self-ping held during a rejoin that fails gets not-acceptable: the client rejoins", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.fromSession(PHONE, ping("p1"), 2001);
    a.accountSessionUp(3000);
    const acts = a.fromRoom(x(`<presence type='error' from='${ROOM}/alice' to='${ACCOUNT_SESSION}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`), 3001);
    const answer = sent(acts, PHONE).find((s) => s.name === "iq");
    expect(answer?.attrs).toMatchObject({ id: "p1", type: "error", from: `${ROOM}/alice` });
    expect(errorOf(answer)).toBe("not-acceptable");
    // the account is out: a ping to the room now passes through, and the room itself answers
    expect(a.fromSession(PHONE, ping("p2"), 3002)).toEqual([{ kind: "passthrough" }]);
  });

  it("a self-ping of a session gone meanwhile is dropped with it", () => {
    const a = joinedRoom();
    a.accountSessionDown(2000);
    a.fromSession(PHONE, ping("p1"), 2001);
    a.sessionGone(PHONE, 2002);
    a.accountSessionUp(3000);
    expect(sent(roomAnswersRejoin(a, 3001), PHONE)).toEqual([]);
  });

  it("332 (the MUC service shuts down) is not a leave: sessions see nothing, the room is rejoined on the next connection", () => {
    const a = joinedRoom();
    const shutdown = selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["332"], { type: "unavailable", role: "none" });
    expect(a.fromRoom(shutdown, 2000)).toEqual([]);
    expect(a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { type: "unavailable", codes: ["332"] }), 2000)).toEqual([]);
    expect(a.rooms()[0]).toMatchObject({ sessions: [PHONE], upstreamJoined: false });
    expect(a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001)).toEqual([]);
    a.accountSessionDown(2002); // the server goes down next
    const rejoin = upstream(a.accountSessionUp(9000));
    expect(rejoin).toHaveLength(1);
    expect(rejoin[0]?.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs.since).toBeDefined();
    const acts = roomAnswersRejoin(a, 9001);
    expect(sent(acts, TABLET).find((s) => codes(s).includes("110"))?.attrs.id).toBe("t");
    expect(kinds(acts)).not.toContain("roomLeft");
  });

  it("332 while the account session stays up: the room is rejoined after rejoinAfterShutdownMs (on tick)", () => {
    const a = joinedRoom({ rejoinAfterShutdownMs: 5000 });
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["332"], { type: "unavailable", role: "none" }), 2000);
    expect(upstream(a.tick(6999))).toEqual([]);
    const rejoin = upstream(a.tick(7000));
    expect(rejoin.map((s) => s.attrs.to)).toEqual([`${ROOM}/alice`]);
    expect(upstream(a.tick(20_000))).toEqual([]); // once
    roomAnswersRejoin(a, 20_001);
    expect(a.rooms()[0]).toMatchObject({ upstreamJoined: true, occupants: 1 });
  });

  it("a session waiting on a rejoin that does not come gets remote-server-timeout with its id after joinTimeoutMs; the room stays", () => {
    const a = joinedRoom({ joinTimeoutMs: 30_000 });
    a.accountSessionDown(2000);
    a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    expect(a.tick(32_000)).toEqual([]);
    const acts = a.tick(32_001);
    const err = sent(acts, TABLET)[0];
    expect(err?.attrs).toMatchObject({ type: "error", id: "t", from: `${ROOM}/alice` });
    expect(errorOf(err)).toBe("remote-server-timeout");
    expect(a.rooms()[0]).toMatchObject({ waiting: [], sessions: [PHONE] });
    expect(kinds(acts)).not.toContain("roomLeft");
  });

  it("a rejoin whose subject never comes: at the join timeout the waiting session is answered from what came", () => {
    const a = joinedRoom({ joinTimeoutMs: 30_000 });
    a.accountSessionDown(2000);
    a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    a.accountSessionUp(3000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 3001);
    const acts = a.tick(32_001);
    expect(sent(acts, TABLET).find((s) => codes(s).includes("110"))?.attrs.id).toBe("t");
  });

  it("a first join the room never answers: error after joinTimeoutMs, the room is forgotten and a late answer ignored", () => {
    const a = new RoomMachine(ALICE, { joinTimeoutMs: 30_000 });
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j" }), 1000);
    a.accountSessionUp(1000);
    const acts = a.tick(31_000);
    expect(sent(acts, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "j" });
    expect(upstream(acts)[0]?.attrs).toMatchObject({ type: "unavailable", to: `${ROOM}/alice` });
    expect(acts.find((x) => x.kind === "roomLeft")).toMatchObject({ reason: "join-timeout" });
    expect(kinds(acts)).toContain("closeAccountSession");
    expect(a.hasState()).toBe(false);
  });

  it("joinTimeoutMs 0: a waiting session waits as long as it takes", () => {
    const a = joinedRoom({ joinTimeoutMs: 0 });
    a.accountSessionDown(2000);
    a.fromSession(TABLET, join(ROOM, "alice", { id: "t" }), 2001);
    expect(a.tick(10_000_000)).toEqual([]);
    expect(a.rooms()[0]?.waiting).toEqual([TABLET]);
  });
});

