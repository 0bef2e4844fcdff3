import { beforeEach, describe, expect, it, vi } from "vitest";
import { NS_DELAY } from "../xml/ns.js";
import { utf8Length } from "../muc/history.js";

// Counts parses, to prove the active path never parses (docs/architecture.md §8.5: hot path).
const parses = vi.hoisted(() => ({ n: 0 }));
vi.mock("../xml/element.js", async (importOriginal) => {
  const orig = await importOriginal<typeof import("../xml/element.js")>();
  return {
    ...orig,
    parseStanza: (bytes: Buffer | string) => {
      parses.n++;
      return orig.parseStanza(bytes);
    },
  };
});

const { parseStanza } = await import("../xml/element.js");
const { CsiFilter, CSI_DEFAULTS } = await import("./filter.js");

const ROOM = "room@conference.example.org";
const ROOM2 = "other@conference.example.org";
const TO = "alice@example.org/phone";
const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 6);

const MUC_USER = "http://jabber.org/protocol/muc#user";
const pres = (nick: string, id: string, opts: { room?: string; type?: string; show?: string } = {}) =>
  `<presence from='${opts.room ?? ROOM}/${nick}' to='${TO}' id='${id}'${opts.type ? ` type='${opts.type}'` : ""}>${opts.show ? `<show>${opts.show}</show>` : ""}<x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>`;
const selfPres = (id: string) =>
  `<presence from='${ROOM}/alice' to='${TO}' id='${id}'><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/><status code='110'/></x></presence>`;
const body = (nick: string, id: string, text = id) => `<message type='groupchat' from='${ROOM}/${nick}' to='${TO}' id='${id}'><body>${text}</body></message>`;
const cs = (nick: string, id: string, state = "composing", type = "groupchat") =>
  `<message type='${type}' from='${ROOM}/${nick}' to='${TO}' id='${id}'><${state} xmlns='http://jabber.org/protocol/chatstates'/></message>`;
const marker = (nick: string, id: string) => `<message type='groupchat' from='${ROOM}/${nick}' to='${TO}' id='${id}'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>`;
const iq = (id: string) => `<iq type='get' from='${ROOM}/bob' to='${TO}' id='${id}'><query xmlns='jabber:iq:version'/></iq>`;

function ids(out: readonly string[]): string[] {
  return out.map((s) => String(parseStanza(s).attrs.id));
}
function stampOf(xml: string): Record<string, unknown> | undefined {
  const d = parseStanza(xml).getChild("delay", NS_DELAY);
  return d ? { ...(d.attrs as Record<string, unknown>) } : undefined;
}
/** The stanza without the delay the filter added: equal to what was offered. */
function unstamped(xml: string): string {
  const el = parseStanza(xml);
  for (const d of el.getChildren("delay", NS_DELAY)) el.remove(d);
  return el.toString();
}
function same(a: string): string {
  return parseStanza(a).toString();
}

function inactive(opts: ConstructorParameters<typeof CsiFilter>[0] = {}): InstanceType<typeof CsiFilter> {
  const f = new CsiFilter(opts);
  f.setInactive();
  return f;
}

beforeEach(() => {
  parses.n = 0;
});

describe("CsiFilter while active", () => {
  it("starts active (XEP-0352 §5) and passes every stanza through untouched, without parsing it", () => {
    const f = new CsiFilter();
    expect(f.active).toBe(true);
    for (const s of [pres("bob", "p1"), cs("bob", "c1"), marker("bob", "m1"), "<not-even-xml", ""]) {
      const out = f.offer(s, T0);
      expect(out).toEqual([s]);
      expect(out[0]).toBe(s);
    }
    expect(parses.n).toBe(0);
    expect(f.held).toBe(0);
    expect(f.clientSent()).toEqual([]);
  });

  it("offerAll returns the very same array", () => {
    const f = new CsiFilter();
    const batch = [pres("bob", "p1"), body("bob", "b1")];
    expect(f.offerAll(batch, T0)).toBe(batch);
    expect(parses.n).toBe(0);
  });
});

describe("CsiFilter while inactive: what is held", () => {
  it("holds occupant presences, chat states and body-less messages", () => {
    const f = inactive();
    expect(f.offer(pres("bob", "p1"), T0)).toEqual([]);
    expect(f.offer(cs("bob", "c1"), T0)).toEqual([]);
    expect(f.offer(marker("bob", "m1"), T0)).toEqual([]);
    expect(f.held).toBe(3);
    expect(f.active).toBe(false);
    expect(parses.n).toBe(3); // the mock is in place: while inactive each stanza is parsed once
  });

  it("counts held bytes as written (UTF-8, delay included)", () => {
    const f = inactive();
    f.offer(pres("bøb", "p1", { show: "away" }), T0);
    f.offer(cs("😀", "c1"), T0);
    const out = f.setActive();
    expect(f.heldBytes).toBe(0);
    const g = inactive();
    g.offer(pres("bøb", "p1", { show: "away" }), T0);
    g.offer(cs("😀", "c1"), T0);
    expect(g.heldBytes).toBe(out.reduce((n, s) => n + utf8Length(s), 0));
  });
});

describe("CsiFilter while inactive: flush triggers", () => {
  const triggers: [string, string][] = [
    ["a message with a body", body("bob", "T")],
    ["a PM with a body", `<message type='chat' from='${ROOM}/bob' to='${TO}' id='T'><body>psst</body><x xmlns='${MUC_USER}'/></message>`],
    ["a subject", `<message type='groupchat' from='${ROOM}' to='${TO}' id='T'><subject>topic</subject></message>`],
    ["an XEP-0380 encrypted message", `<message type='groupchat' from='${ROOM}/bob' to='${TO}' id='T'><encryption xmlns='urn:xmpp:eme:0' namespace='urn:x'/></message>`],
    ["an OMEMO message", `<message type='groupchat' from='${ROOM}/bob' to='${TO}' id='T'><encrypted xmlns='eu.siacs.conversations.axolotl'><payload>x</payload></encrypted></message>`],
    ["a mediated invitation", `<message from='${ROOM}' to='${TO}' id='T'><x xmlns='${MUC_USER}'><invite from='carol@example.org'/></x></message>`],
    ["an IQ get", iq("T")],
    ["an IQ result", `<iq type='result' from='${ROOM}/bob' to='${TO}' id='T'/>`],
    ["a self-presence (110)", selfPres("T")],
    ["an error message", `<message type='error' from='${ROOM}' to='${TO}' id='T'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`],
    ["an error presence", `<presence type='error' from='${ROOM}/alice' to='${TO}' id='T'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`],
  ];

  it.each(triggers)("%s: everything held in order, then the stanza itself, untouched", (_what, trigger) => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(cs("carol", "c1"), T0 + 1);
    f.offer(marker("dave", "m1"), T0 + 2);
    const out = f.offer(trigger, T0 + 3);
    expect(ids(out)).toEqual(["p1", "c1", "m1", "T"]);
    expect(out[3]).toBe(trigger);
    expect(out.slice(0, 3).map(unstamped)).toEqual([pres("bob", "p1"), cs("carol", "c1"), marker("dave", "m1")].map(same));
    expect(f.held).toBe(0);
    expect(f.heldBytes).toBe(0);
    expect(f.active).toBe(false);
    // and holding resumes
    expect(f.offer(pres("bob", "p2"), T0 + 4)).toEqual([]);
    expect(f.held).toBe(1);
  });

  it.each(triggers)("%s with nothing held: just the stanza", (_what, trigger) => {
    const f = inactive();
    expect(f.offer(trigger, T0)).toEqual([trigger]);
  });

  it("anything the client sends: everything held, and the session stays inactive", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(cs("bob", "c1"), T0);
    expect(ids(f.clientSent())).toEqual(["p1", "c1"]);
    expect(f.active).toBe(false);
    expect(f.clientSent()).toEqual([]);
    expect(f.offer(pres("bob", "p2"), T0)).toEqual([]);
  });

  it("<active/>: everything held, and stanzas pass untouched again", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(marker("bob", "m1"), T0);
    expect(ids(f.setActive())).toEqual(["p1", "m1"]);
    expect(f.active).toBe(true);
    expect(f.held).toBe(0);
    const p = pres("bob", "p2");
    expect(f.offer(p, T0)).toEqual([p]);
    expect(f.setActive()).toEqual([]);
  });

  it("the count cap: the stanza that would be one too many flushes them all, itself untouched", () => {
    const f = inactive({ maxHeld: 3 });
    for (const n of ["a", "b", "c"]) expect(f.offer(pres(n, n), T0)).toEqual([]);
    const d = pres("d", "d");
    const out = f.offer(d, T0);
    expect(ids(out)).toEqual(["a", "b", "c", "d"]);
    expect(out[3]).toBe(d);
    expect(f.held).toBe(0);
    expect(f.offer(pres("e", "e"), T0)).toEqual([]);
  });

  it("the count cap counts what is held, not what was superseded", () => {
    const f = inactive({ maxHeld: 2 });
    for (let i = 0; i < 50; i++) expect(f.offer(pres("bob", `p${i}`), T0)).toEqual([]);
    expect(f.held).toBe(1);
    expect(f.offer(pres("carol", "c"), T0)).toEqual([]);
    expect(ids(f.offer(pres("dave", "d"), T0))).toEqual(["p49", "c", "d"]);
  });

  it("the byte cap: held bytes never exceed it; the stanza that would exceed it flushes", () => {
    const probe = inactive();
    probe.offer(pres("a", "a"), T0);
    const one = probe.heldBytes;
    const f = inactive({ maxHeldBytes: 2 * one });
    expect(f.offer(pres("a", "a"), T0)).toEqual([]);
    expect(f.offer(pres("b", "b"), T0)).toEqual([]);
    expect(f.heldBytes).toBe(2 * one);
    expect(ids(f.offer(pres("c", "c"), T0))).toEqual(["a", "b", "c"]);
    expect(f.heldBytes).toBe(0);
  });

  it("a stanza larger than the byte cap is written at once", () => {
    const f = inactive({ maxHeldBytes: 100 });
    const big = pres("bob", "big", { show: "x".repeat(200) });
    expect(f.offer(big, T0)).toEqual([big]);
  });

  it("maxHeld 0 never holds: the filter is off but still CSI-aware", () => {
    const f = inactive({ maxHeld: 0 });
    const p = pres("bob", "p1");
    expect(f.offer(p, T0)).toEqual([p]);
    expect(f.held).toBe(0);
  });

  it("default caps", () => {
    expect(CSI_DEFAULTS).toEqual({ maxHeld: 256, maxHeldBytes: 256 * 1024 });
    const f = inactive();
    for (let i = 0; i < 256; i++) expect(f.offer(pres(`n${i}`, `p${i}`), T0)).toEqual([]);
    expect(f.offer(pres("last", "last"), T0)).toHaveLength(257);
  });
});

describe("CsiFilter: superseding", () => {
  it("keeps only the latest presence per occupant, at the position of the latest", () => {
    const f = inactive();
    f.offer(pres("bob", "b1"), T0);
    f.offer(pres("carol", "c1"), T0);
    f.offer(pres("bob", "b2", { show: "away" }), T0);
    f.offer(marker("dave", "m1"), T0);
    f.offer(pres("bob", "b3", { type: "unavailable" }), T0);
    expect(f.superseded).toBe(2);
    expect(ids(f.setActive())).toEqual(["c1", "m1", "b3"]);
  });

  it("occupants are full JIDs: the same nick in two rooms is two occupants", () => {
    const f = inactive();
    f.offer(pres("bob", "r1"), T0);
    f.offer(pres("bob", "r2", { room: ROOM2 }), T0);
    expect(ids(f.setActive())).toEqual(["r1", "r2"]);
  });

  it("a phone back after an hour in 20 busy rooms gets one presence per occupant", () => {
    const f = inactive({ maxHeld: 10_000, maxHeldBytes: 64 * 1024 * 1024 });
    const rooms = Array.from({ length: 20 }, (_, i) => `room${i}@conference.example.org`);
    for (let round = 0; round < 30; round++)
      for (const room of rooms) for (let o = 0; o < 25; o++) expect(f.offer(pres(`o${o}`, `${room}/${o}/${round}`, { room, show: round % 2 ? "away" : "dnd" }), T0 + round)).toEqual([]);
    const out = f.setActive();
    expect(out).toHaveLength(20 * 25);
    expect(ids(out).every((id) => id.endsWith("/29"))).toBe(true);
    expect(f.superseded).toBe(20 * 25 * 29);
  });

  it("keeps only the latest bare chat state per sender, type and thread", () => {
    const f = inactive();
    f.offer(cs("bob", "c1", "composing"), T0);
    f.offer(cs("bob", "pm1", "composing", "chat"), T0);
    f.offer(cs("carol", "k1", "composing"), T0);
    f.offer(cs("bob", "c2", "paused"), T0);
    f.offer(cs("bob", "c3", "active"), T0);
    expect(ids(f.setActive())).toEqual(["pm1", "k1", "c3"]);
  });

  it("a chat state carrying more (a marker) is never superseded, nor does it supersede", () => {
    const f = inactive();
    const withMarker = `<message type='groupchat' from='${ROOM}/bob' to='${TO}' id='cm'><active xmlns='http://jabber.org/protocol/chatstates'/><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>`;
    f.offer(cs("bob", "c1"), T0);
    f.offer(withMarker, T0);
    f.offer(cs("bob", "c2", "paused"), T0);
    expect(ids(f.setActive())).toEqual(["cm", "c2"]);
  });

  it("presences and chat states of one occupant do not supersede each other; plain holds are all kept", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(cs("bob", "c1"), T0);
    f.offer(marker("bob", "m1"), T0);
    f.offer(marker("bob", "m2"), T0);
    expect(ids(f.setActive())).toEqual(["p1", "c1", "m1", "m2"]);
  });

  it("a flush ends superseding: what was written is never taken back", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    expect(ids(f.offer(body("carol", "b1"), T0))).toEqual(["p1", "b1"]);
    f.offer(pres("bob", "p2"), T0);
    expect(ids(f.setActive())).toEqual(["p2"]);
    expect(f.superseded).toBe(0);
  });
});

describe("CsiFilter: delay stamps", () => {
  it("each held stanza is stamped with when it was held, from the room's bare JID; the trigger is not", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(cs("carol", "c1"), T0 + 1500);
    f.offer(pres("dave", "p2", { room: ROOM2 }), T0 + 60_000);
    const out = f.offer(body("bob", "b1"), T0 + 70_000);
    expect(out.map(stampOf)).toEqual([
      { xmlns: NS_DELAY, from: ROOM, stamp: "2024-01-02T03:04:05.006Z" },
      { xmlns: NS_DELAY, from: ROOM, stamp: "2024-01-02T03:04:06.506Z" },
      { xmlns: NS_DELAY, from: ROOM2, stamp: "2024-01-02T03:05:05.006Z" },
      undefined,
    ]);
  });

  it("a superseding presence carries its own time", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(pres("bob", "p2"), T0 + 1000);
    expect(f.setActive().map(stampOf)).toEqual([{ xmlns: NS_DELAY, from: ROOM, stamp: "2024-01-02T03:04:06.006Z" }]);
  });

  it("a held stanza that already has a delay is not stamped again", () => {
    const f = inactive();
    const old = `<message type='groupchat' from='${ROOM}/bob' to='${TO}' id='h'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/><delay xmlns='urn:xmpp:delay' from='${ROOM}' stamp='2020-01-01T00:00:00Z'/></message>`;
    f.offer(old, T0);
    const [out] = f.setActive();
    expect(parseStanza(out ?? "").getChildren("delay", NS_DELAY)).toHaveLength(1);
    expect(stampOf(out ?? "")?.stamp).toBe("2020-01-01T00:00:00Z");
    expect(same(out ?? "")).toBe(same(old));
  });

  it("an invalid time holds the stanza without a stamp and does not throw", () => {
    const f = inactive();
    expect(f.offer(pres("bob", "p1"), Number.NaN)).toEqual([]);
    const out = f.setActive();
    expect(out.map(stampOf)).toEqual([undefined]);
    expect(out.map(same)).toEqual([same(pres("bob", "p1"))]);
  });
});

describe("CsiFilter: order and cycles", () => {
  it("held stanzas keep their order relative to what is flushed", () => {
    const f = inactive();
    const written: string[] = [];
    const offer = (s: string) => written.push(...ids(f.offer(s, T0)));
    offer(pres("bob", "1"));
    offer(marker("bob", "2"));
    offer(body("carol", "3"));
    offer(cs("dave", "4"));
    offer(iq("5"));
    offer(pres("erin", "6"));
    written.push(...ids(f.clientSent()));
    offer(marker("bob", "7"));
    offer(selfPres("8"));
    offer(cs("bob", "9"));
    written.push(...ids(f.setActive()));
    offer(pres("bob", "10"));
    expect(written).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
  });

  it("inactive → active → inactive → active", () => {
    const f = new CsiFilter();
    for (let cycle = 0; cycle < 3; cycle++) {
      f.setInactive();
      expect(f.offer(pres("bob", `p${cycle}`), T0)).toEqual([]);
      expect(f.offer(cs("bob", `c${cycle}`), T0)).toEqual([]);
      expect(ids(f.setActive())).toEqual([`p${cycle}`, `c${cycle}`]);
      const p = pres("carol", `a${cycle}`);
      expect(f.offer(p, T0)).toEqual([p]);
    }
  });

  it("setInactive twice keeps what is held", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.setInactive();
    expect(f.held).toBe(1);
    expect(ids(f.setActive())).toEqual(["p1"]);
  });

  it("offerAll while inactive: the same as offering one by one", () => {
    const f = inactive();
    const out = f.offerAll([pres("bob", "p1"), cs("bob", "c1"), body("bob", "b1"), pres("bob", "p2")], T0);
    expect(ids(out)).toEqual(["p1", "c1", "b1"]);
    expect(f.held).toBe(1);
  });
});

describe("CsiFilter: drop", () => {
  it("forgets what is held and stays inactive", () => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    f.offer(cs("bob", "c1"), T0);
    f.drop();
    expect(f.held).toBe(0);
    expect(f.heldBytes).toBe(0);
    expect(f.active).toBe(false);
    expect(f.clientSent()).toEqual([]);
    // superseding state is gone too: a new presence of bob is simply held
    f.offer(pres("bob", "p2"), T0);
    expect(ids(f.setActive())).toEqual(["p2"]);
    expect(f.superseded).toBe(0);
  });
});

describe("CsiFilter: malformed input never throws and is passed through", () => {
  const bad = ["<presence from='x'", "", "   ", "not xml", "<message><body>x</message>", "</presence>", "<a b='1' b='2'/>"];

  it.each(bad.map((b) => [JSON.stringify(b), b]))("%s: after what is held", (_name, b) => {
    const f = inactive();
    f.offer(pres("bob", "p1"), T0);
    let out: readonly string[] = [];
    expect(() => (out = f.offer(b, T0))).not.toThrow();
    expect(out).toHaveLength(2);
    expect(out[1]).toBe(b);
    expect(f.held).toBe(0);
  });
});

describe("CsiFilter: flush reasons", () => {
  it("counts flushes that wrote something held, by reason", () => {
    const f = inactive({ maxHeld: 2, maxHeldBytes: 2000 });
    let n = 0;
    const hold = () => f.offer(pres("bob", `p${n++}`), T0);
    expect(f.offer(body("bob", "b0"), T0)).toHaveLength(1); // nothing held: not counted
    hold();
    f.offer(body("bob", "b1"), T0);
    hold();
    f.offer("<garbage", T0);
    hold();
    f.clientSent();
    f.clientSent();
    f.offer(pres("a", "a"), T0);
    f.offer(pres("b", "b"), T0);
    f.offer(pres("c", "c"), T0); // count cap
    f.offer(pres("e", "e"), T0);
    f.offer(pres("d", "d", { show: "x".repeat(3000) }), T0); // byte cap
    hold();
    f.setActive();
    f.setActive();
    expect(f.flushes).toEqual({ important: 1, unparsed: 1, client: 1, active: 1, "count-cap": 1, "byte-cap": 1 });
  });

  it("is a copy", () => {
    const f = new CsiFilter();
    (f.flushes as Record<string, number>).active = 99;
    expect(f.flushes.active).toBe(0);
  });
});

describe("CsiFilter options", () => {
  it.each([[-1], [1.5], [Number.NaN], [Number.POSITIVE_INFINITY]])("rejects maxHeld / maxHeldBytes %s", (v) => {
    expect(() => new CsiFilter({ maxHeld: v })).toThrow(RangeError);
    expect(() => new CsiFilter({ maxHeldBytes: v })).toThrow(RangeError);
  });

  it("importantNamespaces: such messages flush", () => {
    const f = inactive({ importantNamespaces: ["urn:xmpp:reactions:0"] });
    f.offer(pres("bob", "p1"), T0);
    const r = `<message type='groupchat' from='${ROOM}/bob' to='${TO}' id='r'><reactions xmlns='urn:xmpp:reactions:0' id='m'><reaction>+1</reaction></reactions></message>`;
    expect(ids(f.offer(r, T0))).toEqual(["p1", "r"]);
  });
});
