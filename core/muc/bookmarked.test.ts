import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, codes, groupchat, iso, join, joinedRoom, kinds, occupant, selfPresence, sent, subject, upstream, x } from "./test-kit.js";

/** A machine whose account session is up, with no room yet. */
function upMachine(opts: ConstructorParameters<typeof RoomMachine>[1] = {}): RoomMachine {
  const a = new RoomMachine(ALICE, opts);
  a.setAccountSessionJid(ACCOUNT_SESSION);
  return a;
}

describe("bookmark joins (docs/architecture.md §4.6)", () => {
  it("joins with no session: opens the account session, bookmark nick and password, away presence, as much history as the buffer holds", () => {
    const a = new RoomMachine(ALICE, { historyLimit: 50 });
    const out = a.bookmarkJoin(ROOM, "ali", "secret", undefined, 1000);
    expect(kinds(out)).toEqual(["openAccountSession", "toRoomUpstream"]);
    const j = upstream(out)[0]!;
    expect(j.attrs.to).toBe(`${ROOM}/ali`);
    expect(j.getChildText("show")).toBe("xa");
    const mx = j.getChild("x", "http://jabber.org/protocol/muc")!;
    expect(mx.getChildText("password")).toBe("secret");
    expect(mx.getChild("history")!.attrs).toEqual({ maxstanzas: "50" });
    a.setAccountSessionJid(ACCOUNT_SESSION);
    expect(upstream(a.accountSessionUp(1001))).toEqual([]); // the queued join goes out with the flush
    expect(a.rooms()[0]).toMatchObject({ room: ROOM, source: "bookmark", state: "joining", sessions: [] });
  });

  it("asks <history since> the last message seen (a proxy restart)", () => {
    const a = upMachine();
    a.accountSessionUp(0);
    const j = upstream(a.bookmarkJoin(ROOM, "alice", undefined, 5000, 9000))[0]!;
    expect(j.getChild("x", "http://jabber.org/protocol/muc")!.getChild("history")!.attrs.since).toBe(iso(5000));
    expect(j.getChild("x", "http://jabber.org/protocol/muc")!.getChild("password")).toBeUndefined();
  });

  it("a session joining later is answered from state with what came before it", () => {
    const a = upMachine();
    a.accountSessionUp(0);
    a.bookmarkJoin(ROOM, "alice", undefined, undefined, 1000);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1001);
    expect(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002)).toEqual([]);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "old", { stamp: iso(500) }), 1003);
    a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "S"), 1004);
    a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "while nobody was there"), 2000);
    const out = a.fromSession(PHONE, join(ROOM, "alice", { id: "j", history: "<history maxstanzas='10'/>" }), 3000);
    const got = sent(out, PHONE);
    expect(got.map((s) => s.getChildText("body") ?? s.name)).toEqual(["presence", "presence", "old", "while nobody was there", "message"]);
    expect(codes(got[1]!)).toContain("110");
    // the session's presence replaces the away presence
    expect(upstream(out).map((p) => p.getChildText("show"))).toEqual([null]);
    expect(a.rooms()[0]).toMatchObject({ source: "bookmark", lastSeen: 2000, sessions: [PHONE] });
  });

  it("a room the account is in already only becomes bookmarked; no second join", () => {
    const a = joinedRoom();
    expect(a.bookmarkJoin(ROOM, "other", undefined, undefined, 2000)).toEqual([]);
    expect(a.rooms()[0]!.source).toBe("bookmark");
  });

  it("ignores a malformed room or an empty nick", () => {
    const a = upMachine();
    expect(a.bookmarkJoin("not a jid@", "n", undefined, undefined, 0)).toEqual([]);
    expect(a.bookmarkJoin(ROOM, "", undefined, undefined, 0)).toEqual([]);
  });

  it("is refused when the queue for the connecting account session is full", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 0 });
    expect(a.bookmarkJoin(ROOM, "alice", undefined, undefined, 0)).toEqual([{ kind: "stanzaRefused", room: ROOM, code: "ACCOUNT_OUTBOX_FULL" }]);
    expect(a.hasState()).toBe(false);
  });

  it("a bookmarked room is held with no session: no idle leave, and the last session's leave is not the account's", () => {
    const a = joinedRoom({ idleLeaveMs: 1000 });
    a.bookmarkJoin(ROOM, "alice", undefined, undefined, 1100);
    const out = a.fromSession(PHONE, x(`<presence to='${ROOM}/alice' type='unavailable' id='l'/>`), 2000);
    expect(sent(out, PHONE).map((p) => p.attrs.type)).toEqual(["unavailable"]);
    expect(upstream(out).map((p) => [p.attrs.type, p.getChildText("show")])).toEqual([[undefined, "xa"]]);
    expect(kinds(a.tick(100_000))).toEqual([]);
    expect(a.rooms()[0]).toMatchObject({ sessions: [], source: "bookmark" });
  });

  it("bookmark removed: every session gets its own leave (110, unavailable), the account leaves, the account session may close", () => {
    const a = joinedRoom();
    a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1100);
    a.bookmarkJoin(ROOM, "alice", undefined, undefined, 1200);
    const out = a.bookmarkLeave(ROOM.toUpperCase());
    for (const s of [PHONE, LAPTOP]) {
      const [p] = sent(out, s);
      expect(p!.attrs).toMatchObject({ type: "unavailable", from: `${ROOM}/alice`, to: s });
      expect(codes(p!)).toEqual(["110"]);
    }
    expect(upstream(out).map((p) => [p.attrs.type, p.attrs.to])).toEqual([["unavailable", `${ROOM}/alice`]]);
    expect(out).toContainEqual({ kind: "roomLeft", room: ROOM, reason: "bookmark-removed" });
    expect(kinds(out)).toContain("closeAccountSession");
    expect(a.hasState()).toBe(false);
    // the echo of that leave is swallowed
    expect(a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, [], { type: "unavailable" }), 1300)).toEqual([]);
    expect(a.bookmarkLeave(ROOM)).toEqual([]);
  });

  it("bookmark removed while the join is pending: a waiting session hears the leave too", () => {
    const a = upMachine();
    a.accountSessionUp(0);
    a.bookmarkJoin(ROOM, "alice", undefined, undefined, 1000);
    a.fromSession(PHONE, join(ROOM, "al", { id: "j" }), 1001);
    const out = a.bookmarkLeave(ROOM);
    expect(sent(out, PHONE)[0]!.attrs).toMatchObject({ type: "unavailable", from: `${ROOM}/al` });
    expect(a.hasState()).toBe(false);
  });
});
