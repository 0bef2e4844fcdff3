/** The three ways a client reaches Prosody in this benchmark, and the helpers shared by the measurements. */
import { BenchClient, type Endpoint, escapeAttr } from "./xmpp.js";

export type PathName = "direct" | "relay" | "proxy";

export interface Path {
  name: PathName;
  ep: Endpoint;
  /** The process between client and server (relay, proxy); undefined for direct. */
  pid?: number;
}

export interface Users {
  alice: { user: string; pass: string };
  bob: { user: string; pass: string };
  carol: { user: string; pass: string };
}

let resourceSeq = 0;
export function resource(prefix: string): string {
  return `${prefix}-${(++resourceSeq).toString(36)}-${process.pid.toString(36)}`;
}

export function connect(p: Path, u: { user: string; pass: string }, res: string): Promise<BenchClient> {
  return BenchClient.connect(p.ep, u.user, u.pass, res);
}

/** id='…' or id="…" of a stanza's first tag. */
export function stanzaId(bytes: Buffer): string | undefined {
  const end = bytes.indexOf(0x3e);
  const head = bytes.toString("utf8", 0, end < 0 ? bytes.length : end);
  const m = /\sid=(?:'([^']*)'|"([^"]*)")/.exec(head);
  return m ? (m[1] ?? m[2]) : undefined;
}

export function attrOf(bytes: Buffer, name: string): string | undefined {
  const end = bytes.indexOf(0x3e);
  const head = bytes.toString("utf8", 0, end < 0 ? bytes.length : end);
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(head);
  return m ? (m[1] ?? m[2]) : undefined;
}

export const NO_STORE = "<no-store xmlns='urn:xmpp:hints'/>";

export function chat(to: string, id: string, body: string): string {
  return `<message to='${escapeAttr(to)}' type='chat' id='${id}'><body>${body}</body>${NO_STORE}</message>`;
}

/** `store` false: with a no-store hint, so the room neither archives it nor keeps it as history (load runs). */
export function groupchat(room: string, id: string, body: string, store = true): string {
  return `<message to='${escapeAttr(room)}' type='groupchat' id='${id}'><body>${body}</body>${store ? "" : NO_STORE}</message>`;
}

export function joinPresence(room: string, nick: string, history: string): string {
  return `<presence to='${escapeAttr(room)}/${escapeAttr(nick)}'><x xmlns='http://jabber.org/protocol/muc'>${history}</x></presence>`;
}

export function isSelfPresence(name: string, bytes: Buffer, room: string): boolean {
  if (name !== "presence") return false;
  const from = attrOf(bytes, "from");
  if (!from || !from.startsWith(`${room}/`)) return false;
  return bytes.includes("code='110'") || bytes.includes('code="110"');
}

/**
 * Joins every room in `rooms` (all joins pipelined), resolving when each answered with a self-presence.
 * Rejects on an error presence.
 */
export async function joinRooms(c: BenchClient, rooms: string[], nick: string, history = "<history maxstanzas='0'/>", timeoutMs = 60_000): Promise<void> {
  if (rooms.length === 0) return;
  const pending = new Set(rooms);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => (off(), reject(new Error(`${c.jid}: ${pending.size} of ${rooms.length} joins unanswered`))), timeoutMs);
    const off = c.onStanza((name, bytes) => {
      if (name !== "presence") return;
      const from = attrOf(bytes, "from") ?? "";
      const slash = from.indexOf("/");
      const room = slash < 0 ? from : from.slice(0, slash);
      if (!pending.has(room)) return;
      if (attrOf(bytes, "type") === "error") {
        clearTimeout(t);
        off();
        reject(new Error(`join ${room} refused: ${bytes.toString()}`));
        return;
      }
      if (isSelfPresence(name, bytes, room)) {
        pending.delete(room);
        if (pending.size === 0) {
          clearTimeout(t);
          off();
          resolve();
        }
      }
    });
    c.send(rooms.map((r) => joinPresence(r, nick, history)).join(""));
  });
}
