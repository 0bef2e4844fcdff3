import { describe, expect, it } from "vitest";
import { parse, type Element } from "ltx";
import { bounceFor, classifyUnacked } from "./expiry.js";

const el = (xml: string): Element => parse(xml) as Element;
const ME = "alice@example.org";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

describe("classifyUnacked", () => {
  const cases: [string, string, ReturnType<typeof classifyUnacked>][] = [
    ["groupchat from a room", `<message type='groupchat' from='room@muc.example.org/bob' to='${ME}/phone'><body>hi</body></message>`, "room-history"],
    ["groupchat subject", `<message type='groupchat' from='room@muc.example.org'><subject>s</subject></message>`, "room-history"],
    ["chat archived by the account", `<message type='chat' from='bob@example.org/x' to='${ME}/phone'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='${ME}' id='s1'/></message>`, "archived"],
    ["archived, by in another case", `<message from='bob@example.org/x'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='Alice@Example.ORG' id='s1'/></message>`, "archived"],
    ["stanza-id by someone else", `<message type='chat' from='bob@example.org/x'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='bob@example.org' id='s1'/></message>`, "bounce"],
    ["second stanza-id is the account's", `<message type='chat' from='bob@example.org/x'><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc' id='a'/><stanza-id xmlns='urn:xmpp:sid:0' by='${ME}' id='b'/></message>`, "archived"],
    ["stanza-id in the wrong namespace", `<message type='chat' from='bob@example.org/x'><stanza-id by='${ME}' id='s1'/></message>`, "bounce"],
    ["plain chat", `<message type='chat' from='bob@example.org/x' to='${ME}/phone'><body>hi</body></message>`, "bounce"],
    ["normal", `<message type='normal' from='bob@example.org/x'><body>hi</body></message>`, "bounce"],
    ["no type", `<message from='bob@example.org/x'><body>hi</body></message>`, "bounce"],
    ["unknown type is normal", `<message type='weird' from='bob@example.org/x'><body>hi</body></message>`, "bounce"],
    ["from another resource of the account", `<message type='chat' from='${ME}/laptop'><body>hi</body></message>`, "bounce"],
    ["error message", `<message type='error' from='bob@example.org/x'><error type='cancel'/></message>`, "drop"],
    ["headline", `<message type='headline' from='pubsub.example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`, "drop"],
    ["carbon received", `<message from='${ME}' to='${ME}/phone'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/></received></message>`, "drop"],
    ["carbon sent from elsewhere", `<message from='${ME}' to='${ME}/phone' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>`, "drop"],
    ["carbon from a spoofing sender", `<message from='mallory@evil.example/x' type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>`, "drop"],
    ["MAM result", `<message from='${ME}' to='${ME}/phone'><result xmlns='urn:xmpp:mam:2' queryid='q' id='1'/></message>`, "drop"],
    ["message from the account's bare JID", `<message from='${ME}' type='chat'><body>x</body></message>`, "drop"],
    ["message without from", `<message type='chat'><body>x</body></message>`, "drop"],
    ["presence", `<presence from='bob@example.org/x'/>`, "drop"],
    ["presence subscribe", `<presence type='subscribe' from='bob@example.org'/>`, "drop"],
    ["presence unavailable", `<presence type='unavailable' from='bob@example.org/x'/>`, "drop"],
    ["iq result", `<iq type='result' id='1' from='example.org'/>`, "drop"],
    ["iq error", `<iq type='error' id='1' from='example.org'/>`, "drop"],
    ["iq get", `<iq type='get' id='1' from='bob@example.org/x'><query xmlns='jabber:iq:version'/></iq>`, "bounce"],
    ["iq set", `<iq type='set' id='2' from='${ME}'><query xmlns='jabber:iq:roster'/></iq>`, "bounce"],
    ["something else", `<foo/>`, "drop"],
  ];
  it.each(cases)("%s", (_name, xml, fate) => {
    expect(classifyUnacked(el(xml), ME)).toBe(fate);
  });
});

describe("bounceFor", () => {
  it("answers a message with recipient-unavailable (wait), addresses swapped, id kept, no payload", () => {
    const b = bounceFor(el(`<message type='chat' id='m1' from='bob@example.org/x' to='${ME}/phone'><body>hi</body></message>`));
    expect(b.toString()).toBe(
      `<message type="error" id="m1" from="${ME}/phone" to="bob@example.org/x"><error type="wait"><recipient-unavailable xmlns="${STANZAS}"/></error></message>`,
    );
  });

  it("answers an iq get/set the same way", () => {
    const b = bounceFor(el(`<iq type='get' id='q' from='bob@example.org/x' to='${ME}/phone'><ping xmlns='urn:xmpp:ping'/></iq>`));
    expect(b.name).toBe("iq");
    expect(b.attrs).toEqual({ type: "error", id: "q", from: `${ME}/phone`, to: "bob@example.org/x" });
    expect(b.getChild("error")?.attrs.type).toBe("wait");
    expect(b.getChild("error")?.getChild("recipient-unavailable", STANZAS)).toBeDefined();
  });

  it("leaves out addresses that were absent", () => {
    const b = bounceFor(el(`<iq type='set' id='r'><query xmlns='jabber:iq:roster'/></iq>`));
    expect(b.attrs).toEqual({ type: "error", id: "r" });
  });
});
