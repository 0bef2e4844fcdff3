import { describe, expect, it } from "vitest";
import { ACCOUNT_SESSION, LAPTOP, PHONE, ROOM, delayStamp, join, joinedRoom, kinds, occupant, selfPresence, sent, subject, upstream, x } from "./test-kit.js";

/** Issue 10 §4: PMs to the account's occupant while every session is away (XEP-0045 §7.5). */

function pm(body: string | undefined, id: string, extra = ""): ReturnType<typeof x> {
  const b = body === undefined ? "" : `<body>${body}</body>`;
  return x(`<message type='chat' from='${ROOM}/bob' to='${ACCOUNT_SESSION}' id='${id}'>${b}${extra}<x xmlns='http://jabber.org/protocol/muc#user'/></message>`);
}

function errorOf(el: ReturnType<typeof x> | undefined): { type: unknown; condition: string | undefined } {
  const e = el?.getChild("error");
  return { type: e?.attrs.type, condition: e?.children.filter((c) => typeof c !== "string").map((c) => (c as { name: string }).name).find((n) => n !== "text") };
}

describe("PMs while no session is in the room", () => {
  it("are held, then delivered once with a delay from the account's server to the session back in the room", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 2000);
    expect(a.fromRoom(pm("one", "p1"), 3000)).toEqual([]);
    expect(a.fromRoom(pm("two", "p2"), 3001)).toEqual([]);
    expect(a.fromRoom(pm(undefined, "cs", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"), 3002)).toEqual([]); // chat state alone: nothing to keep
    const back = sent(a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2", history: "<history maxstanzas='0'/>" }), 4000), LAPTOP);
    const pms = back.filter((e) => e.attrs.type === "chat");
    expect(pms.map((e) => e.getChildText("body"))).toEqual(["one", "two"]);
    expect(pms[0]?.attrs).toMatchObject({ to: LAPTOP, from: `${ROOM}/bob`, id: "p1" });
    expect(pms[0]?.getChild("delay", "urn:xmpp:delay")?.attrs.from).toBe("example.org");
    expect(delayStamp(pms[0]!)).toBe(new Date(3000).toISOString());
    // after the subject (§7.2.3 sequence first)
    expect(back.findIndex((e) => e.getChild("subject") !== undefined)).toBeLessThan(back.indexOf(pms[0]!));
    // once: a second session joining gets none, the next PM goes live
    expect(sent(a.fromSession(PHONE, join(ROOM, "alice", { id: "j3", history: "<history maxstanzas='0'/>" }), 4001), PHONE).filter((e) => e.attrs.type === "chat")).toEqual([]);
    const live = a.fromRoom(pm("three", "p3"), 4002);
    expect(sent(live, PHONE)).toHaveLength(1);
    expect(sent(live, LAPTOP)).toHaveLength(1);
  });

  it("over the count bound: the sender gets resource-constraint (wait) through the room, with its id; counted", () => {
    const a = joinedRoom({ maxHeldPms: 1 });
    a.sessionGone(PHONE, 2000);
    expect(a.fromRoom(pm("one", "p1"), 3000)).toEqual([]);
    const refused = a.fromRoom(pm("two", "p2"), 3001);
    expect(kinds(refused)).toEqual(["toRoomUpstream", "heldPmRefused"]);
    const [err] = upstream(refused);
    expect(err?.attrs).toMatchObject({ type: "error", to: `${ROOM}/bob`, id: "p2" });
    expect(errorOf(err)).toEqual({ type: "wait", condition: "resource-constraint" });
    const back = sent(a.fromSession(LAPTOP, join(ROOM, "alice"), 4000), LAPTOP).filter((e) => e.attrs.type === "chat");
    expect(back.map((e) => e.getChildText("body"))).toEqual(["one"]);
  });

  it("over the byte bound: refused the same way", () => {
    const a = joinedRoom({ maxHeldPmBytes: 300 });
    a.sessionGone(PHONE, 2000);
    expect(a.fromRoom(pm("short", "p1"), 3000)).toEqual([]);
    expect(kinds(a.fromRoom(pm("x".repeat(300), "p2"), 3001))).toEqual(["toRoomUpstream", "heldPmRefused"]);
  });

  it("the account leaves the room first (idle leave): each sender is told (not-acceptable) before the leave", () => {
    const a = joinedRoom({ idleLeaveMs: 10_000 });
    a.sessionGone(PHONE, 2000);
    a.fromRoom(pm("one", "p1"), 3000);
    const ups = upstream(a.tick(2000 + 10_000));
    expect(ups.map((e) => e.name)).toEqual(["message", "presence"]);
    expect(ups[0]?.attrs).toMatchObject({ type: "error", to: `${ROOM}/bob`, id: "p1" });
    expect(errorOf(ups[0])).toEqual({ type: "cancel", condition: "not-acceptable" });
    expect(ups[1]?.attrs.type).toBe("unavailable");
  });

  it("the account removed from the room (kick): the held PMs are reported lost, not silently dropped", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 2000);
    a.fromRoom(pm("one", "p1"), 3000);
    const kicked = a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["307"], { type: "unavailable", role: "none" }), 3001);
    expect(kicked.find((k) => k.kind === "roomLeft")).toMatchObject({ reason: "removed", heldPmsLost: 1 });
    expect(upstream(kicked)).toEqual([]);
  });

  it("a session back through the account's rejoin gets them once the rejoin has ended", () => {
    const a = joinedRoom();
    a.sessionGone(PHONE, 2000);
    a.fromRoom(pm("one", "p1"), 3000);
    a.accountSessionDown(3500);
    a.accountSessionUp(4000);
    expect(a.fromSession(LAPTOP, join(ROOM, "alice"), 4001)).toEqual([]); // waits for the rejoin
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { role: "moderator", affiliation: "owner" }), 4002);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 4003);
    const end = sent(a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Hello"), 4004), LAPTOP);
    expect(end.filter((e) => e.attrs.type === "chat").map((e) => e.getChildText("body"))).toEqual(["one"]);
  });
});

describe("a PM a session never acknowledged (XEP-0198 expiry, docs/architecture.md §8.4)", () => {
  it("the only session in the room: held, then delivered once with a delay to the next session back", () => {
    const a = joinedRoom();
    const delivered = sent(a.fromRoom(pm("lost?", "p1"), 3000), PHONE);
    expect(delivered).toHaveLength(1);
    const r = a.undeliveredPm(PHONE, delivered[0]!, 3500);
    expect(r).toEqual({ handled: true, actions: [] });
    a.sessionGone(PHONE, 3500);
    const back = sent(a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2", history: "<history maxstanzas='0'/>" }), 4000), LAPTOP);
    const pms = back.filter((e) => e.attrs.type === "chat");
    expect(pms.map((e) => e.getChildText("body"))).toEqual(["lost?"]);
    expect(pms[0]?.attrs).toMatchObject({ to: LAPTOP, from: `${ROOM}/bob`, id: "p1" });
    expect(delayStamp(pms[0]!)).toBe(new Date(3500).toISOString());
  });

  it("another session of the account is joined: it has its own copy, nothing is held", () => {
    const a = joinedRoom();
    sent(a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2", history: "<history maxstanzas='0'/>" }), 2000), LAPTOP);
    const live = a.fromRoom(pm("both", "p1"), 3000);
    expect(sent(live, LAPTOP)).toHaveLength(1);
    expect(a.undeliveredPm(PHONE, sent(live, PHONE)[0]!, 3500)).toEqual({ handled: true, actions: [] });
    a.sessionGone(PHONE, 3500);
    const again = sent(a.fromSession(PHONE, join(ROOM, "alice", { id: "j3", history: "<history maxstanzas='0'/>" }), 4000), PHONE);
    expect(again.filter((e) => e.attrs.type === "chat")).toEqual([]);
  });

  it("not a PM of a room of this account (a groupchat, a chat state, an unknown room): not handled", () => {
    const a = joinedRoom();
    expect(a.undeliveredPm(PHONE, pm(undefined, "cs", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"), 3000).handled).toBe(false);
    expect(a.undeliveredPm(PHONE, x(`<message type='chat' from='other@conference.example.org/bob' to='${PHONE}' id='o1'><body>hi</body></message>`), 3000).handled).toBe(false);
    expect(a.undeliveredPm(PHONE, x(`<message type='groupchat' from='${ROOM}/bob' to='${PHONE}' id='g1'><body>hi</body></message>`), 3000).handled).toBe(false);
  });

  it("over the bound: the sender is told through the room, as for any held PM", () => {
    const a = joinedRoom({ maxHeldPms: 0 });
    const delivered = sent(a.fromRoom(pm("one", "p1"), 3000), PHONE)[0]!;
    const r = a.undeliveredPm(PHONE, delivered, 3500);
    expect(r.handled).toBe(true);
    expect(kinds(r.actions)).toEqual(["toRoomUpstream", "heldPmRefused"]);
    expect(upstream(r.actions)[0]?.attrs).toMatchObject({ type: "error", to: `${ROOM}/bob`, id: "p1" });
  });
});
