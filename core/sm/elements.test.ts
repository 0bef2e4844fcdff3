import { describe, expect, it } from "vitest";
import { parse, type Element } from "ltx";
import { ack, ackRequest, enabled, failed, handledCountTooHigh, handledCountTooHighError, isSmElement, parseSmNonza, resumed, smFeature } from "./elements.js";

const SM = "urn:xmpp:sm:3";
const el = (xml: string): Element => parse(xml) as Element;

describe("parseSmNonza", () => {
  it("reads <enable/> with and without resume and max", () => {
    expect(parseSmNonza(el(`<enable xmlns='${SM}'/>`))).toEqual({ kind: "enable", resume: false });
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='true'/>`))).toEqual({ kind: "enable", resume: true });
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='1' max='120'/>`))).toEqual({ kind: "enable", resume: true, max: 120 });
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume=' true '/>`))).toEqual({ kind: "enable", resume: true });
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='false'/>`))).toEqual({ kind: "enable", resume: false });
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='0'/>`))).toEqual({ kind: "enable", resume: false });
    // Not xs:boolean: no resumption rather than a failure (as mod_smacks).
    expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='yes'/>`))).toEqual({ kind: "enable", resume: false });
  });

  it("ignores a max that is not a positive integer", () => {
    for (const m of ["0", "-5", "1.5", "abc", "", "9999999999999999999"]) {
      expect(parseSmNonza(el(`<enable xmlns='${SM}' resume='true' max='${m}'/>`)), m).toEqual({ kind: "enable", resume: true });
    }
  });

  it("reads <r/> and <a h/>", () => {
    expect(parseSmNonza(el(`<r xmlns='${SM}'/>`))).toEqual({ kind: "r" });
    expect(parseSmNonza(el(`<a xmlns='${SM}' h='0'/>`))).toEqual({ kind: "a", h: 0 });
    expect(parseSmNonza(el(`<a xmlns='${SM}' h='4294967295'/>`))).toEqual({ kind: "a", h: 4294967295 });
  });

  it("refuses <a/> with a missing or bad h", () => {
    for (const a of [`<a xmlns='${SM}'/>`, `<a xmlns='${SM}' h=''/>`, `<a xmlns='${SM}' h='-1'/>`, `<a xmlns='${SM}' h='4294967296'/>`, `<a xmlns='${SM}' h='1x'/>`]) {
      expect(parseSmNonza(el(a)), a).toMatchObject({ kind: "invalid", element: "a" });
    }
  });

  it("reads <resume previd h/>", () => {
    expect(parseSmNonza(el(`<resume xmlns='${SM}' previd='abc-_' h='7'/>`))).toEqual({ kind: "resume", previd: "abc-_", h: 7 });
    expect(parseSmNonza(el(`<resume xmlns='${SM}' previd='a&amp;b' h='0'/>`))).toEqual({ kind: "resume", previd: "a&b", h: 0 });
  });

  it("refuses <resume/> without previd or with a bad h", () => {
    expect(parseSmNonza(el(`<resume xmlns='${SM}' h='1'/>`))).toEqual({ kind: "invalid", element: "resume", reason: "missing 'previd'" });
    expect(parseSmNonza(el(`<resume xmlns='${SM}' previd='' h='1'/>`))).toMatchObject({ kind: "invalid", element: "resume" });
    expect(parseSmNonza(el(`<resume xmlns='${SM}' previd='x'/>`))).toEqual({ kind: "invalid", element: "resume", reason: "missing or invalid 'h'" });
    expect(parseSmNonza(el(`<resume xmlns='${SM}' previd='x' h='one'/>`))).toMatchObject({ kind: "invalid", element: "resume" });
  });

  it("refuses elements a client does not send, and other namespaces", () => {
    for (const n of ["enabled", "resumed", "failed", "sm", "foo"]) {
      expect(parseSmNonza(el(`<${n} xmlns='${SM}'/>`)), n).toMatchObject({ kind: "invalid", element: n });
    }
    expect(parseSmNonza(el(`<enable xmlns='urn:xmpp:sm:2'/>`))).toMatchObject({ kind: "invalid", element: "enable" });
    expect(parseSmNonza(el(`<r/>`))).toMatchObject({ kind: "invalid", element: "r" });
  });

  it("resolves a prefixed namespace", () => {
    const p = el(`<sm:a xmlns:sm='${SM}' h='3'/>`);
    expect(isSmElement(p)).toBe(true);
    expect(parseSmNonza(p)).toEqual({ kind: "a", h: 3 });
    expect(isSmElement(el(`<message/>`))).toBe(false);
  });
});

describe("SM serializers", () => {
  it("writes the feature, r and a", () => {
    expect(smFeature()).toBe(`<sm xmlns='${SM}'/>`);
    expect(ackRequest()).toBe(`<r xmlns='${SM}'/>`);
    expect(ack(0)).toBe(`<a xmlns='${SM}' h='0'/>`);
    expect(ack(4294967295)).toBe(`<a xmlns='${SM}' h='4294967295'/>`);
  });

  it("writes <enabled/> with resume='true' (not '1') and max only when resumable", () => {
    expect(enabled("tok", true, 300)).toBe(`<enabled xmlns='${SM}' id='tok' resume='true' max='300'/>`);
    expect(enabled("tok", true)).toBe(`<enabled xmlns='${SM}' id='tok' resume='true'/>`);
    expect(enabled(undefined, false)).toBe(`<enabled xmlns='${SM}'/>`);
    expect(enabled(undefined, true, 300)).toBe(`<enabled xmlns='${SM}'/>`);
    expect(enabled("tok", false, 300)).toBe(`<enabled xmlns='${SM}' id='tok'/>`);
    expect(enabled(`a'<&"b`, true, 60)).toBe(`<enabled xmlns='${SM}' id='a&apos;&lt;&amp;&quot;b' resume='true' max='60'/>`);
    expect(el(enabled(`a'<&"b`, true, 60)).attrs.id).toBe(`a'<&"b`);
  });

  it("writes <resumed/>, escaping previd", () => {
    expect(resumed("tok", 5)).toBe(`<resumed xmlns='${SM}' previd='tok' h='5'/>`);
    expect(el(resumed("x'y", 0)).attrs.previd).toBe("x'y");
  });

  it("writes <failed/> with the condition in the stanzas namespace and an optional h", () => {
    const stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    expect(failed("item-not-found")).toBe(`<failed xmlns='${SM}'><item-not-found xmlns='${stanzas}'/></failed>`);
    expect(failed("item-not-found", 12)).toBe(`<failed xmlns='${SM}' h='12'><item-not-found xmlns='${stanzas}'/></failed>`);
    expect(failed("unexpected-request")).toContain("<unexpected-request");
    expect(failed("feature-not-implemented")).toContain("<feature-not-implemented");
    const parsed = el(failed("item-not-found", 0));
    expect(parsed.attrs.h).toBe("0");
    expect(parsed.getChild("item-not-found", stanzas)).toBeDefined();
  });

  it("writes <handled-count-too-high/> and the whole stream error (XEP-0198 §6)", () => {
    expect(handledCountTooHigh(10, 8)).toBe(`<handled-count-too-high xmlns='${SM}' h='10' send-count='8'/>`);
    const s = handledCountTooHighError(10, 8);
    expect(s.startsWith(`<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text`)).toBe(true);
    expect(s).toContain(handledCountTooHigh(10, 8));
    expect(s.endsWith(`</stream:error></stream:stream>`)).toBe(true);
    const body = s.slice(0, -"</stream:stream>".length).replace("<stream:error>", "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>");
    const parsed = el(body);
    expect(parsed.getChild("handled-count-too-high", SM)?.attrs["send-count"]).toBe("8");
  });
});
