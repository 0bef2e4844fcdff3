/**
 * Property test of the CSI filter (docs/architecture.md §8.5): random room traffic (presences of a
 * few occupants in two rooms, chat states, markers, body messages, IQs, self-presences, garbage)
 * interleaved with state changes and client activity, checked against what the client must end
 * up seeing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { NS_DELAY } from "../xml/ns.js";
import { CsiFilter } from "./filter.js";

const TO = "alice@example.org/phone";
const ROOMS = ["one@conference.example.org", "two@conference.example.org"] as const;
const MUC_USER = "http://jabber.org/protocol/muc#user";
const T0 = Date.UTC(2024, 0, 1);

type Op =
  | { k: "pres"; room: number; occ: number; unavailable: boolean; show: string }
  | { k: "cs"; room: number; occ: number; state: string; pm: boolean }
  | { k: "marker"; room: number; occ: number }
  | { k: "body"; room: number; occ: number }
  | { k: "iq"; room: number; occ: number }
  | { k: "self"; room: number }
  | { k: "garbage" }
  | { k: "inactive" }
  | { k: "active" }
  | { k: "client" }
  | { k: "tick"; ms: number };

const room = fc.integer({ min: 0, max: ROOMS.length - 1 });
const occ = fc.integer({ min: 0, max: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant("pres" as const), room, occ, unavailable: fc.boolean(), show: fc.constantFrom("", "away", "dnd", "chat", "xa") }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("cs" as const), room, occ, state: fc.constantFrom("active", "composing", "paused"), pm: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("marker" as const), room, occ }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("body" as const), room, occ }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("iq" as const), room, occ }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("self" as const), room }) },
  { weight: 1, arbitrary: fc.constant({ k: "garbage" as const }) },
  { weight: 2, arbitrary: fc.constant({ k: "inactive" as const }) },
  { weight: 1, arbitrary: fc.constant({ k: "active" as const }) },
  { weight: 1, arbitrary: fc.constant({ k: "client" as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 3_600_000 }) }) },
);

/** One offered stanza and what the model knows about it. */
interface Offered {
  id: string;
  xml: string;
  kind: "pres" | "cs" | "marker" | "body" | "iq" | "self" | "garbage";
  /** Supersede key: occupant for presences, sender+type for chat states. */
  key?: string;
  at: number;
}

function stanzaFor(op: Op, id: string): Omit<Offered, "at"> | undefined {
  if (op.k === "garbage") return { id, xml: `<message id='${id}'><body>cut`, kind: "garbage" };
  if (op.k === "inactive" || op.k === "active" || op.k === "client" || op.k === "tick") return undefined;
  const r = ROOMS[op.room] ?? ROOMS[0];
  switch (op.k) {
    case "pres": {
      const from = `${r}/o${op.occ}`;
      const type = op.unavailable ? " type='unavailable'" : "";
      const show = op.show && !op.unavailable ? `<show>${op.show}</show>` : "";
      return { id, kind: "pres", key: from, xml: `<presence from='${from}' to='${TO}' id='${id}'${type}>${show}<x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/></x></presence>` };
    }
    case "cs": {
      const from = `${r}/o${op.occ}`;
      const type = op.pm ? "chat" : "groupchat";
      const mark = op.pm ? `<x xmlns='${MUC_USER}'/>` : "";
      return { id, kind: "cs", key: `${from} ${type}`, xml: `<message from='${from}' to='${TO}' id='${id}' type='${type}'><${op.state} xmlns='http://jabber.org/protocol/chatstates'/>${mark}</message>` };
    }
    case "marker":
      return { id, kind: "marker", xml: `<message from='${r}/o${op.occ}' to='${TO}' id='${id}' type='groupchat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>` };
    case "body":
      return { id, kind: "body", xml: `<message from='${r}/o${op.occ}' to='${TO}' id='${id}' type='groupchat'><body>hello ${id}</body></message>` };
    case "iq":
      return { id, kind: "iq", xml: `<iq from='${r}/o${op.occ}' to='${TO}' id='${id}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>` };
    case "self":
      return { id, kind: "self", xml: `<presence from='${r}/alice' to='${TO}' id='${id}'><x xmlns='${MUC_USER}'><item affiliation='member' role='participant'/><status code='110'/></x></presence>` };
  }
}

const FLUSHING: ReadonlySet<Offered["kind"]> = new Set(["body", "iq", "self", "garbage"]);

/** Which offered stanza a written one is; garbage is recognised by its exact bytes. */
function idOf(xml: string, byXml: Map<string, Offered>): string {
  const g = byXml.get(xml);
  if (g?.kind === "garbage") return g.id;
  return String(parseStanza(xml).attrs.id);
}

function withoutDelay(xml: string): string {
  const el = parseStanza(xml);
  for (const d of el.getChildren("delay", NS_DELAY)) el.remove(d);
  return el.toString();
}

function run(ops: Op[], limits: { maxHeld: number; maxHeldBytes: number }): void {
  const f = new CsiFilter(limits);
  const offered: Offered[] = [];
  const byId = new Map<string, Offered>();
  const byXml = new Map<string, Offered>();
  const written: { id: string; xml: string }[] = [];
  let now = T0;

  const write = (out: readonly string[]) => {
    for (const xml of out) written.push({ id: idOf(xml, byXml), xml });
  };

  ops.forEach((op, i) => {
    const wasActive = f.active;
    switch (op.k) {
      case "inactive":
        f.setInactive();
        break;
      case "active":
        write(f.setActive());
        expect(f.held).toBe(0);
        expect(f.heldBytes).toBe(0);
        break;
      case "client":
        write(f.clientSent());
        expect(f.held).toBe(0);
        expect(f.active).toBe(wasActive);
        break;
      case "tick":
        now += op.ms;
        break;
      default: {
        const s = stanzaFor(op, `s${i}`);
        if (s === undefined) break;
        const o: Offered = { ...s, at: now };
        offered.push(o);
        byId.set(o.id, o);
        byXml.set(o.xml, o);
        const out = f.offer(o.xml, now);
        // what an offer writes is always "held stanzas…, then this one untouched", or nothing
        if (out.length > 0) expect(out[out.length - 1]).toBe(o.xml);
        if (wasActive) expect(out).toEqual([o.xml]);
        if (FLUSHING.has(o.kind)) {
          expect(out.length).toBeGreaterThan(0);
          expect(f.held).toBe(0);
        }
        write(out);
      }
    }
    expect(f.held).toBeLessThanOrEqual(limits.maxHeld);
    expect(f.heldBytes).toBeLessThanOrEqual(limits.maxHeldBytes);
  });
  write(f.setActive());
  expect(f.held).toBe(0);

  // nothing is written twice
  const writtenIds = written.map((w) => w.id);
  expect(new Set(writtenIds).size).toBe(writtenIds.length);

  // written order is offer order
  const index = new Map(offered.map((o, i) => [o.id, i]));
  const positions = writtenIds.map((id) => index.get(id) ?? -1);
  expect(positions.every((p) => p >= 0)).toBe(true);
  for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeGreaterThan(positions[i - 1] ?? -1);

  // every message with a body (and every IQ, self-presence, garbage) is written exactly once, in order
  const must = offered.filter((o) => FLUSHING.has(o.kind)).map((o) => o.id);
  const mustSet = new Set(must);
  expect(writtenIds.filter((id) => mustSet.has(id))).toEqual(must);

  const lastOffered = new Map<string, string>();
  for (const o of offered) if (o.key !== undefined) lastOffered.set(o.key, o.id);

  // what is not written was superseded: a presence / chat state with a later one of the same key
  const writtenSet = new Set(writtenIds);
  for (const o of offered) {
    if (writtenSet.has(o.id)) continue;
    expect(["pres", "cs"]).toContain(o.kind);
    expect(o.key !== undefined && lastOffered.get(o.key) !== o.id, `${o.id} lost without a newer one`).toBe(true);
  }

  // the client's view ends up right: the last presence of each occupant (and the last chat state of
  // each sender) that it gets is the last one offered
  const lastWritten = new Map<string, string>();
  for (const id of writtenIds) {
    const k = byId.get(id)?.key;
    if (k !== undefined) lastWritten.set(k, id);
  }
  expect(lastWritten).toEqual(lastOffered);

  // content: what is written is what was offered, plus (only when held) a delay from the room stamped when held
  for (const w of written) {
    const o = byId.get(w.id);
    if (o === undefined) throw new Error(`unknown ${w.id}`);
    if (w.xml === o.xml) continue;
    expect(o.kind).not.toBe("garbage");
    expect(withoutDelay(w.xml)).toBe(parseStanza(o.xml).toString());
    const delay = parseStanza(w.xml).getChild("delay", NS_DELAY);
    expect(delay?.attrs).toEqual({ xmlns: NS_DELAY, from: String(parseStanza(o.xml).attrs.from).split("/")[0], stamp: new Date(o.at).toISOString() });
  }
}

describe("CsiFilter property", () => {
  it("exactly once, in order, superseded only by a newer one, client view correct, delays right", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 200, size: "max" }),
        fc.constantFrom(1, 3, 10, 256),
        fc.constantFrom(300, 2_000, 1_000_000),
        (ops, maxHeld, maxHeldBytes) => run(ops, { maxHeld, maxHeldBytes }),
      ),
      { numRuns: 200 },
    );
  });

  it("mostly inactive phones: long inactive stretches with few flushes", () => {
    const quiet = fc.array(
      fc.oneof(
        { weight: 20, arbitrary: opArb.filter((o) => o.k === "pres" || o.k === "cs" || o.k === "marker" || o.k === "tick") },
        { weight: 1, arbitrary: opArb },
      ),
      { minLength: 1, maxLength: 300 },
    );
    fc.assert(
      fc.property(quiet, (ops) => run([{ k: "inactive" }, ...ops], { maxHeld: 256, maxHeldBytes: 1_000_000 })),
      { numRuns: 150 },
    );
  });
});
