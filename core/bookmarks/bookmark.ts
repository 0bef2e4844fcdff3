import type { Element } from "ltx";
import { splitBare } from "../jid.js";
import { NS_BOOKMARKS, NS_BOOKMARKS_LEGACY } from "../xml/ns.js";

/**
 * One room bookmark, from XEP-0402 (item id = room JID, `<conference autojoin name><nick/><password/>`)
 * or XEP-0048 (`<conference jid autojoin name><nick/><password/>` in `<storage xmlns='storage:bookmarks'>`).
 * `room` is the lower-cased bare JID, as the room machine keys rooms (docs/architecture.md §5.2).
 */
export interface Bookmark {
  room: string;
  autojoin: boolean;
  nick: string | undefined;
  password: string | undefined;
}

/** The bookmarks of one account, by room. */
export type BookmarkSet = ReadonlyMap<string, Bookmark>;

/** xs:boolean (XEP-0402 §3, XEP-0048 §3.2): "true" or "1". */
function xsTrue(v: unknown): boolean {
  return v === "true" || v === "1";
}

function text(el: Element, name: string): string | undefined {
  const t = el.getChildText(name);
  return t === null || t === "" ? undefined : t;
}

/** A room JID is room@service, no resource: anything else is not a bookmark the proxy can join. */
function roomJid(s: unknown): string | undefined {
  if (typeof s !== "string" || !s.includes("@") || s.includes("/")) return undefined;
  return splitBare(s);
}

/** XEP-0402 §3: `<item id='room@service'><conference xmlns='urn:xmpp:bookmarks:1' …/></item>`. */
export function fromItem(item: Element): Bookmark | undefined {
  const room = roomJid(item.attrs.id);
  const c = item.getChild("conference", NS_BOOKMARKS);
  if (room === undefined || c === undefined) return undefined;
  return { room, autojoin: xsTrue(c.attrs.autojoin), nick: text(c, "nick"), password: text(c, "password") };
}

/** XEP-0048 §3: `<conference jid='room@service' autojoin …><nick/><password/></conference>`. */
export function fromLegacyConference(c: Element): Bookmark | undefined {
  const room = roomJid(c.attrs.jid);
  if (room === undefined) return undefined;
  return { room, autojoin: xsTrue(c.attrs.autojoin), nick: text(c, "nick"), password: text(c, "password") };
}

/** Every XEP-0402 item under `items` (a pubsub `<items/>` of a result or an event); invalid ones are skipped. */
export function fromItems(items: Element): Bookmark[] {
  return items.getChildren("item").flatMap((i) => fromItem(i) ?? []);
}

/** Every conference of a XEP-0048 `<storage xmlns='storage:bookmarks'/>`; invalid ones are skipped. */
export function fromStorage(storage: Element): Bookmark[] {
  if (storage.attrs.xmlns !== NS_BOOKMARKS_LEGACY) return [];
  return storage.getChildren("conference").flatMap((c) => fromLegacyConference(c) ?? []);
}

export function toSet(list: readonly Bookmark[]): Map<string, Bookmark> {
  const m = new Map<string, Bookmark>();
  for (const b of list) m.set(b.room, b);
  return m;
}

/**
 * The bookmarks the account follows. With the server's `urn:xmpp:bookmarks:1#compat` (XEP-0402 §3.3)
 * the XEP-0048 list is a view of the same data, so only the XEP-0402 one counts. Without it both are
 * separate lists a user may have (an old client writes only XEP-0048): their union, XEP-0402 winning.
 */
export function effective(pep: BookmarkSet, legacy: BookmarkSet, compat: boolean): Map<string, Bookmark> {
  const m = new Map<string, Bookmark>(compat ? [] : legacy);
  for (const [k, b] of pep) m.set(k, b);
  return m;
}
