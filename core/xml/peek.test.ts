import { describe, expect, it } from "vitest";
import { attrSpan, directChildren, peekAttr } from "./peek.js";

describe("peekAttr", () => {
  it("reads single- and double-quoted attributes of the top tag only", () => {
    expect(peekAttr(Buffer.from(`<message to='room@muc/nick' type="groupchat"><x to='no'/></message>`), "to")).toBe("room@muc/nick");
    expect(peekAttr(Buffer.from(`<message type="groupchat"><x to='no'/></message>`), "to")).toBeUndefined();
    expect(peekAttr(Buffer.from(`<presence from='a' to="r@c/n&amp;x"/>`), "to")).toBe("r@c/n&x");
  });
  it("is not fooled by '>' inside a value or by a longer name", () => {
    expect(peekAttr(Buffer.from(`<iq id='a>b' xto='x' to='y'/>`), "to")).toBe("y");
  });
  it("is not fooled by an attribute spelled inside another attribute's value", () => {
    expect(peekAttr(Buffer.from(`<message id=" to='decoy@x'" to='room@muc'/>`), "to")).toBe("room@muc");
    expect(peekAttr(Buffer.from(`<message id=" to='decoy@x'"><body/></message>`), "to")).toBeUndefined();
  });
  it("handles spaces around '=', newlines, self-closing tags, prefixed names and UTF-8 values", () => {
    expect(peekAttr(Buffer.from(`<iq\n type = 'get'\tto\n=\n"r@c/ü"/>`), "to")).toBe("r@c/ü");
    expect(peekAttr(Buffer.from(`<stream:stream xmlns:stream='s' xmlns='jabber:client'>`), "xmlns")).toBe("jabber:client");
    expect(peekAttr(Buffer.from(`<stream:stream xmlns:stream='s' xmlns='jabber:client'>`), "xmlns:stream")).toBe("s");
    expect(peekAttr(Buffer.from(`<presence/>`), "to")).toBeUndefined();
    expect(peekAttr(Buffer.from(`<presence to=''/>`), "to")).toBe("");
  });
});

describe("attrSpan", () => {
  it("finds the raw value between the quotes, escapes and all", () => {
    const b = Buffer.from(`<message id=" to='x'" to="r@c/n&amp;ü" type='groupchat'/>`);
    const s = attrSpan(b, "to")!;
    expect(b.toString("utf8", s.start, s.end)).toBe("r@c/n&amp;ü");
    expect(attrSpan(b, "from")).toBeUndefined();
  });
});

describe("directChildren", () => {
  it("names the direct children with their own xmlns, skipping nested ones, CDATA and '>' in values", () => {
    const b = Buffer.from(
      `<message to='a' type='groupchat'><body>x &lt; y<![CDATA[<subject>]]></body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p a='>'>hi</p></body></html>` +
        `<no-store xmlns="urn:xmpp:hints"/><x:delay xmlns:x='urn:xmpp:delay'/></message>`,
    );
    expect(directChildren(b)).toEqual([
      { name: "body", xmlns: undefined },
      { name: "html", xmlns: "http://jabber.org/protocol/xhtml-im" },
      { name: "no-store", xmlns: "urn:xmpp:hints" },
      { name: "x:delay", xmlns: undefined },
    ]);
  });
  it("gives an empty list for a childless stanza and undefined for truncated bytes", () => {
    expect(directChildren(Buffer.from(`<message to='a'/>`))).toEqual([]);
    expect(directChildren(Buffer.from(`<message to='a'>text</message>`))).toEqual([]);
    expect(directChildren(Buffer.from(`<message to='a'><body>x</body>`))).toBeUndefined();
    expect(directChildren(Buffer.from(`<message to='a'><body a='>`))).toBeUndefined();
    expect(directChildren(Buffer.from(`<message to='a'><![CDATA[x</message>`))).toBeUndefined();
  });
});
