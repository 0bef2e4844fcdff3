import { describe, expect, it } from "vitest";
import { Element } from "ltx";
import { errorReply } from "./errors.js";
import { streamError } from "./stream.js";

describe("errorReply (RFC 6120 §8.3)", () => {
  it("keeps name and id, takes the addresses as given, writes type and condition", () => {
    const req = new Element("iq", { type: "get", id: "q1", from: "a@b/c", to: "b" });
    expect(errorReply(req, { to: "a@b/c", type: "cancel", condition: "service-unavailable" }).toString()).toBe(
      `<iq type="error" id="q1" to="a@b/c"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`);
  });

  it("adds by, and text with xml:lang (default en)", () => {
    const req = new Element("presence");
    expect(errorReply(req, { from: "r@s/n", type: "wait", condition: "policy-violation", by: "r@s", text: "a < b" }).toString()).toBe(
      `<presence type="error" from="r@s/n"><error type="wait" by="r@s"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
      `<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">a &lt; b</text></error></presence>`);
    expect(errorReply(req, { type: "modify", condition: "bad-request", text: "x", lang: "de" }).getChild("error")?.getChild("text")?.attrs["xml:lang"])
      .toBe("de");
  });
});

describe("streamError (RFC 6120 §4.9)", () => {
  it("writes the condition, optional text, and closes the stream", () => {
    expect(streamError("host-unknown")).toBe(
      `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`);
    expect(streamError("policy-violation", "a & b")).toBe(
      `<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
      `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>a &amp; b</text></stream:error></stream:stream>`);
  });

  it("writes an application-specific condition after the text (§4.9.2)", () => {
    expect(streamError("undefined-condition", "t", "<x xmlns='urn:example'/>")).toBe(
      `<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
      `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>t</text><x xmlns='urn:example'/></stream:error></stream:stream>`);
    expect(streamError("undefined-condition", undefined, "<x/>")).toBe(
      `<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><x/></stream:error></stream:stream>`);
  });

  it("writes the condition's character data: <see-other-host/> names the host (§4.9.3.19), IPv6 in brackets", () => {
    expect(streamError("see-other-host", "moving", undefined, "[2001:db8::2]:5222")).toBe(
      `<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:db8::2]:5222</see-other-host>` +
      `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>moving</text></stream:error></stream:stream>`);
  });
});
