import { describe, expect, it } from "vitest";
import { peekAttr } from "./peek.js";

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
