import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { NS_DELAY } from "../xml/ns.js";
import { stampResent } from "./resend.js";

const AT = Date.UTC(2026, 11, 1, 10, 0, 0, 123);

describe("stampResent (XEP-0198 §5 re-send, XEP-0203 delay)", () => {
  it("a message from the own leg (Buffer) gets a delay from the server, stamped when it was queued", () => {
    const out = stampResent(Buffer.from("<message from='bob@example.org/x' to='alice@example.org/p' type='chat' id='m1'><body>hi</body></message>"), AT, "example.org");
    const el = parseStanza(out);
    expect(el.getChildText("body")).toBe("hi");
    expect(el.getChild("delay", NS_DELAY)?.attrs).toEqual({ xmlns: NS_DELAY, from: "example.org", stamp: "2026-12-01T10:00:00.123Z" });
  });

  it("a presence from the account layer (string) too, self-closing included", () => {
    const el = parseStanza(stampResent("<presence from='room@muc.example.org/bob' to='alice@example.org/p'/>", AT, "example.org"));
    expect(el.getChild("delay", NS_DELAY)?.attrs.stamp).toBe("2026-12-01T10:00:00.123Z");
  });

  it("an IQ, a stanza with a delay already, and unparseable bytes are re-sent unchanged", () => {
    const iq = Buffer.from("<iq type='result' id='r1' to='alice@example.org/p'/>");
    expect(stampResent(iq, AT, "example.org")).toBe(iq);
    const hist = "<message from='room@muc.example.org/bob' type='groupchat'><body>old</body><delay xmlns='urn:xmpp:delay' from='room@muc.example.org' stamp='2020-01-01T00:00:00Z'/></message>";
    expect(stampResent(hist, AT, "example.org")).toBe(hist);
    const bad = Buffer.from("<message><body>cut");
    expect(stampResent(bad, AT, "example.org")).toBe(bad);
    expect(stampResent("<message/>", Number.NaN, "example.org")).toBe("<message/>");
  });
});
