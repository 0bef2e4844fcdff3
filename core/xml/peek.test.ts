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
});
