/**
 * Helpers for the core/muc tests (kept out of *.test.ts so several test files can share them;
 * no test-framework imports, so it is harmless in the build output).
 */
import { Element, parse } from "ltx";
import type { Action } from "./actions.js";
import { NS_DELAY, NS_MUC_USER } from "../xml/ns.js";

export const ROOM = "room@conference.example.org";
export const ALICE = "alice@example.org";
export const ACCOUNT_SESSION = `${ALICE}/minimix-abc`;
export const PHONE = `${ALICE}/phone`;
export const LAPTOP = `${ALICE}/laptop`;
export const TABLET = `${ALICE}/tablet`;

/** Parses XML into a stanza (no default xmlns, as stanzas arrive from the stream layer). */
export function x(xml: string): Element {
  const el = parse(xml);
  if (!(el instanceof Element)) throw new Error("not an element");
  return el;
}

export function sent(actions: Action[], session: string): Element[] {
  return actions.flatMap((a) => (a.kind === "toSession" && a.session === session ? [a.stanza] : []));
}

export function upstream(actions: Action[]): Element[] {
  return actions.flatMap((a) => (a.kind === "toRoomUpstream" ? [a.stanza] : []));
}

export function kinds(actions: Action[]): string[] {
  return actions.map((a) => a.kind);
}

export function codes(stanza: Element): string[] {
  const xEl = stanza.getChild("x", NS_MUC_USER);
  return xEl ? xEl.getChildren("status").map((s) => String(s.attrs.code)) : [];
}

export function delayStamp(stanza: Element): string | undefined {
  const d = stanza.getChild("delay", NS_DELAY);
  return d ? String(d.attrs.stamp) : undefined;
}

export function join(room: string, nick: string, opts: { id?: string; history?: string; password?: string; show?: string } = {}): Element {
  const id = opts.id !== undefined ? ` id='${opts.id}'` : "";
  const show = opts.show !== undefined ? `<show>${opts.show}</show>` : "";
  const pw = opts.password !== undefined ? `<password>${opts.password}</password>` : "";
  return x(`<presence to='${room}/${nick}'${id}>${show}<x xmlns='http://jabber.org/protocol/muc'>${pw}${opts.history ?? ""}</x></presence>`);
}

export function occupant(room: string, nick: string, to: string, opts: { role?: string; affiliation?: string; type?: string; codes?: string[]; itemNick?: string } = {}): Element {
  const type = opts.type !== undefined ? ` type='${opts.type}'` : "";
  const itemNick = opts.itemNick !== undefined ? ` nick='${opts.itemNick}'` : "";
  const status = (opts.codes ?? []).map((c) => `<status code='${c}'/>`).join("");
  return x(
    `<presence from='${room}/${nick}' to='${to}'${type}><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='${opts.affiliation ?? "member"}' role='${opts.role ?? "participant"}'${itemNick}/>${status}</x></presence>`,
  );
}

export function selfPresence(room: string, nick: string, to: string, extra: string[] = [], opts: { type?: string; itemNick?: string; affiliation?: string; role?: string } = {}): Element {
  return occupant(room, nick, to, { ...opts, codes: ["110", ...extra] });
}

export function groupchat(room: string, nick: string, to: string, body: string, opts: { id?: string; stamp?: string; sid?: string } = {}): Element {
  const id = opts.id !== undefined ? ` id='${opts.id}'` : "";
  const delay = opts.stamp !== undefined ? `<delay xmlns='urn:xmpp:delay' from='${room}' stamp='${opts.stamp}'/>` : "";
  const sid = opts.sid !== undefined ? `<stanza-id xmlns='urn:xmpp:sid:0' by='${room}' id='${opts.sid}'/>` : "";
  return x(`<message type='groupchat' from='${room}/${nick}' to='${to}'${id}><body>${body}</body>${sid}${delay}</message>`);
}

export function subject(room: string, nick: string, to: string, text: string): Element {
  return x(`<message type='groupchat' from='${room}/${nick}' to='${to}'><subject>${text}</subject></message>`);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

import { RoomMachine } from "./room-machine.js";
import type { RoomMachineOptions } from "./machine-state.js";

/**
 * Alice's phone joined ROOM as "alice" through the account session: bob (owner) is there, the
 * room is non-anonymous and logged (100, 170), the subject is "Hello". Time 1000-1003.
 */
export function joinedRoom(opts: Partial<RoomMachineOptions> = {}): RoomMachine {
  const a = new RoomMachine(ALICE, opts);
  a.setAccountSessionJid(ACCOUNT_SESSION);
  a.fromSession(PHONE, join(ROOM, "alice", { id: "j1" }), 1000);
  a.accountSessionUp(1000);
  a.fromRoom(occupant(ROOM, "bob", ACCOUNT_SESSION, { role: "moderator", affiliation: "owner" }), 1001);
  a.fromRoom(selfPresence(ROOM, "alice", ACCOUNT_SESSION, ["100", "170"]), 1002);
  a.fromRoom(subject(ROOM, "bob", ACCOUNT_SESSION, "Hello"), 1003);
  return a;
}
