import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { NS_DELAY } from "../xml/ns.js";
import { stampHeld } from "./delay.js";

const ROOM = "room@conference.example.org";
const T = Date.UTC(2024, 4, 6, 7, 8, 9, 10);

function delays(xml: string): Record<string, unknown>[] {
  return parseStanza(xml)
    .getChildren("delay", NS_DELAY)
    .map((d) => ({ ...(d.attrs as Record<string, unknown>) }));
}

describe("stampHeld (XEP-0203)", () => {
  it("appends <delay from=room-bare stamp=UTC ms/> as the last child", () => {
    const out = stampHeld(parseStanza(`<presence from='${ROOM}/bob' to='a@b/c'><show>away</show></presence>`), T);
    expect(delays(out)).toEqual([{ xmlns: NS_DELAY, from: ROOM, stamp: "2024-05-06T07:08:09.010Z" }]);
    const el = parseStanza(out);
    const last = el.children[el.children.length - 1];
    expect(typeof last === "string" ? undefined : last?.getName()).toBe("delay");
    expect(el.getChildText("show")).toBe("away");
  });

  it("works on an empty (self-closing) stanza and on one from the bare room", () => {
    expect(delays(stampHeld(parseStanza(`<presence from='${ROOM}/bob' type='unavailable'/>`), T))[0]?.from).toBe(ROOM);
    expect(delays(stampHeld(parseStanza(`<message from='${ROOM}'/>`), T))[0]?.from).toBe(ROOM);
  });

  it("escapes the room JID", () => {
    const out = stampHeld(parseStanza(`<presence from='o&amp;&apos;r@conference.example.org/x'/>`), T);
    expect(delays(out)[0]?.from).toBe("o&'r@conference.example.org");
  });

  it("omits from when the stanza has none", () => {
    expect(delays(stampHeld(parseStanza(`<presence/>`), T))).toEqual([{ xmlns: NS_DELAY, stamp: "2024-05-06T07:08:09.010Z" }]);
  });

  it("never stamps twice: an existing delay is kept as it is", () => {
    const xml = `<message from='${ROOM}/bob'><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/><delay xmlns='urn:xmpp:delay' from='${ROOM}' stamp='2020-01-01T00:00:00Z'/></message>`;
    expect(delays(stampHeld(parseStanza(xml), T))).toEqual([{ xmlns: NS_DELAY, from: ROOM, stamp: "2020-01-01T00:00:00Z" }]);
  });

  it("a delay in another namespace (legacy jabber:x:delay) does not count", () => {
    const out = stampHeld(parseStanza(`<presence from='${ROOM}/bob'><x xmlns='jabber:x:delay' stamp='20200101T00:00:00'/></presence>`), T);
    expect(delays(out)).toHaveLength(1);
  });

  it("an invalid time stamps nothing (and does not throw)", () => {
    for (const t of [Number.NaN, Number.POSITIVE_INFINITY, 9e15, -9e15]) {
      expect(delays(stampHeld(parseStanza(`<presence from='${ROOM}/bob'/>`), t))).toEqual([]);
    }
  });

  it("keeps everything else: attributes, children, text", () => {
    const src = `<message from="${ROOM}/bob" to="a@b/c" id="x1" type="groupchat"><active xmlns="http://jabber.org/protocol/chatstates"/><thread>t&amp;1</thread></message>`;
    const out = stampHeld(parseStanza(src), T);
    expect(out.startsWith(src.slice(0, -"</message>".length))).toBe(true);
    expect(out.endsWith(`<delay xmlns="urn:xmpp:delay" from="${ROOM}" stamp="2024-05-06T07:08:09.010Z"/></message>`)).toBe(true);
  });
});
