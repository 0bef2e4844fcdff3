import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, codes, groupchat, join, joinedRoom, kinds, occupant, selfPresence, sent, upstream, x } from "./test-kit.js";

/**
 * RFC 6120 §7.7.2.2: a phone reconnects and binds the same resource while its old stream still
 * exists; the server ends the old stream (conflict). The proxy reports it as sessionReplaced
 * before the new stream's link is stored.
 */
describe("a session replaced by a new stream with the same full JID", () => {
  it("the new stream's join is a fresh join answered from state with its own id, not a resync of the old one", () => {
    const a = joinedRoom();
    const replaced = a.sessionReplaced(PHONE, 2000);
    expect(replaced).toEqual([]); // the user is back: no away presence, nothing to anyone
    expect(a.rooms()[0]?.sessions).toEqual([]);
    const acts = a.fromSession(PHONE, join(ROOM, "alice", { id: "new-join" }), 2001);
    expect(upstream(acts)).toEqual([]); // no second upstream join, and the aggregate did not change
    const toPhone = sent(acts, PHONE);
    const self = toPhone.find((p) => codes(p).includes("110"))!;
    expect(self.attrs).toMatchObject({ id: "new-join", from: `${ROOM}/alice`, to: PHONE });
    expect(toPhone.some((p) => p.attrs.from === `${ROOM}/bob`)).toBe(true); // occupants
    expect(toPhone.some((p) => p.getChildText("subject") === "Hello")).toBe(true);
    expect(a.rooms()[0]?.sessions).toEqual([PHONE]);
    // room traffic and the self-ping reach the new stream
    expect(sent(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "hi"), 2002), PHONE)).toHaveLength(1);
    const ping = a.fromSession(PHONE, x(`<iq type='get' id='sp' to='${ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>`), 2003);
    expect(sent(ping, PHONE)[0]?.attrs).toMatchObject({ type: "result", id: "sp" });
  });

  it("without sessionReplaced, the same join would be a resync (why the proxy must report the replacement)", () => {
    const a = joinedRoom();
    a.fromSession(PHONE, join(ROOM, "alice", { id: "again" }), 2001);
    expect(a.rooms()[0]?.sessions).toEqual([PHONE]);
    // after a replacement the old stream's membership is gone before the join: nothing stale stays behind
    const b = joinedRoom();
    b.sessionReplaced(PHONE, 2000);
    expect(b.rooms()[0]?.sessions).toEqual([]);
    expect(b.rooms()[0]?.idleSince).toBe(2000); // until the new stream joins, the idle clock runs
    b.fromSession(PHONE, join(ROOM, "alice"), 2001);
    expect(b.rooms()[0]?.idleSince).toBeUndefined();
  });

  it("a replaced stream that was waiting for the account's join stops waiting; the new stream's join waits in its place", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice", { id: "old" }), 1000);
    a.accountSessionUp(1000);
    a.sessionReplaced(PHONE, 1001);
    expect(a.rooms()[0]?.waiting).toEqual([]);
    expect(upstream(a.fromSession(PHONE, join(ROOM, "alice", { id: "new" }), 1002))).toEqual([]);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1003);
    const self = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1004);
    expect(sent(self, PHONE).find((p) => codes(p).includes("110"))?.attrs.id).toBe("new");
  });

  it("other sessions keep the room; the aggregate follows the sessions left", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice", { show: "dnd" }), 1500);
    const acts = a.sessionReplaced(PHONE, 2000);
    expect(upstream(acts).map((p) => p.getChildText("show"))).toEqual(["dnd"]);
  });

  it("the old stream's relayed IQs end with it: the occupant waiting on it gets an error", () => {
    const a = joinedRoom();
    a.fromRoom(x(`<iq type='get' id='q' from='${ROOM}/bob' to='${ACCOUNT_SESSION}'><query xmlns='jabber:iq:version'/></iq>`), 2000);
    const acts = a.sessionReplaced(PHONE, 2001);
    expect(kinds(acts)).toEqual(["toRoomUpstream"]);
    expect(upstream(acts)[0]?.attrs).toMatchObject({ type: "error", id: "q", to: `${ROOM}/bob` });
  });
});

describe("away presence when the last session is gone without a leave (awayPresence)", () => {
  it("default xa: status and caps of the last aggregate kept, <show/> replaced; back to the aggregate on the next join", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, x(`<presence to='${ROOM}/alice'><show>chat</show><status>here</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/><x xmlns='http://jabber.org/protocol/muc'/></presence>`), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1001);
    const gone = upstream(a.sessionGone(PHONE, 2000));
    expect(gone).toHaveLength(1);
    expect(gone[0]!.attrs).toEqual({ to: `${ROOM}/alice` });
    expect(gone[0]!.getChildren("show").map((s) => s.getText())).toEqual(["xa"]);
    expect(gone[0]!.getChildText("status")).toBe("here");
    expect(gone[0]!.getChild("c", "http://jabber.org/protocol/caps")).toBeTruthy();
    expect(gone[0]!.getChild("x")).toBeUndefined();
    const back = upstream(a.fromSession(PHONE, join(ROOM, "alice", { show: "chat" }), 3000));
    expect(back.map((p) => p.getChildText("show"))).toEqual(["chat"]);
  });

  it("away: <show>away</show>; keep: nothing is sent", () => {
    expect(upstream(joinedRoom({ awayPresence: "away" }).sessionGone(PHONE, 2000)).map((p) => p.getChildText("show"))).toEqual(["away"]);
    expect(joinedRoom({ awayPresence: "keep" }).sessionGone(PHONE, 2000)).toEqual([]);
  });

  it("only when the last joined session goes; an explicit leave is a leave, not away", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice"), 1500);
    expect(upstream(a.sessionGone(LAPTOP, 1600))).toEqual([]); // phone still there: aggregate unchanged
    const leave = a.fromSession(PHONE, x(`<presence type='unavailable' to='${ROOM}/alice'/>`), 1700);
    expect(upstream(leave).map((p) => p.attrs.type)).toEqual(["unavailable"]);
  });

  it("already xa: nothing new is sent", () => {
    const a = joinedRoom();
    a.fromSession(PHONE, x(`<presence to='${ROOM}/alice'><show>xa</show></presence>`), 1500);
    expect(a.sessionGone(PHONE, 2000)).toEqual([]);
  });

  it("a rejoin after the account session dropped while nobody was there keeps announcing the away presence", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 2000);
    a.accountSessionDown(3000);
    const rejoin = upstream(a.accountSessionUp(4000));
    expect(rejoin[0]?.getChild("x", "http://jabber.org/protocol/muc")).toBeTruthy();
    expect(rejoin[0]?.getChildText("show")).toBe("xa");
  });

  it("a session waiting for the account's join going away sends nothing (the room was never announced as joined)", () => {
    const a = new RoomMachine(ALICE);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    expect(a.sessionGone(PHONE, 1001)).toEqual([]);
  });
});
