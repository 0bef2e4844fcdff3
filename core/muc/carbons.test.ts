import { describe, expect, it } from "vitest";
import type { Element } from "ltx";
import { NS_CARBONS, NS_FORWARD } from "../xml/ns.js";
import { RoomMachine } from "./room-machine.js";
import { ACCOUNT_SESSION, ALICE, LAPTOP, PHONE, ROOM, join, joinedRoom, sent, upstream, x } from "./test-kit.js";

/** What the server sends `to` when the account session sent `inner` (XEP-0280 §6). */
function carbon(to: string, inner: string, opts: { kind?: "sent" | "received"; from?: string } = {}): Element {
  const kind = opts.kind ?? "sent";
  return x(`<message from='${opts.from ?? ALICE}' to='${to}' type='chat'><${kind} xmlns='${NS_CARBONS}'><forwarded xmlns='${NS_FORWARD}'>${inner}</forwarded></${kind}></message>`);
}

function pmFromAccount(id: string | undefined, to = `${ROOM}/bob`): string {
  const idAttr = id === undefined ? "" : ` id='${id}'`;
  return `<message xmlns='jabber:client' from='${ACCOUNT_SESSION}' to='${to}' type='chat'${idAttr}><body>psst</body></message>`;
}

function twoSessions(): ReturnType<typeof joinedRoom> {
  const a = joinedRoom();
  a.fromSession(LAPTOP, join(ROOM, "alice", { id: "j2" }), 1500);
  return a;
}

describe("carbons of PMs the account session sent (XEP-0280 §6, §6.1)", () => {
  it("the sending session gets no copy of its own PM; another session gets it as sent by the sender", () => {
    const a = twoSessions();
    a.fromSession(PHONE, x(`<message type='chat' to='${ROOM}/bob' id='p1'><body>psst</body></message>`), 2000);
    expect(a.sentCarbon(PHONE, carbon(PHONE, pmFromAccount("p1")))).toEqual({ kind: "drop" });
    const v = a.sentCarbon(LAPTOP, carbon(LAPTOP, pmFromAccount("p1")));
    expect(v.kind).toBe("deliver");
    if (v.kind !== "deliver") return;
    expect(v.stanza.attrs).toEqual({ from: ALICE, to: LAPTOP, type: "chat" });
    const inner = v.stanza.getChild("sent", NS_CARBONS)?.getChild("forwarded", NS_FORWARD)?.getChild("message");
    expect(inner?.attrs).toMatchObject({ from: PHONE, to: `${ROOM}/bob`, id: "p1", type: "chat" });
    expect(inner?.getChildText("body")).toBe("psst");
  });

  it("the laptop's PM is dropped on the laptop's leg and shown as the laptop's on the phone's", () => {
    const a = twoSessions();
    a.fromSession(LAPTOP, x(`<message type='chat' to='${ROOM}/bob' id='l1'><body>psst</body></message>`), 2000);
    expect(a.sentCarbon(LAPTOP, carbon(LAPTOP, pmFromAccount("l1")))).toEqual({ kind: "drop" });
    const v = a.sentCarbon(PHONE, carbon(PHONE, pmFromAccount("l1")));
    expect(v.kind === "deliver" && v.stanza.getChild("sent", NS_CARBONS)?.getChild("forwarded", NS_FORWARD)?.getChild("message")?.attrs.from).toBe(LAPTOP);
  });

  it("a PM without an id gets one upstream, so its carbon is still recognised; its bounce goes back without it", () => {
    const a = twoSessions();
    const [up] = upstream(a.fromSession(PHONE, x(`<message type='chat' to='${ROOM}/bob'><body>psst</body></message>`), 2000));
    const id = up?.attrs.id as string;
    expect(id).toMatch(/^mmx-msg-/);
    expect(a.sentCarbon(PHONE, carbon(PHONE, pmFromAccount(id)))).toEqual({ kind: "drop" });
    expect(a.sentCarbon(LAPTOP, carbon(LAPTOP, pmFromAccount(id))).kind).toBe("deliver");
    const bounce = x(`<message from='${ROOM}/bob' to='${ACCOUNT_SESSION}' type='error' id='${id}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    const acts = a.fromRoom(bounce, 2001);
    expect(sent(acts, LAPTOP)).toHaveLength(0);
    const [err] = sent(acts, PHONE);
    expect(err?.attrs.type).toBe("error");
    expect(err?.attrs.id).toBeUndefined();
  });

  it("groupchat without an id keeps having none (the room's reflection is the echo)", () => {
    const a = twoSessions();
    const [up] = upstream(a.fromSession(PHONE, x(`<message type='groupchat' to='${ROOM}'><body>hi</body></message>`), 2000));
    expect(up?.attrs.id).toBeUndefined();
  });

  describe("passes everything else untouched", () => {
    const cases: [string, (a: ReturnType<typeof joinedRoom>) => Element][] = [
      ["a received carbon (§5)", () => carbon(LAPTOP, pmFromAccount("p1"), { kind: "received" })],
      ["a carbon not from the user's bare JID (§11)", () => carbon(LAPTOP, pmFromAccount("p1"), { from: `${ALICE}/evil` })],
      ["a carbon from another account", () => carbon(LAPTOP, pmFromAccount("p1"), { from: "mallory@example.org" })],
      ["a carbon of what a session sent on its own leg", () => carbon(LAPTOP, pmFromAccount("p1").replace(ACCOUNT_SESSION, PHONE))],
      ["a carbon whose id the account session never sent", () => carbon(LAPTOP, pmFromAccount("unknown"))],
      ["a carbon of a message to a room the account is not in", () => carbon(LAPTOP, pmFromAccount("p1", "other@conference.example.org/bob"))],
      ["a carbon without a forwarded message", () => x(`<message from='${ALICE}' to='${LAPTOP}'><sent xmlns='${NS_CARBONS}'/></message>`)],
      ["not a message", () => x(`<iq from='${ALICE}' to='${LAPTOP}' type='result' id='i'/>`)],
    ];
    for (const [what, make] of cases) {
      it(what, () => {
        const a = twoSessions();
        a.fromSession(PHONE, x(`<message type='chat' to='${ROOM}/bob' id='p1'><body>psst</body></message>`), 2000);
        expect(a.sentCarbon(LAPTOP, make(a))).toEqual({ kind: "pass" });
        expect(a.sentCarbon(PHONE, make(a))).toEqual({ kind: "pass" });
      });
    }

    it("before the account session is bound", () => {
      const fresh = new RoomMachine(ALICE);
      fresh.fromSession(PHONE, join(ROOM, "alice"), 1000);
      expect(fresh.sentCarbon(PHONE, carbon(PHONE, pmFromAccount("p1")))).toEqual({ kind: "pass" });
    });
  });
});
