import { randomUUID } from "node:crypto";
import { xml, type Element, type TestClient } from "./client.js";

export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin";

export function codes(el: Element): string[] {
  return (el.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((s) => String(s.attrs.code));
}

export function isSelfPresence(el: Element, room: string): boolean {
  return el.is("presence") && typeof el.attrs.from === "string" && el.attrs.from.startsWith(`${room}/`) && codes(el).includes("110");
}

export function uniqueRoom(muc: string, prefix = "room"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}@${muc}`;
}

export interface JoinOptions {
  history?: Record<string, string>;
  password?: string;
  id?: string;
}

/** XEP-0045 §7.2: join; resolves with the self-presence (status 110) or the error presence. */
export async function join(c: TestClient, room: string, nick: string, o: JoinOptions = {}): Promise<Element> {
  const id = o.id ?? randomUUID();
  const x = xml("x", { xmlns: NS_MUC });
  if (o.history) x.cnode(xml("history", o.history));
  if (o.password) x.cnode(xml("password", {}, o.password));
  const start = c.received.length;
  const answer = new Promise<Element>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no join answer from ${room} for ${c.jid}`)), 10_000);
    const check = (el: Element): boolean => {
      const from = String(el.attrs.from ?? "");
      if (!el.is("presence") || !(from === room || from.startsWith(`${room}/`))) return false;
      return el.attrs.type === "error" || codes(el).includes("110");
    };
    const poll = setInterval(() => {
      const found = c.received.slice(start).find(check);
      if (found) {
        clearInterval(poll);
        clearTimeout(t);
        resolve(found);
      }
    }, 5);
  });
  await c.send(xml("presence", { to: `${room}/${nick}`, id }, x));
  return answer;
}

/** Creates a non-anonymous room (owner sees real JIDs) with `owner` — a client straight on the server. */
export async function createRoom(owner: TestClient, room: string, nick: string, extra: Record<string, string> = {}): Promise<void> {
  const self = await join(owner, room, nick, { history: { maxstanzas: "0" } });
  if (self.attrs.type === "error") throw new Error(`could not create ${room}: ${self.toString()}`);
  const fields = { FORM_TYPE: "http://jabber.org/protocol/muc#roomconfig", "muc#roomconfig_whois": "anyone", ...extra };
  const form = xml("x", { xmlns: "jabber:x:data", type: "submit" },
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))));
  await owner.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_OWNER }, form), room);
}

export async function groupchat(c: TestClient, room: string, body: string, id = randomUUID()): Promise<string> {
  await c.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, body)));
  return id;
}

export function groupchatsWithBody(c: TestClient, room: string, body: string): Element[] {
  return c.received.filter((el) => el.is("message") && el.attrs.type === "groupchat" &&
    String(el.attrs.from).startsWith(`${room}/`) && el.getChildText("body") === body);
}

/** Occupant nicks `c` currently sees as present in `room` (from the presences it received). */
export function occupantsSeen(c: TestClient, room: string): Map<string, Element> {
  const seen = new Map<string, Element>();
  for (const el of c.received) {
    if (!el.is("presence")) continue;
    const from = String(el.attrs.from ?? "");
    if (!from.startsWith(`${room}/`)) continue;
    const nick = from.slice(room.length + 1);
    if (el.attrs.type === "unavailable" || el.attrs.type === "error") seen.delete(nick);
    else seen.set(nick, el);
  }
  return seen;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
