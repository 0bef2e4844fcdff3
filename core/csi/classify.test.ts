import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { classify, supersedeKey, type CsiClass } from "./classify.js";

const ROOM = "room@conference.example.org";
const TO = "alice@example.org/phone";

function cls(xml: string, extra?: ReadonlySet<string>): CsiClass {
  return classify(parseStanza(xml), extra);
}
function msg(inner: string, attrs = `type='groupchat' from='${ROOM}/bob'`): string {
  return `<message ${attrs} to='${TO}'>${inner}</message>`;
}
function key(xml: string): string | undefined {
  const el = parseStanza(xml);
  return supersedeKey(el, classify(el));
}

describe("classify: presences", () => {
  it("an occupant's available and unavailable presence are held per occupant", () => {
    expect(cls(`<presence from='${ROOM}/bob' to='${TO}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x></presence>`)).toBe("hold-presence");
    expect(cls(`<presence from='${ROOM}/bob' to='${TO}' type='unavailable'/>`)).toBe("hold-presence");
    expect(cls(`<presence from='${ROOM}/bob' to='${TO}'><show>away</show><status>lunch</status></presence>`)).toBe("hold-presence");
  });

  it("a nick change (303) and someone else's kick (307) are ordinary occupant presences", () => {
    expect(cls(`<presence from='${ROOM}/bob' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item nick='bobby'/><status code='303'/></x></presence>`)).toBe("hold-presence");
    expect(cls(`<presence from='${ROOM}/bob' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item role='none'/><status code='307'/></x></presence>`)).toBe("hold-presence");
  });

  it("the room's own presence (bare JID, ejabberd's caps) is held per JID too", () => {
    expect(cls(`<presence from='${ROOM}' to='${TO}'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`)).toBe("hold-presence");
  });

  it("self-presence (110) flushes: the client waits for its join (XEP-0045 §7.2.2), or learns it was removed", () => {
    expect(cls(`<presence from='${ROOM}/alice' to='${TO}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x></presence>`)).toBe("flush");
    expect(cls(`<presence from='${ROOM}/alice' to='${TO}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item role='none'/><status code='307'/><status code='110'/></x></presence>`)).toBe("flush");
  });

  it("a room's destruction flushes (XEP-0045 §10.9), with or without 110", () => {
    expect(cls(`<presence from='${ROOM}/alice' to='${TO}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/><destroy jid='new@conference.example.org'><reason>moved</reason></destroy></x></presence>`)).toBe("flush");
  });

  it("error presences flush (a refused join)", () => {
    expect(cls(`<presence from='${ROOM}/alice' to='${TO}' type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`)).toBe("flush");
  });

  it("subscription presences flush (a human answers them)", () => {
    for (const t of ["subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"]) expect(cls(`<presence from='${ROOM}/bob' type='${t}'/>`)).toBe("flush");
  });

  it("a presence without from is held but never superseded", () => {
    expect(cls(`<presence to='${TO}'/>`)).toBe("hold");
    expect(key(`<presence to='${TO}'/>`)).toBeUndefined();
  });

  it("status codes outside muc#user do not count as self-presence", () => {
    expect(cls(`<presence from='${ROOM}/bob'><x xmlns='urn:example'><status code='110'/></x></presence>`)).toBe("hold-presence");
  });
});

describe("classify: messages a human reads flush", () => {
  it("body, in any message type", () => {
    expect(cls(msg("<body>hi</body>"))).toBe("flush");
    expect(cls(msg("<body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/>", `type='chat' from='${ROOM}/bob'`))).toBe("flush");
    expect(cls(msg("<body/>", `from='${ROOM}'`))).toBe("flush");
    expect(cls(msg("<body>news</body>", `type='headline' from='${ROOM}'`))).toBe("flush");
  });

  it("body in jabber:client declared explicitly", () => {
    expect(cls(`<message xmlns='jabber:client' from='${ROOM}/bob' type='groupchat'><body>hi</body></message>`)).toBe("flush");
  });

  it("subject (XEP-0045 §7.2.15: the last step of a join), also an empty one", () => {
    expect(cls(msg("<subject>Topic</subject>", `type='groupchat' from='${ROOM}'`))).toBe("flush");
    expect(cls(msg("<subject/>", `type='groupchat' from='${ROOM}'`))).toBe("flush");
  });

  it("encrypted payloads: XEP-0380 hint, OMEMO (legacy and 2), OpenPGP (XEP-0373, XEP-0027)", () => {
    expect(cls(msg("<encryption xmlns='urn:xmpp:eme:0' namespace='urn:example:enc'/><payload xmlns='urn:example:enc'/>"))).toBe("flush");
    expect(cls(msg("<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><iv>x</iv></header><payload>y</payload></encrypted>"))).toBe("flush");
    expect(cls(msg("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>y</payload></encrypted>"))).toBe("flush");
    expect(cls(msg("<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>"))).toBe("flush");
    expect(cls(msg("<x xmlns='jabber:x:encrypted'>ARMOR</x>"))).toBe("flush");
  });

  it("invitations (XEP-0249 direct, XEP-0045 §7.8.2 mediated) and declines", () => {
    expect(cls(msg(`<x xmlns='jabber:x:conference' jid='other@conference.example.org'/>`, `from='bob@example.org/pc'`))).toBe("flush");
    expect(cls(msg(`<x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@example.org'/></x>`, `from='${ROOM}'`))).toBe("flush");
    expect(cls(msg(`<x xmlns='http://jabber.org/protocol/muc#user'><decline from='bob@example.org'/></x>`, `from='${ROOM}'`))).toBe("flush");
  });

  it("calls (XEP-0353, both namespaces) and forms (XEP-0045 §8.6 voice request)", () => {
    expect(cls(msg("<propose xmlns='urn:xmpp:jingle-message:0' id='c1'/>", `type='chat' from='${ROOM}/bob'`))).toBe("flush");
    expect(cls(msg("<retract xmlns='urn:xmpp:jingle-message:1' id='c1'/>", `type='chat' from='${ROOM}/bob'`))).toBe("flush");
    expect(cls(msg("<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field></x>", `from='${ROOM}'`))).toBe("flush");
  });

  it("shared files without a body (XEP-0066, XEP-0447)", () => {
    expect(cls(msg("<x xmlns='jabber:x:oob'><url>https://example.org/f.jpg</url></x>"))).toBe("flush");
    expect(cls(msg("<file-sharing xmlns='urn:xmpp:sfs:0'><sources/></file-sharing>"))).toBe("flush");
  });

  it("error messages flush (a send failed)", () => {
    expect(cls(msg("<error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", `type='error' from='${ROOM}'`))).toBe("flush");
  });

  it("carbons (XEP-0280): sent flushes; received is judged by the message it forwards", () => {
    const fwd = (inner: string) => `<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='${ROOM}/bob' type='chat'>${inner}</message></forwarded>`;
    expect(cls(msg(`<sent xmlns='urn:xmpp:carbons:2'>${fwd("<composing xmlns='http://jabber.org/protocol/chatstates'/>")}</sent>`, `from='alice@example.org'`))).toBe("flush");
    expect(cls(msg(`<received xmlns='urn:xmpp:carbons:2'>${fwd("<body>hi</body>")}</received>`, `from='alice@example.org'`))).toBe("flush");
    // a forwarded chat state is held, but not superseded (the outer from is the account, not the sender)
    expect(cls(msg(`<received xmlns='urn:xmpp:carbons:2'>${fwd("<composing xmlns='http://jabber.org/protocol/chatstates'/>")}</received>`, `from='alice@example.org'`))).toBe("hold");
  });

  it("operator-configured namespaces flush", () => {
    const extra = new Set(["urn:xmpp:reactions:0"]);
    const reaction = msg("<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions>");
    expect(cls(reaction)).toBe("hold");
    expect(cls(reaction, extra)).toBe("flush");
  });

  it("a body or subject in a foreign namespace or nested deeper does not count", () => {
    expect(cls(msg("<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>hi</body></html>"))).toBe("hold");
    expect(cls(msg("<body xmlns='urn:example'>x</body>"))).toBe("hold");
  });
});

describe("classify: chat states and other body-less messages are held", () => {
  const cs = (state: string, extra = "") => msg(`<${state} xmlns='http://jabber.org/protocol/chatstates'/>${extra}`);

  it("a bare chat state, in groupchat or as a PM", () => {
    for (const s of ["active", "composing", "paused", "inactive", "gone"]) expect(cls(cs(s))).toBe("hold-chatstate");
    expect(cls(msg("<composing xmlns='http://jabber.org/protocol/chatstates'/><x xmlns='http://jabber.org/protocol/muc#user'/>", `type='chat' from='${ROOM}/bob'`))).toBe("hold-chatstate");
  });

  it("with ids, hints, occupant id, delay, thread and whitespace around it", () => {
    const extras =
      "\n <stanza-id xmlns='urn:xmpp:sid:0' by='r' id='1'/><origin-id xmlns='urn:xmpp:sid:0' id='o'/><no-store xmlns='urn:xmpp:hints'/>" +
      "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='oc'/><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/><thread>t1</thread> ";
    expect(cls(cs("composing", extras))).toBe("hold-chatstate");
  });

  it("a chat state with another payload is a plain hold (superseding it would lose the payload)", () => {
    expect(cls(cs("active", "<received xmlns='urn:xmpp:receipts' id='m1'/>"))).toBe("hold");
    expect(cls(cs("active", "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"))).toBe("hold");
    expect(cls(cs("active", "<x xmlns='http://jabber.org/protocol/muc#user'><item nick='x'/></x>"))).toBe("hold");
    expect(cls(msg("<active xmlns='http://jabber.org/protocol/chatstates'/>stray text"))).toBe("hold");
  });

  it("a chat state without from is held but never superseded", () => {
    expect(cls(`<message type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)).toBe("hold");
  });

  it("markers, receipts, reactions, retractions, room status messages, empty messages", () => {
    expect(cls(msg("<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"))).toBe("hold");
    expect(cls(msg("<received xmlns='urn:xmpp:receipts' id='m1'/>", `type='chat' from='${ROOM}/bob'`))).toBe("hold");
    expect(cls(msg("<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>x</reaction></reactions>"))).toBe("hold");
    expect(cls(msg("<x xmlns='http://jabber.org/protocol/muc#user'><status code='104'/></x>", `type='groupchat' from='${ROOM}'`))).toBe("hold");
    expect(cls(msg(""))).toBe("hold");
    expect(cls(msg("<thread>t</thread>"))).toBe("hold");
  });
});

describe("classify: IQs and other elements flush", () => {
  it("any IQ: someone waits for it", () => {
    for (const t of ["get", "set", "result", "error"]) expect(cls(`<iq type='${t}' id='1' from='${ROOM}/bob'/>`)).toBe("flush");
  });
  it("an element that is no stanza", () => {
    expect(cls(`<r xmlns='urn:xmpp:sm:3'/>`)).toBe("flush");
  });
});

describe("supersedeKey", () => {
  it("presences: per from, whatever the type", () => {
    const a = key(`<presence from='${ROOM}/bob'/>`);
    expect(a).toBeDefined();
    expect(key(`<presence from='${ROOM}/bob' type='unavailable'/>`)).toBe(a);
    expect(key(`<presence from='${ROOM}/carol'/>`)).not.toBe(a);
    expect(key(`<presence from='other@conference.example.org/bob'/>`)).not.toBe(a);
  });

  it("chat states: per from, type and thread; never shared with presences", () => {
    const cs = (attrs: string, thread = "") => key(`<message ${attrs}><composing xmlns='http://jabber.org/protocol/chatstates'/>${thread}</message>`);
    const g = cs(`type='groupchat' from='${ROOM}/bob'`);
    expect(g).toBeDefined();
    expect(cs(`type='groupchat' from='${ROOM}/bob'`)).toBe(g);
    expect(cs(`type='chat' from='${ROOM}/bob'`)).not.toBe(g);
    expect(cs(`type='groupchat' from='${ROOM}/carol'`)).not.toBe(g);
    expect(cs(`type='groupchat' from='${ROOM}/bob'`, "<thread>t1</thread>")).not.toBe(g);
    expect(cs(`from='${ROOM}/bob'`)).toBe(cs(`type='normal' from='${ROOM}/bob'`));
    expect(key(`<presence from='${ROOM}/bob'/>`)).not.toBe(g);
  });

  it("plain holds and flushes have none", () => {
    expect(key(msg("<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"))).toBeUndefined();
    expect(key(msg("<body>x</body>"))).toBeUndefined();
  });
});
