import { describe, expect, it } from "vitest";
import { Element } from "ltx";
import { sessionXml } from "./actions.js";
import { addressTemplate, fanOut, keptCopy, renderFor } from "./fanout.js";
import { addressedTo } from "./stanza.js";
import { x } from "./test-kit.js";

const SESSIONS = ["alice@example.com/phone", "alice@example.com/desk<&'\">", "alice@example.com/ü"];

const STANZAS = [
  // `to` in the middle, first, last, absent
  `<message from='room@muc.example.com/bob' to='alice@example.com/proxy-1' type='groupchat' id='m1'><body>hi &amp; &lt;there&gt; ü</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@muc.example.com'/></message>`,
  `<message to='alice@example.com/x' from='room@muc.example.com/bob' type='groupchat'><body>a</body></message>`,
  `<presence from='room@muc.example.com/bob' id='p"1'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>`,
  `<presence from='room@muc.example.com/bob' type='unavailable'/>`,
  `<message from='room@muc.example.com' xml:lang='en' to='alice@example.com/a'><subject>it's "quoted"</subject><x xmlns:p='urn:p'><p:y>t</p:y></x></message>`,
];

describe("fan-out serializes a stanza once and splices each session's JID", () => {
  it.each(STANZAS)("xml() is exactly addressedTo(…).toString() for every session: %s", (xml) => {
    const st = x(xml);
    const before = st.toString();
    const acts = fanOut(st, SESSIONS);
    expect(acts.map((a) => a.kind === "toSession" && a.session)).toEqual(SESSIONS);
    for (const a of acts) {
      if (a.kind !== "toSession") throw new Error("expected toSession");
      const want = addressedTo(st, a.session).toString();
      expect(sessionXml(a)).toBe(want);
      // the element, built on demand, is the same copy
      expect(a.stanza.toString()).toBe(want);
      expect(a.stanza.attrs.to).toBe(a.session);
    }
    expect(st.toString()).toBe(before); // the source is untouched
  });

  it("changes made to a copy's element are what gets written", () => {
    const [a] = fanOut(x(STANZAS[0]!), [SESSIONS[0]!]);
    if (a?.kind !== "toSession") throw new Error("expected toSession");
    a.stanza.attrs.id = "changed";
    expect(sessionXml(a)).toContain(`id="changed"`);
    expect(sessionXml(a)).toBe(a.stanza.toString());
  });

  it("copies do not share their elements", () => {
    const acts = fanOut(x(STANZAS[0]!), SESSIONS.slice(0, 2));
    const [a, b] = acts;
    if (a?.kind !== "toSession" || b?.kind !== "toSession") throw new Error("expected toSession");
    a.stanza.getChild("body")!.children = ["changed"];
    expect(sessionXml(b)).toContain("<body>hi &amp; &lt;there&gt; ü</body>");
  });

  it("no sessions: no actions and no serialization", () => {
    expect(fanOut(x(STANZAS[0]!), [])).toEqual([]);
  });

  it("template: to keeps its position, or comes last", () => {
    const t = addressTemplate(x(`<message a='1' to='old' b='2'/>`))!;
    expect(renderFor(t, "new")).toBe(`<message a="1" to="new" b="2"/>`);
    const u = addressTemplate(x(`<message a='1'/>`))!;
    expect(renderFor(u, "n&")).toBe(`<message a="1" to="n&amp;"/>`);
  });

  it("falls back to one element per session when the placeholder is not unique", () => {
    const st = new Element("message", { from: "room@muc.example.com" }).c("body").t("\u0001").up();
    expect(addressTemplate(st)).toBeUndefined();
    const acts = fanOut(st, SESSIONS);
    for (const a of acts) {
      if (a.kind !== "toSession") throw new Error("expected toSession");
      expect(sessionXml(a)).toBe(addressedTo(st, a.session).toString());
    }
  });
});

describe("copies of kept stanzas (room state replays)", () => {
  it("keptCopy gives addressedTo(…) for each session, and a changed occupant (a new stored copy) is seen", () => {
    const first = x(`<presence from='room@muc.example.com/bob'><show>away</show></presence>`);
    for (const s of SESSIONS) {
      const a = keptCopy(first, s);
      if (a.kind !== "toSession") throw new Error("expected toSession");
      expect(sessionXml(a)).toBe(addressedTo(first, s).toString());
    }
    const second = x(`<presence from='room@muc.example.com/bob'><show>dnd</show></presence>`);
    const b = keptCopy(second, SESSIONS[0]!);
    if (b.kind !== "toSession") throw new Error("expected toSession");
    expect(sessionXml(b)).toContain("<show>dnd</show>");
    expect(sessionXml(b)).toBe(addressedTo(second, SESSIONS[0]!).toString());
  });
});
