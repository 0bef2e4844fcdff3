import { describe, expect, it } from "vitest";
import { parseStanza } from "../xml/element.js";
import { BookmarkBook } from "./book.js";
import { type Bookmark, effective, fromStorage, toSet } from "./bookmark.js";
import { diffBookmarks } from "./diff.js";
import { type BookmarkChange, clientChange, eventChanges, fetchPlan, fetchRequests, hasCompat, legacyResult, pepResult } from "./stanzas.js";

const A = "alice@example.org";
const el = (s: string) => parseStanza(Buffer.from(s));
const bm = (room: string, autojoin: boolean, nick?: string, password?: string): Bookmark => ({ room, autojoin, nick, password });

const item = (id: string, autojoin: string, extra = "") =>
  `<item id='${id}'><conference xmlns='urn:xmpp:bookmarks:1' name='N' autojoin='${autojoin}'>${extra}</conference></item>`;

describe("XEP-0402 / XEP-0048 parsing", () => {
  it("reads items: id = room JID (lower-cased), autojoin true/1, nick, password; skips invalid items", () => {
    const r = el(`<iq type='result' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'>
      ${item("Room1@Conf.example.org", "true", "<nick>ali</nick><password>pw</password>")}${item("r2@conf", "1")}${item("r3@conf", "false")}
      ${item("r4@conf/res", "true")}${item("nodomain", "true")}<item id='r5@conf'><other xmlns='x'/></item><item><conference xmlns='urn:xmpp:bookmarks:1'/></item>
      </items></pubsub></iq>`);
    expect(pepResult(r)).toEqual([bm("room1@conf.example.org", true, "ali", "pw"), bm("r2@conf", true), bm("r3@conf", false)]);
  });

  it("an item-not-found node is an empty list; another error or a non-result is unknown", () => {
    expect(pepResult(el(`<iq type='error' id='p'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`))).toEqual([]);
    expect(pepResult(el(`<iq type='error' id='p'><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`))).toBeUndefined();
    expect(pepResult(el(`<iq type='get' id='p'/>`))).toBeUndefined();
    expect(pepResult(el(`<iq type='result' id='p'/>`))).toEqual([]);
  });

  it("reads XEP-0048 private storage; an error is unknown, an empty answer none", () => {
    const r = el(`<iq type='result' id='l'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>
      <conference jid='old@conf' autojoin='1' name='x'><nick>n</nick></conference><conference autojoin='true'/><url url='http://x'/>
      </storage></query></iq>`);
    expect(legacyResult(r)).toEqual([bm("old@conf", true, "n")]);
    expect(legacyResult(el(`<iq type='result' id='l'><query xmlns='jabber:iq:private'/></iq>`))).toEqual([]);
    expect(legacyResult(el(`<iq type='error' id='l'/>`))).toBeUndefined();
    expect(fromStorage(el(`<storage xmlns='other'><conference jid='a@b' autojoin='true'/></storage>`))).toEqual([]);
  });

  it("#compat from disco#info; none on error", () => {
    const f = (v: string) => el(`<iq type='result' id='d'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='${v}'/></query></iq>`);
    expect(hasCompat(f("urn:xmpp:bookmarks:1#compat"))).toBe(true);
    expect(hasCompat(f("urn:xmpp:bookmarks:1#compat-pep"))).toBe(false);
    expect(hasCompat(el(`<iq type='error' id='d'/>`))).toBe(false);
  });

  it("builds the three fetch requests", () => {
    const [d, p, l] = fetchRequests(A, { disco: "1", pep: "2", legacy: "3" }).map((e) => e.toString());
    expect(d).toBe(`<iq type="get" id="1" to="${A}"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`);
    expect(p).toBe(`<iq type="get" id="2" to="${A}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:bookmarks:1"/></pubsub></iq>`);
    expect(l).toBe(`<iq type="get" id="3"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"/></query></iq>`);
  });

  it("asks only what is not known: compat known → the XEP-0402 items; known absent → items and the XEP-0048 list", () => {
    const ids = { disco: "1", pep: "2", legacy: "3" };
    const idsOf = (plan: ReturnType<typeof fetchPlan>) => fetchRequests(A, ids, plan).map((e) => e.attrs.id);
    expect(fetchPlan(undefined)).toEqual({ disco: true, legacy: true });
    expect(idsOf(fetchPlan(undefined))).toEqual(["1", "2", "3"]);
    expect(idsOf(fetchPlan(true))).toEqual(["2"]);
    expect(idsOf(fetchPlan(false))).toEqual(["2", "3"]);
  });
});

describe("changes seen in passing", () => {
  const ps = (inner: string, to = "") => el(`<iq type='set' id='x'${to}><pubsub xmlns='http://jabber.org/protocol/pubsub'>${inner}</pubsub></iq>`);

  it("a client's publish, retract and XEP-0048 stores", () => {
    expect(clientChange(ps(`<publish node='urn:xmpp:bookmarks:1'>${item("r@c", "true")}</publish><publish-options/>`), A)).toEqual({ kind: "upsert", bookmarks: [bm("r@c", true)] });
    expect(clientChange(ps(`<retract node='urn:xmpp:bookmarks:1' notify='true'><item id='R@c'/></retract>`, ` to='${A}'`), A)).toEqual({ kind: "remove", rooms: ["r@c"] });
    expect(clientChange(el(`<iq type='set' id='x'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='o@c' autojoin='true'/></storage></query></iq>`), A))
      .toEqual({ kind: "legacy", bookmarks: [bm("o@c", true)] });
    expect(clientChange(ps(`<publish node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'/></item></publish>`), A)).toEqual({ kind: "legacy", bookmarks: [] });
  });

  it("ignores other IQs: gets, other nodes, another JID, empty publishes and retracts", () => {
    expect(clientChange(ps(`<publish node='urn:xmpp:bookmarks:1'>${item("r@c", "true")}</publish>`, " to='bob@example.org'"), A)).toBeUndefined();
    expect(clientChange(ps(`<publish node='urn:xmpp:bookmarks:1'>${item("r@c", "true")}</publish>`, ` to='${A}/res'`), A)).toBeUndefined();
    expect(clientChange(ps(`<publish node='urn:xmpp:avatar:data'><item/></publish>`), A)).toBeUndefined();
    expect(clientChange(ps(`<publish node='urn:xmpp:bookmarks:1'><item id='bad'/></publish>`), A)).toBeUndefined();
    expect(clientChange(ps(`<retract node='urn:xmpp:bookmarks:1'><item id='a@b/c'/></retract>`), A)).toBeUndefined();
    expect(clientChange(ps(`<retract node='other'><item id='a@b'/></retract>`), A)).toBeUndefined();
    expect(clientChange(ps(`<publish node='storage:bookmarks'><item id='current'/></publish>`), A)).toBeUndefined();
    expect(clientChange(el(`<iq type='get' id='x'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`), A)).toBeUndefined();
    expect(clientChange(el(`<iq type='set' id='x'><query xmlns='jabber:iq:roster'/></iq>`), A)).toBeUndefined();
    expect(clientChange(el(`<message/>`), A)).toBeUndefined();
  });

  it("PEP notifications of the account's own node: items, retracts, purge, XEP-0048 node; nobody else's", () => {
    const ev = (inner: string, from = ` from='${A}'`) => el(`<message${from}><event xmlns='http://jabber.org/protocol/pubsub#event'>${inner}</event></message>`);
    expect(eventChanges(ev(`<items node='urn:xmpp:bookmarks:1'>${item("r@c", "1")}<retract id='q@c'/></items>`), A)).toEqual([
      { kind: "upsert", bookmarks: [bm("r@c", true)] },
      { kind: "remove", rooms: ["q@c"] },
    ]);
    expect(eventChanges(ev(`<purge node='urn:xmpp:bookmarks:1'/>`, ""), A)).toEqual([{ kind: "purge" }]);
    expect(eventChanges(ev(`<items node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'/></item></items>`), A)).toEqual([{ kind: "legacy", bookmarks: [] }]);
    expect(eventChanges(ev(`<items node='urn:xmpp:bookmarks:1'>${item("r@c", "1")}</items>`, " from='bob@example.org'"), A)).toEqual([]);
    expect(eventChanges(ev(`<items node='urn:xmpp:bookmarks:1'>${item("r@c", "1")}</items>`, ` from='${A}/x'`), A)).toEqual([]);
    expect(eventChanges(ev(`<items node='urn:xmpp:avatar:metadata'/>`), A)).toEqual([]);
    expect(eventChanges(el(`<message from='${A}'><body>hi</body></message>`), A)).toEqual([]);
    expect(eventChanges(el(`<iq type='set'/>`), A)).toEqual([]);
  });
});

describe("diff and the account's book", () => {
  it("only autojoin transitions act", () => {
    const before = toSet([bm("a@c", true), bm("b@c", true), bm("c@c", false), bm("d@c", true)]);
    const after = toSet([bm("a@c", true, "newnick"), bm("b@c", false), bm("c@c", true), bm("e@c", true), bm("f@c", false)]);
    expect(diffBookmarks(before, after)).toEqual({ join: [bm("c@c", true), bm("e@c", true)], leave: ["b@c", "d@c"] });
  });

  it("effective list: XEP-0402 wins; with compat only XEP-0402 counts", () => {
    const pep = toSet([bm("a@c", false)]);
    const legacy = toSet([bm("a@c", true), bm("b@c", true)]);
    expect([...effective(pep, legacy, false).values()]).toEqual([bm("a@c", false), bm("b@c", true)]);
    expect([...effective(pep, legacy, true).values()]).toEqual([bm("a@c", false)]);
  });

  it("a load asks for every autojoin room; changes then act on transitions", () => {
    const book = new BookmarkBook();
    expect(book.loaded([bm("a@c", true), bm("b@c", false)], [bm("z@c", true)], false)).toEqual({ join: [bm("z@c", true), bm("a@c", true)], leave: [] });
    expect(book.apply({ kind: "upsert", bookmarks: [bm("b@c", true)] })).toEqual({ join: [bm("b@c", true)], leave: [] });
    expect(book.apply({ kind: "upsert", bookmarks: [bm("a@c", false)] })).toEqual({ join: [], leave: ["a@c"] });
    expect(book.apply({ kind: "remove", rooms: ["b@c"] })).toEqual({ join: [], leave: ["b@c"] });
    expect(book.apply({ kind: "legacy", bookmarks: [] })).toEqual({ join: [], leave: ["z@c"] });
    // a second load re-asks for the autojoin rooms, and leaves what went meanwhile
    book.apply({ kind: "upsert", bookmarks: [bm("q@c", true)] });
    expect(book.loaded([bm("r@c", true)], undefined, false)).toEqual({ join: [bm("r@c", true)], leave: ["q@c"] });
    expect(book.apply({ kind: "purge" })).toEqual({ join: [], leave: ["r@c"] });
    expect(book.bookmarks.size).toBe(0);
  });

  it("changes seen while a fetch was under way are applied on top of its answers", () => {
    const book = new BookmarkBook();
    const added: BookmarkChange = { kind: "upsert", bookmarks: [bm("new@c", true)] };
    expect(book.apply(added)).toEqual({ join: [bm("new@c", true)], leave: [] });
    // the answers predate the publish: the room is not left
    expect(book.loaded([bm("a@c", true)], [], false, [added, { kind: "remove", rooms: ["a@c"] }])).toEqual({ join: [bm("new@c", true)], leave: [] });
  });

  it("a failed request keeps what was known; with compat a XEP-0048 store is the whole list", () => {
    const book = new BookmarkBook();
    book.loaded([bm("a@c", true)], [], true);
    expect(book.loaded(undefined, undefined, true)).toEqual({ join: [bm("a@c", true)], leave: [] });
    expect(book.apply({ kind: "legacy", bookmarks: [bm("n@c", true)] })).toEqual({ join: [bm("n@c", true)], leave: ["a@c"] });
  });
});
