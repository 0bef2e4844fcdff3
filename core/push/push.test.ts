import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { parsePushCommand, type PushRegistration } from "./commands.js";
import { mentions } from "./mention.js";
import { ownLegTrigger, roomTrigger, type PushTrigger, type RoomView } from "./trigger.js";
import { publishIq } from "./publish.js";
import { MAX_PUSH_ERRORS, publishErrorFate } from "./errors.js";
import { PushDevices } from "./devices.js";

const ME = "alice@example.org";
const ROOM = "room@conference.example.org";
const OPTIONS = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr&amp;t</value></field></x>`;
const rooms: RoomView = { nickIn: (r) => (r === ROOM ? "Alice" : undefined) };

describe("parsePushCommand (XEP-0357 §5, §6)", () => {
  it("reads an <enable/> with its publish-options form", () => {
    const c = parsePushCommand(parseStanza(`<iq type='set' id='x42'><enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n1'>${OPTIONS}</enable></iq>`), ME);
    expect(c?.kind).toBe("enable");
    if (c?.kind !== "enable") return;
    expect(c.registration.service).toBe("push.example.net");
    expect(c.registration.node).toBe("n1");
    expect(c.registration.options?.toString()).toContain("s3cr&amp;t");
  });

  it("reads <disable/> with and without a node; an IQ to the own bare JID counts", () => {
    expect(parsePushCommand(parseStanza(`<iq type='set' id='d'><disable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n1'/></iq>`), ME))
      .toEqual({ kind: "disable", service: "push.example.net", node: "n1" });
    expect(parsePushCommand(parseStanza(`<iq type='set' id='d' to='Alice@example.org'><disable xmlns='urn:xmpp:push:0' jid='push.example.net'/></iq>`), ME))
      .toEqual({ kind: "disable", service: "push.example.net", node: undefined });
  });

  it("leaves invalid commands, other addressees and other IQs to the server", () => {
    const none = [
      `<iq type='set' id='a'><enable xmlns='urn:xmpp:push:0' jid='push.example.net'/></iq>`, // no node
      `<iq type='set' id='a'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>`, // no jid
      `<iq type='set' id='a'><disable xmlns='urn:xmpp:push:0'/></iq>`,
      `<iq type='get' id='a'><enable xmlns='urn:xmpp:push:0' jid='p' node='n'/></iq>`,
      `<iq type='set' id='a' to='bob@example.org'><enable xmlns='urn:xmpp:push:0' jid='p' node='n'/></iq>`,
      `<iq type='set' id='a'><enable xmlns='urn:xmpp:push:1' jid='p' node='n'/></iq>`,
      `<message><enable xmlns='urn:xmpp:push:0' jid='p' node='n'/></message>`,
    ];
    for (const x of none) expect(parsePushCommand(parseStanza(x), ME), x).toBeUndefined();
  });
});

describe("mentions", () => {
  it("finds the nick as a whole word, case-insensitively", () => {
    expect(mentions("hey alice, look", "Alice")).toBe(true);
    expect(mentions("ALICE", "alice")).toBe(true);
    expect(mentions("@alice: ping", "alice")).toBe(true);
    expect(mentions("alice's cat", "alice")).toBe(true);
    expect(mentions("hi Ümit!", "ümit")).toBe(true);
    expect(mentions("Dr. Who? yes", "Dr. Who")).toBe(true);
  });
  it("not inside a longer word, nor an empty nick", () => {
    expect(mentions("malice aforethought", "alice")).toBe(false);
    expect(mentions("alice_b is here", "alice")).toBe(false);
    expect(mentions("alice2", "alice")).toBe(false);
    expect(mentions("Ümitx", "ümit")).toBe(false);
    expect(mentions("anything", "")).toBe(false);
    expect(mentions("al alice", "al")).toBe(true);
    expect(mentions("alal", "al")).toBe(false);
  });
});

describe("ownLegTrigger", () => {
  it("a chat or normal message with a body from someone else", () => {
    expect(ownLegTrigger(parseStanza(`<message type='chat' from='bob@example.org/x'><body>hi</body></message>`), ME))
      .toEqual({ reason: "chat", sender: "bob@example.org/x", body: "hi" });
    expect(ownLegTrigger(parseStanza(`<message from='bob@example.org'><body>hi</body></message>`), ME)?.reason).toBe("chat");
  });
  it("not: no body, empty body, groupchat, headline, error, own account, no sender, carbons", () => {
    const none = [
      `<message type='chat' from='bob@example.org/x'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
      `<message type='chat' from='bob@example.org/x'><body>  </body></message>`,
      `<message type='groupchat' from='${ROOM}/bob'><body>hi</body></message>`,
      `<message type='headline' from='pubsub.example.org'><body>news</body></message>`,
      `<message type='error' from='bob@example.org/x'><body>hi</body></message>`,
      `<message type='chat' from='alice@example.org/laptop'><body>note to self</body></message>`,
      `<message type='chat'><body>hi</body></message>`,
      `<message from='alice@example.org'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message type='chat' from='bob@example.org/x'><body>hi</body></message></forwarded></received></message>`,
      `<presence from='bob@example.org/x'/>`,
    ];
    for (const x of none) expect(ownLegTrigger(parseStanza(x), ME), x).toBeUndefined();
  });
});

describe("roomTrigger", () => {
  const gc = (from: string, body: string, extra = ""): string => `<message type='groupchat' from='${from}'><body>${body}</body>${extra}</message>`;
  it("a PM from an occupant, whatever the mode", () => {
    for (const mode of ["off", "mentions", "all"] as const) {
      expect(roomTrigger(parseStanza(`<message type='chat' from='${ROOM}/bob'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`), rooms, mode))
        .toEqual({ reason: "room-pm", sender: `${ROOM}/bob`, body: "psst" });
    }
  });
  it("a PM marked no-store or no-permanent-store says so", () => {
    for (const hint of ["no-store", "no-permanent-store"]) {
      expect(roomTrigger(parseStanza(`<message type='chat' from='${ROOM}/bob'><body>psst</body><${hint} xmlns='urn:xmpp:hints'/></message>`), rooms, "mentions"))
        .toEqual({ reason: "room-pm", sender: `${ROOM}/bob`, body: "psst", unarchived: true });
    }
  });
  it("a mention in `mentions` and `all`; any message only in `all`; nothing in `off`", () => {
    expect(roomTrigger(parseStanza(gc(`${ROOM}/bob`, "alice: lunch?")), rooms, "mentions")?.reason).toBe("mention");
    expect(roomTrigger(parseStanza(gc(`${ROOM}/bob`, "lunch?")), rooms, "mentions")).toBeUndefined();
    expect(roomTrigger(parseStanza(gc(`${ROOM}/bob`, "lunch?")), rooms, "all")?.reason).toBe("groupchat");
    expect(roomTrigger(parseStanza(gc(`${ROOM}/bob`, "alice: lunch?")), rooms, "off")).toBeUndefined();
  });
  it("not: own reflection, history, subject, the room itself, unknown rooms, no body", () => {
    const none = [
      gc(`${ROOM}/Alice`, "I said alice"),
      gc(`${ROOM}/bob`, "alice", `<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/>`),
      `<message type='groupchat' from='${ROOM}/bob'><subject>alice</subject></message>`,
      gc(ROOM, "alice"),
      gc(`other@conference.example.org/bob`, "alice"),
      `<message type='chat' from='other@conference.example.org/bob'><body>psst</body></message>`,
      `<message type='groupchat' from='${ROOM}/bob'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
      `<message type='error' from='${ROOM}/bob'><body>alice</body></message>`,
    ];
    for (const x of none) expect(roomTrigger(parseStanza(x), rooms, "all"), x).toBeUndefined();
  });
});

const REG: PushRegistration = { service: "push.example.net", node: "n1", options: parseStanza(OPTIONS) };

describe("publishIq (XEP-0357 §7)", () => {
  it("summary form, publish-options as given, no body unless asked", () => {
    const iq = publishIq(REG, { count: 3, sender: `${ROOM}/bob`, body: undefined }, "p1");
    const s = iq.toString();
    expect(iq.attrs).toMatchObject({ type: "set", to: "push.example.net", id: "p1" });
    expect(s).toContain("<publish node=\"n1\"><item><notification xmlns=\"urn:xmpp:push:0\"><x xmlns=\"jabber:x:data\" type=\"submit\">");
    expect(s).toContain("<field var=\"message-count\"><value>3</value></field>");
    expect(s).toContain(`<field var="last-message-sender"><value>${ROOM}/bob</value></field>`);
    expect(s).not.toContain("last-message-body");
    expect(s).toContain("<publish-options><x xmlns=\"jabber:x:data\" type=\"submit\">");
    expect(s).toContain("s3cr&amp;t");
    expect(publishIq(REG, { count: 1, sender: "b", body: "a <b>" }, "p2").toString()).toContain("<field var=\"last-message-body\"><value>a &lt;b&gt;</value></field>");
    expect(publishIq({ ...REG, options: undefined }, { count: 1, sender: "b", body: undefined }, "p3").toString()).not.toContain("publish-options");
  });
});

describe("publishErrorFate", () => {
  const err = (type: string, cond: string): string => `<iq type='error' id='p'><error type='${type}'><${cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text></error></iq>`;
  it("gone for a missing node or device, a refusal", () => {
    for (const c of ["item-not-found", "gone", "forbidden", "not-authorized", "registration-required", "not-allowed", "bad-request"]) {
      expect(publishErrorFate(parseStanza(err("cancel", c))), c).toBe("gone");
    }
  });
  it("retry for passing conditions, anything of type wait, and an error without a condition", () => {
    for (const c of ["service-unavailable", "remote-server-not-found", "remote-server-timeout", "internal-server-error", "resource-constraint", "recipient-unavailable", "undefined-condition"]) {
      expect(publishErrorFate(parseStanza(err("cancel", c))), c).toBe("retry");
    }
    expect(publishErrorFate(parseStanza(err("wait", "item-not-found")))).toBe("retry");
    expect(publishErrorFate(parseStanza(`<iq type='error' id='p'/>`))).toBe("retry");
  });
});

describe("PushDevices", () => {
  const T = (sender = `${ROOM}/bob`, reason: PushTrigger["reason"] = "mention"): PushTrigger => ({ reason, sender, body: "alice!" });
  const mk = (o: Partial<{ intervalMs: number; withBody: boolean; maxDevices: number }> = {}): PushDevices =>
    new PushDevices({ intervalMs: 10_000, withBody: false, maxDevices: 4, ...o });
  const PHONE = "alice@example.org/phone";

  it("an online device gets nothing; a hibernating one gets room and own-leg pushes; a gone one room pushes only", () => {
    const d = mk();
    d.enable(PHONE, REG);
    expect(d.anyAsleep).toBe(false);
    expect(d.offerRoom(T(), 0)).toEqual([]);
    expect(d.offerOwn(PHONE, T("bob@example.org", "chat"), 0)).toEqual([]);
    d.setState(PHONE, "hibernating");
    expect(d.anyAsleep).toBe(true);
    expect(d.offerRoom(T(), 0)).toEqual([{ session: PHONE, registration: REG, summary: { count: 1, sender: `${ROOM}/bob`, body: undefined } }]);
    expect(d.offerOwn(PHONE, T("bob@example.org", "chat"), 20_000)).toHaveLength(1);
    d.setState(PHONE, "gone");
    expect(d.offerOwn(PHONE, T("bob@example.org", "chat"), 40_000)).toEqual([]);
    expect(d.offerRoom(T(), 40_000)).toHaveLength(1);
  });

  it("coalesces: one publish per interval, the rest counted and published when due, with the last sender", () => {
    const d = mk({ withBody: true });
    d.enable(PHONE, REG);
    d.setState(PHONE, "hibernating");
    expect(d.offerRoom(T("r/a"), 1000)).toHaveLength(1);
    expect(d.offerRoom(T("r/b"), 2000)).toEqual([]);
    expect(d.offerOwn(PHONE, T("carol@example.org", "chat"), 3000)).toEqual([]);
    expect(d.nextDue()).toBe(11_000);
    expect(d.due(10_999)).toEqual([]);
    expect(d.due(11_000)).toEqual([{ session: PHONE, registration: REG, summary: { count: 3, sender: "carol@example.org", body: "alice!" } }]);
    expect(d.nextDue()).toBeUndefined();
    expect(d.due(30_000)).toEqual([]);
    // after a quiet interval the next trigger publishes at once
    expect(d.offerRoom(T("r/d"), 30_000)[0]?.summary.count).toBe(4);
  });

  it("back online: pending pushes dropped, the next sleep counts afresh", () => {
    const d = mk();
    d.enable(PHONE, REG);
    d.setState(PHONE, "hibernating");
    d.offerRoom(T(), 0);
    d.offerRoom(T(), 1);
    d.setState(PHONE, "online");
    expect(d.nextDue()).toBeUndefined();
    expect(d.due(60_000)).toEqual([]);
    d.setState(PHONE, "hibernating");
    expect(d.offerRoom(T(), 2)[0]?.summary.count).toBe(1);
  });

  it("enable replaces the same service+node on another resource; disable by node or by service", () => {
    const d = mk();
    d.enable(PHONE, REG);
    d.enable("alice@example.org/phone2", { ...REG });
    expect(d.size).toBe(1);
    expect(d.registration(PHONE)).toBeUndefined();
    d.enable(PHONE, { ...REG, node: "n2" });
    d.enable("alice@example.org/tablet", { ...REG, service: "other.example" });
    expect(d.disable("push.example.net", "nope")).toBe(0);
    expect(d.disable("push.example.net", undefined)).toBe(2);
    expect(d.size).toBe(1);
  });

  it("keeps at most maxDevices registrations, the oldest going first", () => {
    const d = mk({ maxDevices: 2 });
    for (const r of ["a", "b", "c"]) d.enable(`alice@example.org/${r}`, { ...REG, node: r });
    expect(d.registration("alice@example.org/a")).toBeUndefined();
    expect(d.size).toBe(2);
  });

  it("a gone error forgets the registration; passing errors after MAX_PUSH_ERRORS in a row; a result resets; stale answers change nothing", () => {
    const d = mk();
    d.enable(PHONE, REG);
    expect(d.answered(PHONE, { ...REG }, "gone")).toBe(false);
    for (let i = 1; i < MAX_PUSH_ERRORS; i++) expect(d.answered(PHONE, REG, "retry")).toBe(false);
    expect(d.answered(PHONE, REG, undefined)).toBe(false);
    for (let i = 1; i < MAX_PUSH_ERRORS; i++) expect(d.answered(PHONE, REG, "retry")).toBe(false);
    expect(d.answered(PHONE, REG, "retry")).toBe(true);
    expect(d.size).toBe(0);
    d.enable(PHONE, REG);
    expect(d.answered(PHONE, REG, "gone")).toBe(true);
    expect(d.size).toBe(0);
  });

  it("a room PM for a gone device is left to a server that accepted the enable; a hibernating one still gets it", () => {
    const d = mk();
    d.enable(PHONE, REG);
    d.serverAccepted(PHONE, { ...REG }); // another registration object: ignored
    d.setState(PHONE, "gone");
    expect(d.offerRoom(T(`${ROOM}/bob`, "room-pm"), 0)).toHaveLength(1);
    d.setState(PHONE, "online");
    d.serverAccepted(PHONE, REG);
    d.setState(PHONE, "hibernating");
    expect(d.offerRoom(T(`${ROOM}/bob`, "room-pm"), 0)).toHaveLength(1);
    d.setState(PHONE, "gone");
    expect(d.offerRoom(T(`${ROOM}/bob`, "room-pm"), 20_000)).toEqual([]);
    expect(d.offerRoom(T(), 20_000)).toHaveLength(1);
    // a PM not archived never reaches the server's push module: the proxy pushes it
    expect(d.offerRoom({ ...T(`${ROOM}/bob`, "room-pm"), unarchived: true }, 40_000)).toHaveLength(1);
  });

  it("dropGone forgets the registrations of ended sessions only", () => {
    const d = mk();
    d.enable(PHONE, REG);
    d.enable("alice@example.org/tablet", { ...REG, node: "t" });
    d.setState(PHONE, "gone");
    expect(d.dropGone()).toBe(1);
    expect(d.state("alice@example.org/tablet")).toBe("online");
  });
});
