import { describe, expect, it } from "vitest";
import type { Element } from "ltx";
import { ACCOUNT_SESSION, ALICE, PHONE, ROOM, join, joinedRoom, kinds, selfPresence, sent, upstream, x } from "./test-kit.js";
import { RoomMachine } from "./room-machine.js";

/** Issue 10 §7: what sessions may queue is bounded; beyond it they get resource-constraint (RFC 6120 §8.3.3.15). */

function msg(id: string, body = "hi"): Element {
  return x(`<message to='${ROOM}' type='groupchat' id='${id}'><body>${body}</body></message>`);
}
function iq(id: string): Element {
  return x(`<iq to='${ROOM}/bob' type='get' id='${id}'><query xmlns='jabber:iq:version'/></iq>`);
}
function condition(el: Element | undefined): { type: unknown; name: string | undefined } {
  const e = el?.getChild("error");
  const names = (e?.children ?? []).flatMap((c) => (typeof c === "string" ? [] : [(c as Element).name]));
  return { type: e?.attrs.type, name: names.find((n) => n !== "text") };
}

describe("room outbox while the account is out of the room", () => {
  it("count bound: the session's next stanza is refused with resource-constraint (wait), its id and the room as from", () => {
    const a = joinedRoom({ maxOutboxStanzas: 2 });
    a.accountSessionDown(2000);
    expect(a.fromSession(PHONE, msg("m1"), 2001)).toEqual([]);
    expect(a.fromSession(PHONE, msg("m2"), 2002)).toEqual([]);
    const refused = a.fromSession(PHONE, msg("m3"), 2003);
    expect(kinds(refused)).toEqual(["stanzaRefused", "toSession"]);
    expect(refused[0]).toMatchObject({ code: "ROOM_OUTBOX_FULL", room: ROOM });
    const [err] = sent(refused, PHONE);
    expect(err?.attrs).toMatchObject({ type: "error", id: "m3", from: ROOM, to: PHONE });
    expect(condition(err)).toEqual({ type: "wait", name: "resource-constraint" });
    // the held two follow the rejoin; the outbox is empty again afterwards
    const ups = upstream(a.accountSessionUp(3000));
    expect(ups.map((u) => u.attrs.id).slice(1)).toEqual(["m1", "m2"]);
    a.accountSessionDown(4000);
    expect(a.fromSession(PHONE, msg("m4"), 4001)).toEqual([]);
    expect(a.fromSession(PHONE, msg("m5"), 4002)).toEqual([]);
  });

  it("byte bound", () => {
    const a = joinedRoom({ maxOutboxBytes: 200 });
    a.accountSessionDown(2000);
    expect(a.fromSession(PHONE, msg("m1"), 2001)).toEqual([]);
    expect(kinds(a.fromSession(PHONE, msg("m2", "x".repeat(200)), 2002))).toEqual(["stanzaRefused", "toSession"]);
  });

  it("a nick change that does not fit is refused too, and no rename is left pending", () => {
    const a = joinedRoom({ maxOutboxStanzas: 1 });
    a.accountSessionDown(2000);
    a.fromSession(PHONE, msg("m1"), 2001);
    const r = a.fromSession(PHONE, x(`<presence to='${ROOM}/alice2' id='n1'/>`), 2002);
    const [err] = sent(r, PHONE);
    expect(err?.name).toBe("presence");
    expect(err?.attrs).toMatchObject({ type: "error", id: "n1" });
    expect(condition(err).name).toBe("resource-constraint");
  });

  it("IQs that do not fit are refused and leave no pending entry", () => {
    const a = joinedRoom({ maxOutboxStanzas: 1, maxPendingIqs: 5 });
    a.accountSessionDown(2000);
    expect(a.fromSession(PHONE, iq("q1"), 2001)).toEqual([]);
    const r = a.fromSession(PHONE, iq("q2"), 2002);
    expect(sent(r, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "q2", from: `${ROOM}/bob` });
    // only q1 is pending: the upstream loss answers it alone
    expect(sent(a.accountSessionDown(2003), PHONE).map((e) => e.attrs.id)).toEqual(["q1"]);
  });
});

describe("pending IQs per account", () => {
  it("a session's IQ over the bound gets resource-constraint with its own id; a reply frees a slot", () => {
    const a = joinedRoom({ maxPendingIqs: 1 });
    const [up1] = upstream(a.fromSession(PHONE, iq("q1"), 2000));
    expect(up1).toBeDefined();
    const refused = a.fromSession(PHONE, iq("q2"), 2001);
    expect(refused[0]).toMatchObject({ kind: "stanzaRefused", code: "PENDING_IQS_FULL" });
    const [err] = sent(refused, PHONE);
    expect(err?.attrs).toMatchObject({ type: "error", id: "q2", to: PHONE });
    expect(condition(err)).toEqual({ type: "wait", name: "resource-constraint" });
    a.fromRoom(x(`<iq from='${ROOM}/bob' to='${ACCOUNT_SESSION}' type='result' id='${String(up1?.attrs.id)}'/>`), 2002);
    expect(upstream(a.fromSession(PHONE, iq("q3"), 2003))).toHaveLength(1);
  });

  it("an occupant's IQ to the account over the bound: resource-constraint back through the room (not a ghost-kick condition)", () => {
    const a = joinedRoom({ maxPendingIqs: 1 });
    a.fromSession(PHONE, iq("q1"), 2000);
    const r = a.fromRoom(x(`<iq from='${ROOM}/bob' to='${ACCOUNT_SESSION}' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>`), 2001);
    expect(kinds(r)).toEqual(["stanzaRefused", "toRoomUpstream"]);
    const [err] = upstream(r);
    expect(err?.attrs).toMatchObject({ type: "error", id: "v1", to: `${ROOM}/bob` });
    expect(condition(err)).toEqual({ type: "wait", name: "resource-constraint" });
  });
});

describe("the proxy's queue while the account session connects (issue 10 §7)", () => {
  const ROOM2 = "room2@conference.example.org";
  const ROOM3 = "room3@conference.example.org";

  it("count bound: a join of one more room is refused with resource-constraint (wait), its id, the MUC <x/>, and leaves no room behind", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 2 });
    expect(kinds(a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000))).toEqual(["openAccountSession", "toRoomUpstream"]);
    expect(kinds(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2" }), 1001))).toEqual(["toRoomUpstream"]);
    expect(a.accountOutboxSize().stanzas).toBe(2);
    const refused = a.fromSession(PHONE, join(ROOM3, "alice", { id: "j3" }), 1002);
    expect(kinds(refused)).toEqual(["stanzaRefused", "toSession"]);
    expect(refused[0]).toMatchObject({ code: "ACCOUNT_OUTBOX_FULL", room: ROOM3 });
    const [err] = sent(refused, PHONE);
    expect(err?.name).toBe("presence");
    expect(err?.attrs).toMatchObject({ type: "error", id: "j3", from: `${ROOM3}/alice`, to: PHONE });
    expect(condition(err)).toEqual({ type: "wait", name: "resource-constraint" });
    expect(err?.getChild("x", "http://jabber.org/protocol/muc")).toBeDefined();
    expect(a.knowsRoom(ROOM3)).toBe(false);
    // bound: the queue is flushed; the refused join, tried again, goes straight out
    a.setAccountSessionJid(ACCOUNT_SESSION);
    expect(upstream(a.accountSessionUp(2000))).toEqual([]); // both joins were already queued on this connection
    expect(a.accountOutboxSize()).toEqual({ stanzas: 0, bytes: 0 });
    const again = upstream(a.fromSession(PHONE, join(ROOM3, "alice", { id: "j3b" }), 2001));
    expect(again.map((u) => u.attrs.to)).toEqual([`${ROOM3}/alice`]);
  });

  it("byte bound", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxBytes: 400 });
    expect(kinds(a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000))).toEqual(["openAccountSession", "toRoomUpstream"]);
    const big = x(`<presence to='${ROOM2}/alice' id='j2'><status>${"x".repeat(400)}</status><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const refused = a.fromSession(PHONE, big, 1001);
    expect(refused[0]).toMatchObject({ kind: "stanzaRefused", code: "ACCOUNT_OUTBOX_FULL" });
    expect(kinds(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j3" }), 1002))).toEqual(["toRoomUpstream"]);
  });

  it("a first join too large for the queue opens no account session", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxBytes: 100 });
    const r = a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    expect(kinds(r)).toEqual(["stanzaRefused", "toSession"]);
    expect(a.hasState()).toBe(false);
    expect(a.upstreamState()).toBe("down");
  });

  it("the leave of a queued join is always queued (never refused), so join/leave cycles stay within twice the bound", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 2 });
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2" }), 1001);
    const left = a.fromSession(PHONE, x(`<presence to='${ROOM2}/alice' type='unavailable' id='l2'/>`), 1002);
    expect(upstream(left).map((u) => u.attrs.type)).toEqual(["unavailable"]);
    expect(a.accountOutboxSize().stanzas).toBe(3);
    expect(kinds(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2b" }), 1003))).toEqual(["stanzaRefused", "toSession"]);
  });

  it("emptied when the proxy discards its queue: account session lost, or closed (no rooms left)", () => {
    const a = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 1 });
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    expect(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2" }), 1001)[0]).toMatchObject({ code: "ACCOUNT_OUTBOX_FULL" });
    a.accountSessionDown(1002); // a failed or lost connection: the proxy drops what it held
    expect(a.accountOutboxSize().stanzas).toBe(0);
    expect(kinds(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2b" }), 1003))).toEqual(["toRoomUpstream"]);
    const b = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 2 });
    b.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    expect(kinds(b.fromSession(PHONE, x(`<presence to='${ROOM}/alice' type='unavailable'/>`), 1001))).toContain("closeAccountSession");
    expect(b.accountOutboxSize().stanzas).toBe(0);
  });

  it("during a reconnect: joins of new rooms count, stanzas for rooms being rejoined go to their own outbox", () => {
    const a = joinedRoom({ maxAccountOutboxStanzas: 1 });
    a.accountSessionDown(2000);
    expect(kinds(a.fromSession(PHONE, join(ROOM2, "alice", { id: "j2" }), 2001))).toEqual(["toRoomUpstream"]);
    expect(a.fromSession(PHONE, join(ROOM3, "alice", { id: "j3" }), 2002)[0]).toMatchObject({ code: "ACCOUNT_OUTBOX_FULL" });
    expect(a.fromSession(PHONE, msg("m1"), 2003)).toEqual([]); // held in ROOM's outbox, not refused
    const ups = upstream(a.accountSessionUp(3000));
    expect(ups.map((u) => u.attrs.id ?? u.name)).toContain("m1");
  });

  it("a session's stanza for a joined room while the account session is not online is bounded the same way", () => {
    // The proxy binds before it passes room stanzas, so this order does not happen there today;
    // the machine bounds what it emits while upstream ≠ up whatever the order.
    const a = new RoomMachine(ALICE, { maxAccountOutboxStanzas: 2 });
    a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1001);
    expect(upstream(a.fromSession(PHONE, msg("m1"), 1002))).toHaveLength(1);
    const refused = a.fromSession(PHONE, msg("m2"), 1003);
    expect(refused[0]).toMatchObject({ kind: "stanzaRefused", code: "ACCOUNT_OUTBOX_FULL" });
    expect(sent(refused, PHONE)[0]?.attrs).toMatchObject({ type: "error", id: "m2", from: ROOM });
  });
});
