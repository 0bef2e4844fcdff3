import { describe, expect, it } from "vitest";
import { HistoryBuffer, ensureDelay, messageKey, parseHistoryRequest } from "./history.js";
import { availabilityOf, mostAvailable, presenceToRoom } from "./presence-aggregate.js";
import { classifySelfUnavailable } from "./removal.js";
import { editStatusCodes, statusCodes } from "./status-codes.js";
import { ROOM, codes, groupchat, iso, x } from "./test-kit.js";

describe("status codes and removal classification (§16.6)", () => {
  it("reads and edits codes", () => {
    const p = x(`<presence><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/><status code='201'/></x></presence>`);
    expect([...statusCodes(p)]).toEqual(["110", "201"]);
    editStatusCodes(p, ["210", "110"], ["201"]);
    expect(codes(p)).toEqual(["110", "210"]);
    const bare = editStatusCodes(x("<presence/>"), ["110"], []);
    expect(codes(bare)).toEqual(["110"]);
  });
  const un = (inner: string) => x(`<presence type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>${inner}<status code='110'/></x></presence>`);
  it.each(["301", "307", "321", "322", "332", "333"])("%s is a removal", (c) => expect(classifySelfUnavailable(un(`<status code='${c}'/>`))).toBe("removed"));
  it("destroy is a removal, 303 is a nick change, bare unavailable is 'left'", () => {
    expect(classifySelfUnavailable(un("<destroy/>"))).toBe("removed");
    expect(classifySelfUnavailable(un("<status code='303'/>"))).toBe("nick-change");
    expect(classifySelfUnavailable(un(""))).toBe("left");
  });
});

describe("history (§7.2.15, XEP-0203)", () => {
  it("parses the request attributes and ignores garbage", () => {
    const mx = x(`<x xmlns='http://jabber.org/protocol/muc'><history maxchars='10' maxstanzas='x' seconds='5' since='2024-01-02T03:04:05Z'/></x>`);
    expect(parseHistoryRequest(mx)).toEqual({ maxchars: 10, seconds: 5, since: Date.parse("2024-01-02T03:04:05Z") });
    expect(parseHistoryRequest(x(`<x xmlns='http://jabber.org/protocol/muc'/>`))).toBeUndefined();
  });
  it("keys on the room's stanza-id, else sender+id+body", () => {
    const a = groupchat(ROOM, "bob", "a@b/c", "hi", { id: "1", sid: "S" });
    expect(messageKey(a, ROOM)).toBe("sid:S");
    expect(messageKey(groupchat(ROOM, "bob", "a@b/c", "hi", { id: "1" }), ROOM)).toBe(messageKey(groupchat(ROOM, "bob", "x@y/z", "hi", { id: "1", stamp: iso(0) }), ROOM));
  });
  it("uses the room's delay stamp as the message time and keeps an existing delay", () => {
    const buf = new HistoryBuffer(10, ROOM);
    buf.push(groupchat(ROOM, "bob", "a@b/c", "old", { stamp: iso(5000) }), 99_000);
    expect(buf.oldest()?.time).toBe(5000);
    const el = ensureDelay(groupchat(ROOM, "bob", "a@b/c", "old", { stamp: iso(5000) }), ROOM, 1);
    expect(el.getChildren("delay", "urn:xmpp:delay")).toHaveLength(1);
  });
  it("evicts the oldest beyond the limit and forgets their keys", () => {
    const buf = new HistoryBuffer(2, ROOM);
    const m = (b: string) => groupchat(ROOM, "bob", "a@b/c", b, { id: b });
    buf.push(m("1"), 1);
    buf.push(m("2"), 2);
    buf.push(m("3"), 3);
    expect(buf.size).toBe(2);
    expect(buf.has(m("1"))).toBe(false);
    expect(buf.has(m("3"))).toBe(true);
  });
  it("limit 0 keeps nothing", () => {
    const buf = new HistoryBuffer(0, ROOM);
    buf.push(groupchat(ROOM, "bob", "a@b/c", "x"), 1);
    expect(buf.size).toBe(0);
  });
});

describe("presence aggregate", () => {
  const p = (show?: string) => x(`<presence>${show ? `<show>${show}</show>` : ""}</presence>`);
  it("orders chat > available > away > dnd > xa, ties to the latest", () => {
    expect(availabilityOf(p())).toBe("available");
    expect(availabilityOf(p("bogus"))).toBe("available");
    const order = ["chat", undefined, "away", "dnd", "xa"];
    for (let i = 0; i < order.length; i++)
      for (let j = i + 1; j < order.length; j++) {
        const best = mostAvailable([
          { session: "lo", presence: p(order[j]), seq: 2 },
          { session: "hi", presence: p(order[i]), seq: 1 },
        ]);
        expect(best?.session).toBe("hi");
      }
    expect(mostAvailable([{ session: "a", presence: p("away"), seq: 1 }, { session: "b", presence: p("away"), seq: 2 }])?.session).toBe("b");
    expect(mostAvailable([])).toBeUndefined();
  });
  it("the room presence drops the join's muc x and routing attributes", () => {
    const src = x(`<presence to='r@c/n' from='a@b/c' id='i'><show>away</show><c xmlns='http://jabber.org/protocol/caps' node='n' ver='v' hash='sha-1'/><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const out = presenceToRoom(src, "r@c/nick");
    expect(out.attrs).toEqual({ to: "r@c/nick" });
    expect(out.getChild("x", "http://jabber.org/protocol/muc")).toBeUndefined();
    expect(out.getChild("c", "http://jabber.org/protocol/caps")).toBeDefined();
  });
});
