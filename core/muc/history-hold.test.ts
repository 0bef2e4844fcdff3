import { describe, expect, it } from "vitest";
import { RoomMachine } from "./room-machine.js";
import { HistoryBuffer, utf8Length } from "./history.js";
import {
  ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, TABLET, delayStamp, groupchat, join, occupant, selfPresence, sent, subject, upstream, x,
} from "./test-kit.js";

/** Issue 10 §3: history must not depend on which client joined first (XEP-0045 §7.2.13-§7.2.15). */

function stamp(n: number): string {
  return new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString();
}

/** Phone (maxchars=0, like Conversations) and laptop (maxstanzas=2, like Gajim) wait on the first join. */
function twoWaiting(opts: { historyHoldMs?: number } = {}): RoomMachine {
  const a = new RoomMachine(ALICE, opts);
  a.setAccountSessionJid(ACCOUNT_SESSION);
  const j = a.fromSession(PHONE, join(ROOM, "alice", { id: "j1", history: "<history maxchars='0'/>" }), 1000);
  expect(upstream(j)[0]?.getChild("x", "http://jabber.org/protocol/muc")?.getChild("history")?.attrs).toEqual({ maxstanzas: "200" });
  a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2", history: "<history maxstanzas='2'/>" }), 1000);
  a.accountSessionUp(1000);
  a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 1001);
  a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
  for (let i = 1; i <= 3; i++) expect(a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, `h${i}`, { id: `h${i}`, stamp: stamp(i) }), 1003)).toEqual([]);
  return a;
}

function bodies(els: { getChildText(n: string): string | null }[]): (string | null)[] {
  return els.map((e) => e.getChildText("body") ?? `subject:${e.getChildText("subject") ?? ""}`);
}

describe("first join's history: each waiting session gets its own slice (§7.2.15)", () => {
  it("the subject ends the held history: maxchars=0 gets none, maxstanzas=2 the last two, both then the subject", () => {
    const a = twoWaiting();
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Topic"), 1004);
    expect(bodies(sent(end, PHONE))).toEqual(["subject:Topic"]);
    const lap = sent(end, LAPTOP);
    expect(bodies(lap)).toEqual(["h2", "h3", "subject:Topic"]);
    expect(delayStamp(lap[0]!)).toBe(stamp(2));
    expect(lap[0]?.attrs.to).toBe(LAPTOP);
    // a later session asking for more gets all three from the buffer, the subject last
    const later = a.fromSession(TABLET, join(ROOM, "alice", { id: "j3", history: "<history maxstanzas='10'/>" }), 1005);
    expect(bodies(sent(later, TABLET).filter((e) => e.name === "message"))).toEqual(["h1", "h2", "h3", "subject:Topic"]);
  });

  it("a first live message ends the held history: slices first, then the live message", () => {
    const a = twoWaiting();
    const live = a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "live", { id: "l1" }), 1004);
    expect(bodies(sent(live, PHONE))).toEqual(["live"]);
    expect(bodies(sent(live, LAPTOP))).toEqual(["h2", "h3", "live"]);
    // the subject coming later is just the subject
    const subj = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 1005);
    expect(bodies(sent(subj, LAPTOP))).toEqual(["subject:T"]);
  });

  it("a room that never sends the subject: the hold ends on tick after historyHoldMs", () => {
    const a = twoWaiting({ historyHoldMs: 5000 });
    expect(a.tick(1002 + 4999)).toEqual([]);
    const t = a.tick(1002 + 5000);
    expect(bodies(sent(t, LAPTOP))).toEqual(["h2", "h3"]);
    expect(sent(t, PHONE)).toEqual([]);
    expect(a.tick(1002 + 10_000)).toEqual([]); // released once
  });

  it("a session joining during the hold gets occupants and self-presence now, its slice and the subject when it ends", () => {
    const a = twoWaiting();
    const now = a.fromSession(TABLET, join(ROOM, "alice", { id: "j3", history: "<history maxstanzas='1'/>" }), 1003);
    expect(sent(now, TABLET).map((e) => e.name)).toEqual(["presence", "presence"]);
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Topic"), 1004);
    expect(bodies(sent(end, TABLET))).toEqual(["h3", "subject:Topic"]);
  });

  it("a session that left during the hold gets nothing when it ends", () => {
    const a = twoWaiting();
    a.fromSession(LAPTOP, x(`<presence to='${ROOM}/alice' type='unavailable'/>`), 1003);
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Topic"), 1004);
    expect(sent(end, LAPTOP)).toEqual([]);
    expect(bodies(sent(end, PHONE))).toEqual(["subject:Topic"]);
  });

  it("the account session dropping during the hold releases it; the rejoin's history then comes live", () => {
    const a = twoWaiting();
    const down = a.accountSessionDown(1004);
    expect(bodies(sent(down, LAPTOP))).toEqual(["h2", "h3"]);
    expect(sent(down, PHONE)).toEqual([]);
    a.accountSessionUp(2000);
    a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION), 2001);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 2002);
    const missed = a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed", { id: "m1", stamp: stamp(9) }), 2003);
    expect(bodies(sent(missed, PHONE))).toEqual(["missed"]);
    expect(bodies(sent(missed, LAPTOP))).toEqual(["missed"]);
  });

  it("no session sent <history/>: each gets the default (20) from the buffer", () => {
    const a = new RoomMachine(ALICE, { defaultHistoryStanzas: 2 });
    a.setAccountSessionJid(ACCOUNT_SESSION);
    a.fromSession(PHONE, join(ROOM, "alice"), 1000);
    a.accountSessionUp(1000);
    a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1002);
    for (let i = 1; i <= 3; i++) a.fromRoom(groupchat(ROOM, "bob", ACCOUNT_SESSION, `h${i}`, { stamp: stamp(i) }), 1003);
    const end = a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "T"), 1004);
    expect(bodies(sent(end, PHONE))).toEqual(["h2", "h3", "subject:T"]);
  });
});

describe("HistoryBuffer: what the room would replay, bounded in count and bytes", () => {
  const msg = (body: string, extra = ""): ReturnType<typeof x> =>
    x(`<message type='groupchat' from='${ROOM}/bob' to='${ACCOUNT_SESSION}' id='${body}'><body>${body}</body>${extra}</message>`);

  it("leaves out messages with XEP-0334 <no-store/> or <no-permanent-store/>", () => {
    const b = new HistoryBuffer(10, ROOM);
    expect(b.push(msg("a", "<no-store xmlns='urn:xmpp:hints'/>"), 1)).toBe(false);
    expect(b.push(msg("b", "<no-permanent-store xmlns='urn:xmpp:hints'/>"), 2)).toBe(false);
    expect(b.push(msg("c", "<no-copy xmlns='urn:xmpp:hints'/>"), 3)).toBe(true);
    expect(b.size).toBe(1);
    expect(b.full).toBe(false);
  });

  it("drops the oldest when the byte bound is passed, and refuses a message larger than the bound", () => {
    const one = utf8Length(msg("aaaa").toString());
    const b = new HistoryBuffer(100, ROOM, one * 2);
    b.push(msg("aaaa"), 1);
    b.push(msg("bbbb"), 2);
    expect(b.size).toBe(2);
    expect(b.full).toBe(false);
    b.push(msg("cccc"), 3);
    expect(b.size).toBe(2);
    expect(b.bytes).toBe(one * 2);
    expect(b.full).toBe(true);
    expect(b.oldest()?.stanza.getChildText("body")).toBe("bbbb");
    expect(b.push(msg("x".repeat(one * 2)), 4)).toBe(false);
    expect(b.size).toBe(2);
  });

  it("counts UTF-8 bytes", () => {
    expect(utf8Length("aé€😀")).toBe(1 + 2 + 3 + 4);
  });
});
