import { describe, expect, it } from "vitest";
import { sessionXml, type Action } from "./actions.js";
import { RoomMachine } from "./room-machine.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, groupchat, iso, join, joinedRoom, selfPresence, sent, subject, x } from "./test-kit.js";

const bytes = (xml: string): Buffer => Buffer.from(xml);
const xmlFor = (actions: Action[], session: string): string[] =>
  actions.flatMap((a) => (a.kind === "toSession" && a.session === session ? [sessionXml(a)] : []));

describe("the room fast path (fromRoomBytes)", () => {
  it("fans a live groupchat message out as the server's own bytes, `to` spliced, and keeps it for history", () => {
    const m = joinedRoom();
    m.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1010);
    const raw = `<message from="${ROOM}/bob"  type="groupchat" to="${ACCOUNT_SESSION}" id="m1"><body>a &amp; b</body><stanza-id xmlns="urn:xmpp:sid:0" by="${ROOM}" id="s1"/></message>`;
    const acts = m.fromRoomBytes(bytes(raw), 2000)!;
    expect(acts).toBeDefined();
    expect(xmlFor(acts, PHONE)).toEqual([raw.replace(ACCOUNT_SESSION, PHONE)]);
    expect(xmlFor(acts, LAPTOP)).toEqual([raw.replace(ACCOUNT_SESSION, LAPTOP)]);
    expect(sent(acts, PHONE)[0]!.getChildText("body")).toBe("a & b"); // the element is still there for who asks
    // a session joining later gets it from the buffer, with a delay stamped at its arrival
    const later = m.fromSession("alice@example.org/tablet", join(ROOM, "alice", { id: "j3" }), 3000);
    const replay = sent(later, "alice@example.org/tablet").filter((e) => e.name === "message" && e.getChildText("body") === "a & b");
    expect(replay).toHaveLength(1);
    expect(replay[0]!.getChild("delay", "urn:xmpp:delay")?.attrs.stamp).toBe(iso(2000));
  });

  it("escapes the session's JID in the quote style of the server's bytes", () => {
    const m = joinedRoom();
    const raw = `<message from='${ROOM}/bob' type='groupchat' to='${ACCOUNT_SESSION}'><body>x</body></message>`;
    const acts = m.fromRoomBytes(bytes(raw), 2000)!;
    expect(xmlFor(acts, PHONE)).toEqual([`<message from='${ROOM}/bob' type='groupchat' to='${PHONE}'><body>x</body></message>`]);
  });

  it("does not keep a no-store message (XEP-0334) but still delivers it", () => {
    const m = joinedRoom();
    const before = m.rooms()[0]!.buffered;
    const acts = m.fromRoomBytes(bytes(`<message from='${ROOM}/bob' type='groupchat' to='${ACCOUNT_SESSION}'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>`), 2000)!;
    expect(sent(acts, PHONE)).toHaveLength(1);
    expect(m.rooms()[0]!.buffered).toBe(before);
    // a chat state (no body) is delivered, not buffered
    const cs = m.fromRoomBytes(bytes(`<message from='${ROOM}/bob' type='groupchat' to='${ACCOUNT_SESSION}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`), 2001)!;
    expect(sent(cs, PHONE)).toHaveLength(1);
    expect(m.rooms()[0]!.buffered).toBe(before);
  });

  it("leaves to the element path what needs the element", () => {
    const m = joinedRoom();
    const from = `from='${ROOM}/bob' to='${ACCOUNT_SESSION}'`;
    const cases = [
      `<message ${from} type='chat'><body>pm</body></message>`, // a PM: held-PM rules
      `<message ${from}><body>no type</body></message>`,
      `<message ${from} type='error' id='e'><error type='cancel'/></message>`,
      subject(ROOM, "bob", ACCOUNT_SESSION, "new").toString(),
      `<message ${from} type='groupchat'><body>old</body><delay xmlns='urn:xmpp:delay' stamp='${iso(1)}'/></message>`,
      `<message ${from} type='groupchat'><body>x</body><h:no-store xmlns:h='urn:xmpp:hints'/></message>`,
      `<message from='${ROOM}/b&#111;b' to='${ACCOUNT_SESSION}' type='groupchat'><body>ref</body></message>`,
      `<message from='other@conference.example.org/bob' to='${ACCOUNT_SESSION}' type='groupchat'><body>not our room</body></message>`,
      `<message from='${ROOM}/bob' to='${ACCOUNT_SESSION.replace("abc", "zzz")}' type='groupchat'><body>another resource</body></message>`,
      `<message from='${ROOM}/bob' to='${ACCOUNT_SESSION}' type='groupchat' xmlns='urn:other'><body>odd ns</body></message>`,
    ];
    for (const c of cases) expect(m.fromRoomBytes(bytes(c), 2000), c).toBeUndefined();
  });

  it("leaves the first join's history to the element path until the subject ends it (§7.2.16)", () => {
    const m = new RoomMachine(ALICE);
    m.setAccountSessionJid(ACCOUNT_SESSION);
    m.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
    m.accountSessionUp(1000);
    m.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION), 1001);
    const live = groupchat(ROOM, "bob", ACCOUNT_SESSION, "during the join").toString();
    expect(m.fromRoomBytes(bytes(live), 1002)).toBeUndefined(); // the element path releases the held history first
    m.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "s"), 1003);
    expect(m.fromRoomBytes(bytes(live), 1004)).toBeDefined();
  });

  it("waits for the element path while the first join's history is held, and after a rejoin de-duplicates against what it kept", () => {
    const m = joinedRoom();
    // kept by the fast path, key not computed yet
    const live = groupchat(ROOM, "bob", ACCOUNT_SESSION, "live one", { id: "l1" });
    expect(m.fromRoomBytes(bytes(live.toString()), 2000)).toBeDefined();
    m.accountSessionDown(2100);
    m.accountSessionUp(2200);
    // the rejoin: self-presence, then the room replays its history since, overlapping what we saw
    expect(m.fromRoomBytes(bytes(live.toString()), 2300)).toBeUndefined(); // mid-rejoin: element path
    m.fromRoom(x(`<presence from='${ROOM}/alice' to='${ACCOUNT_SESSION}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x></presence>`), 2301);
    const replayed = groupchat(ROOM, "bob", ACCOUNT_SESSION, "live one", { id: "l1", stamp: iso(2000) });
    expect(sent(m.fromRoom(replayed, 2302), PHONE)).toHaveLength(0); // already delivered live: dropped
    const missed = groupchat(ROOM, "bob", ACCOUNT_SESSION, "missed", { id: "l2", stamp: iso(2150) });
    expect(sent(m.fromRoom(missed, 2303), PHONE)).toHaveLength(1);
  });
});
