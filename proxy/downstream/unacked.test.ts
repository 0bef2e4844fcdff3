import { describe, expect, it } from "vitest";
import { parseStanza } from "../../core/xml/element.js";
import { settleUnacked } from "./unacked.js";

const ME = "alice@example.org";
const FULL = `${ME}/phone`;

describe("settleUnacked (docs/architecture.md §8.4, expiry)", () => {
  it("bounces what the own leg carried and a sender waits for; keeps room history and archived messages; drops the rest", () => {
    const own = (s: string): Buffer => Buffer.from(s);
    const o = settleUnacked([
      own(`<message from='bob@example.org/x' to='${FULL}' type='chat' id='m1'><body>hi</body></message>`),
      own(`<message from='bob@example.org/x' to='${FULL}' type='chat' id='m2'><body>kept</body><stanza-id xmlns='urn:xmpp:sid:0' by='${ME}' id='s1'/></message>`),
      own(`<iq from='bob@example.org/x' to='${FULL}' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`),
      own(`<iq from='example.org' to='${FULL}' type='result' id='r1'/>`),
      own(`<presence from='bob@example.org/x' to='${FULL}'/>`),
      own(`<message from='bob@example.org/x' to='${FULL}' type='error' id='e1'/>`),
    ], ME, true);
    expect(o.bounces).toHaveLength(2);
    const [msg, iq] = o.bounces.map((b) => parseStanza(b));
    expect(msg!.attrs).toMatchObject({ type: "error", id: "m1", to: "bob@example.org/x", from: FULL });
    expect(msg!.getChild("error")?.getChild("recipient-unavailable")).toBeDefined();
    expect(iq!.attrs).toMatchObject({ type: "error", id: "q1", to: "bob@example.org/x" });
    expect(o.kept).toBe(1);
    expect(o.dropped).toBe(3);
    expect(o.lost).toBe(0);
  });

  it("never bounces on the own leg what the account layer delivered (strings): room history keeps groupchat, PMs go back to the account, an IQ is lost", () => {
    const o = settleUnacked([
      `<message from='room@muc.example.org/bob' to='${FULL}' type='groupchat' id='g1'><body>hi</body></message>`,
      `<message from='room@muc.example.org/bob' to='${FULL}' type='chat' id='pm1'><body>pm</body></message>`,
      `<presence from='room@muc.example.org/bob' to='${FULL}'/>`,
      `<iq from='room@muc.example.org/bob' to='${FULL}' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`,
    ], ME, true);
    expect(o.bounces).toEqual([]);
    expect(o).toMatchObject({ kept: 1, lost: 1, dropped: 1 });
    expect(o.undelivered.map((e) => e.attrs.id)).toEqual(["pm1"]);
  });

  it("an own leg that is gone bounces nothing: counted as lost", () => {
    const o = settleUnacked([Buffer.from(`<message from='bob@example.org/x' to='${FULL}' type='chat' id='m1'><body>hi</body></message>`)], ME, false);
    expect(o).toEqual({ bounces: [], kept: 0, dropped: 0, lost: 1, undelivered: [] });
  });

  it("something ltx cannot read is dropped, never thrown", () => {
    const o = settleUnacked([Buffer.from("<message><body>unclosed")], ME, true);
    expect(o).toEqual({ bounces: [], kept: 0, dropped: 1, lost: 0, undelivered: [] });
  });
});
