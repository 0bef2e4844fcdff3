import { Element } from "ltx";
import { type Bookmark, fromItem, fromItems, fromStorage } from "./bookmark.js";
import { NS_BOOKMARKS, NS_BOOKMARKS_COMPAT, NS_BOOKMARKS_LEGACY, NS_DISCO_INFO, NS_PRIVATE, NS_PUBSUB, NS_PUBSUB_EVENT } from "../xml/ns.js";
import { splitBare } from "../jid.js";

/**
 * A change to the account's bookmarks seen in passing: a client's publish, retract or XEP-0048 store
 * (client → server), or a PEP notification (server → client, XEP-0060 §7.1.2).
 */
export type BookmarkChange =
  | { kind: "upsert"; bookmarks: Bookmark[] } // XEP-0402 items published (one per publish, or several in an event)
  | { kind: "remove"; rooms: string[] } // XEP-0402 items retracted
  | { kind: "purge" } // the XEP-0402 node purged (XEP-0060 §8.5): every item gone
  | { kind: "legacy"; bookmarks: Bookmark[] }; // the whole XEP-0048 list, replaced (private XML or PEP storage:bookmarks)

/** Which requests a fetch sends; `pep` always. */
export interface FetchPlan {
  disco: boolean;
  legacy: boolean;
}

/**
 * What a fetch must ask, given what is known of the server's `#compat` (XEP-0402 §3.3): unknown → all
 * three; known with compat → the XEP-0402 items only (the server keeps the XEP-0048 list in them, and
 * the effective list ignores the legacy one then, bookmark.ts `effective`); known without → the items
 * and the XEP-0048 list, no disco#info.
 */
export function fetchPlan(knownCompat: boolean | undefined): FetchPlan {
  return { disco: knownCompat === undefined, legacy: knownCompat !== true };
}

/**
 * The requests of a fetch (all `get` to the account's bare JID, XEP-0402 §3.1 / XEP-0048 §3), those of
 * `plan` in this order: disco#info (does the server unify the two lists? `#compat`, XEP-0402 §3.3),
 * the XEP-0402 items (asked explicitly: Prosody and ejabberd default to send_last_published_item =
 * never) and the XEP-0048 private-XML list.
 */
export function fetchRequests(accountBare: string, ids: { disco: string; pep: string; legacy: string }, plan: FetchPlan = { disco: true, legacy: true }): Element[] {
  const out: Element[] = [];
  if (plan.disco) {
    const disco = new Element("iq", { type: "get", id: ids.disco, to: accountBare });
    disco.c("query", { xmlns: NS_DISCO_INFO });
    out.push(disco);
  }
  const pep = new Element("iq", { type: "get", id: ids.pep, to: accountBare });
  pep.c("pubsub", { xmlns: NS_PUBSUB }).c("items", { node: NS_BOOKMARKS });
  out.push(pep);
  if (plan.legacy) {
    const legacy = new Element("iq", { type: "get", id: ids.legacy });
    legacy.c("query", { xmlns: NS_PRIVATE }).c("storage", { xmlns: NS_BOOKMARKS_LEGACY });
    out.push(legacy);
  }
  return out;
}

/** disco#info result: true when the account advertises XEP-0402 §3.3 compat. An error counts as no. */
export function hasCompat(result: Element): boolean {
  if (result.attrs.type !== "result") return false;
  const q = result.getChild("query", NS_DISCO_INFO);
  return q?.getChildren("feature").some((f) => f.attrs.var === NS_BOOKMARKS_COMPAT) ?? false;
}

/**
 * XEP-0402 items result. A missing node (item-not-found: nobody published yet) is an empty list;
 * any other error is `undefined` (unknown: the caller keeps what it had).
 */
export function pepResult(result: Element): Bookmark[] | undefined {
  if (result.attrs.type === "error") return isItemNotFound(result) ? [] : undefined;
  if (result.attrs.type !== "result") return undefined;
  const items = result.getChild("pubsub", NS_PUBSUB)?.getChild("items");
  return items ? fromItems(items) : [];
}

/** XEP-0048 private-XML result; an error is `undefined` (unknown), a missing storage an empty list. */
export function legacyResult(result: Element): Bookmark[] | undefined {
  if (result.attrs.type !== "result") return undefined;
  const storage = result.getChild("query", NS_PRIVATE)?.getChild("storage", NS_BOOKMARKS_LEGACY);
  return storage ? fromStorage(storage) : [];
}

function isItemNotFound(iq: Element): boolean {
  return iq.getChild("error")?.getChildren("item-not-found").length === 1;
}

/** Is `to` absent or the account's own bare JID (where bookmark requests go)? */
function toSelf(el: Element, accountBare: string): boolean {
  const to = el.attrs.to;
  return to === undefined || (typeof to === "string" && !to.includes("/") && splitBare(to) === accountBare);
}

/**
 * A client's IQ set that changes bookmarks (XEP-0402 §3.2 publish / §3.3 retract, XEP-0048 via
 * XEP-0049 private XML or PEP node storage:bookmarks). Anything else: undefined.
 */
export function clientChange(iq: Element, accountBare: string): BookmarkChange | undefined {
  if (iq.name !== "iq" || iq.attrs.type !== "set" || !toSelf(iq, accountBare)) return undefined;
  const priv = iq.getChild("query", NS_PRIVATE)?.getChild("storage", NS_BOOKMARKS_LEGACY);
  if (priv) return { kind: "legacy", bookmarks: fromStorage(priv) };
  const ps = iq.getChild("pubsub", NS_PUBSUB);
  if (!ps) return undefined;
  const publish = ps.getChild("publish");
  if (publish?.attrs.node === NS_BOOKMARKS) {
    const bookmarks = publish.getChildren("item").flatMap((i) => fromItem(i) ?? []);
    return bookmarks.length > 0 ? { kind: "upsert", bookmarks } : undefined;
  }
  if (publish?.attrs.node === NS_BOOKMARKS_LEGACY) {
    const storage = publish.getChild("item")?.getChild("storage", NS_BOOKMARKS_LEGACY);
    return storage ? { kind: "legacy", bookmarks: fromStorage(storage) } : undefined;
  }
  const retract = ps.getChild("retract");
  if (retract?.attrs.node === NS_BOOKMARKS) {
    const rooms = retract.getChildren("item").flatMap((i) => splitBare(typeof i.attrs.id === "string" && !i.attrs.id.includes("/") ? i.attrs.id : undefined) ?? []);
    return rooms.length > 0 ? { kind: "remove", rooms } : undefined;
  }
  return undefined;
}

/**
 * A PEP notification about the account's own bookmarks (XEP-0060 §7.1.2 items / §7.2.2 retract,
 * §8.5 purge), from the account's bare JID (or with no `from`: the account itself). Others: [].
 */
export function eventChanges(message: Element, accountBare: string): BookmarkChange[] {
  if (message.name !== "message") return [];
  const from = message.attrs.from;
  if (from !== undefined && (typeof from !== "string" || from.includes("/") || splitBare(from) !== accountBare)) return [];
  const ev = message.getChild("event", NS_PUBSUB_EVENT);
  if (!ev) return [];
  const out: BookmarkChange[] = [];
  const items = ev.getChild("items");
  if (items?.attrs.node === NS_BOOKMARKS) {
    const bookmarks = fromItems(items);
    if (bookmarks.length > 0) out.push({ kind: "upsert", bookmarks });
    const rooms = items.getChildren("retract").flatMap((r) => splitBare(typeof r.attrs.id === "string" && !r.attrs.id.includes("/") ? r.attrs.id : undefined) ?? []);
    if (rooms.length > 0) out.push({ kind: "remove", rooms });
  } else if (items?.attrs.node === NS_BOOKMARKS_LEGACY) {
    const storage = items.getChild("item")?.getChild("storage", NS_BOOKMARKS_LEGACY);
    if (storage) out.push({ kind: "legacy", bookmarks: fromStorage(storage) });
  }
  if (ev.getChild("purge")?.attrs.node === NS_BOOKMARKS) out.push({ kind: "purge" });
  return out;
}
