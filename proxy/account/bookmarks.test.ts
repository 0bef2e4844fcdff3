import { describe, expect, it } from "vitest";
import { Element } from "ltx";
import { PassThrough } from "node:stream";
import { RoomMachine } from "../../core/muc/room-machine.js";
import type { Action } from "../../core/muc/actions.js";
import type { Bookmark } from "../../core/bookmarks/bookmark.js";
import { createLogger } from "../log.js";
import { RoomMarkError, type RoomMarkStore, type RoomMarks } from "../state/room-marks.js";
import { advanceJoinSince, BookmarkFollower, COMPAT_RECHECK_MS } from "./bookmarks.js";
import { BookmarkFetch } from "../downstream/bookmark-fetch.js";
import { parseStanza } from "../../core/xml/element.js";

const A = "alice@example.org";
const R1 = "one@conf.example.org";
const R2 = "two@conf.example.org";
const bm = (room: string, autojoin = true, nick?: string, password?: string): Bookmark => ({ room, autojoin, nick, password });

class MemoryMarks implements RoomMarkStore {
  saved: Map<string, number>[] = [];
  constructor(private readonly initial: Map<string, number> | Error = new Map(), private readonly failSave = false) {}
  load(): Promise<Map<string, number>> {
    return this.initial instanceof Error ? Promise.reject(this.initial) : Promise.resolve(new Map(this.initial));
  }
  save(_account: string, marks: RoomMarks): Promise<void> {
    if (this.failSave) return Promise.reject(new RoomMarkError("ROOM_MARKS_WRITE", "disk full"));
    this.saved.push(new Map(marks));
    return Promise.resolve();
  }
}

function setup(store: RoomMarkStore | undefined, maxRooms?: number) {
  const rooms = new RoomMachine(A);
  rooms.setAccountSessionJid(`${A}/minimix-1`);
  rooms.accountSessionUp(0);
  const actions: Action[] = [];
  const out = new PassThrough();
  let logText = "";
  out.on("data", (d: Buffer) => (logText += d.toString()));
  const f = new BookmarkFollower({ bare: A, rooms, execute: (a) => actions.push(...a), maxRooms }, store, createLogger("info", out));
  const joins = () => actions.flatMap((a) => (a.kind === "toRoomUpstream" && a.stanza.attrs.type === undefined ? [a.stanza] : []));
  const leaves = () => actions.flatMap((a) => (a.kind === "toRoomUpstream" && a.stanza.attrs.type === "unavailable" ? [String(a.stanza.attrs.to)] : []));
  return { f, rooms, actions, joins, leaves, log: () => logText };
}

/** The account's self-presence from `room` at `t`: joined, last stanza seen at `t`. */
function joined(rooms: RoomMachine, room: string, nick: string, t: number): void {
  const p = new Element("presence", { from: `${room}/${nick}`, to: `${A}/minimix-1` });
  p.c("x", { xmlns: "http://jabber.org/protocol/muc#user" }).c("status", { code: "110" });
  rooms.fromRoom(p, t);
}

describe("BookmarkFetch: what a login asks, given what the account knows of #compat", () => {
  const answer = (id: string, inner = "") => parseStanza(Buffer.from(`<iq type='result' id='${id}'>${inner}</iq>`));
  const compat = "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:bookmarks:1#compat'/></query>";
  const items = "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub>";
  const idsOf = (f: BookmarkFetch) => f.requests().map((r) => /id="([^"]+)"/.exec(r)![1]!);

  it("unknown: disco#info, the items and the XEP-0048 list; done after the three, compat as answered", () => {
    const f = new BookmarkFetch(A, 1);
    const [d, p, l] = idsOf(f);
    expect(f.requests()).toHaveLength(3);
    expect(f.answer(answer(d!, compat))).toBeUndefined();
    expect(f.answer(answer(p!, items))).toBeUndefined();
    expect(f.answer(answer(l!, "<query xmlns='jabber:iq:private'/>"))).toEqual({ pep: [], legacy: [], compat: true, compatAnswered: true });
  });

  it("a disco#info error: compat false, and nothing to remember", () => {
    const f = new BookmarkFetch(A, 1);
    const [d, p, l] = idsOf(f);
    f.answer(parseStanza(Buffer.from(`<iq type='error' id='${d}'/>`)));
    f.answer(answer(p!, items));
    expect(f.answer(answer(l!))).toMatchObject({ compat: false, compatAnswered: undefined });
  });

  it("known compat: the items only, done after them; the legacy list not asked", () => {
    const f = new BookmarkFetch(A, 1, true);
    const ids = idsOf(f);
    expect(ids).toHaveLength(1);
    expect(f.requests()[0]).toContain("urn:xmpp:bookmarks:1");
    expect(f.expects(ids[0]!.replace(/-p$/, "-d"))).toBe(false);
    expect(f.answer(answer(ids[0]!, items))).toEqual({ pep: [], legacy: undefined, compat: true, compatAnswered: undefined });
  });

  it("known without compat: the items and the XEP-0048 list, no disco#info", () => {
    const f = new BookmarkFetch(A, 1, false);
    const [p, l] = idsOf(f);
    expect(idsOf(f)).toHaveLength(2);
    expect(f.answer(answer(p!, items))).toBeUndefined();
    expect(f.answer(answer(l!, "<query xmlns='jabber:iq:private'/>"))).toEqual({ pep: [], legacy: [], compat: false, compatAnswered: undefined });
  });
});

describe("BookmarkFollower (docs/architecture.md §4.6)", () => {
  it("remembers the server's #compat from a fetch's disco#info for COMPAT_RECHECK_MS, then asks again", async () => {
    const s = setup(undefined);
    expect(s.f.knownCompat(0)).toBeUndefined();
    await s.f.fetched(s.f.fetchStarted(), [], [], false, undefined, 1000); // disco#info not answered: nothing learnt
    expect(s.f.knownCompat(1000)).toBeUndefined();
    await s.f.fetched(s.f.fetchStarted(), [], [], true, true, 1000);
    expect(s.f.knownCompat(1000 + COMPAT_RECHECK_MS - 1)).toBe(true);
    expect(s.f.knownCompat(1000 + COMPAT_RECHECK_MS)).toBeUndefined();
    await s.f.fetched(s.f.fetchStarted(), [], [], false, false, 2000);
    expect(s.f.knownCompat(2000)).toBe(false);
  });

  it("joins every autojoin bookmark after a fetch: bookmark nick, else the account's local part; password", async () => {
    const s = setup(new MemoryMarks());
    await s.f.fetched(s.f.fetchStarted(), [bm(R1, true, "ali", "pw"), bm(R2), bm("three@conf", false)], [], false);
    expect(s.joins().map((j) => j.attrs.to)).toEqual([`${R1}/ali`, `${R2}/alice`]);
    expect(s.joins()[0]!.getChild("x")!.getChildText("password")).toBe("pw");
    expect(s.rooms.rooms().map((r) => r.source)).toEqual(["bookmark", "bookmark"]);
  });

  it("a kept mark: the rejoin asks <history since> it minus 5 s", async () => {
    const s = setup(new MemoryMarks(new Map([[R1, 100_000]])));
    await s.f.fetched(s.f.fetchStarted(), [bm(R1), bm(R2)], undefined, false);
    const hist = s.joins().map((j) => j.getChild("x")!.getChild("history")!.attrs.since as string | undefined);
    expect(hist).toEqual([new Date(95_000).toISOString(), undefined]);
  });

  it("marks unreadable: logged, and the rooms are joined with the default history", async () => {
    const s = setup(new MemoryMarks(new RoomMarkError("ROOM_MARKS_CORRUPT", "torn")));
    await s.f.fetched(s.f.fetchStarted(), [bm(R1)], [], false);
    expect(s.joins()).toHaveLength(1);
    expect(s.log()).toContain("ROOM_MARKS_CORRUPT");
  });

  it("changes: a publish joins, autojoin off leaves", async () => {
    const s = setup(undefined);
    await s.f.fetched(s.f.fetchStarted(), [], [], true);
    await s.f.changed({ kind: "upsert", bookmarks: [bm(R1)] });
    expect(s.joins()).toHaveLength(1);
    await s.f.changed({ kind: "upsert", bookmarks: [bm(R1, false)] });
    expect(s.leaves()).toEqual([`${R1}/alice`]);
    expect(s.rooms.hasState()).toBe(false);
  });

  it("a publish seen while the login's fetch is under way survives the fetch's older answers", async () => {
    const s = setup(undefined);
    const token = s.f.fetchStarted();
    await s.f.changed({ kind: "upsert", bookmarks: [bm(R1)] });
    await s.f.fetched(token, [], [], false);
    expect(s.leaves()).toEqual([]);
    expect(s.rooms.knowsRoom(R1)).toBe(true);
  });

  it("the per-account room limit: an autojoin bookmark beyond it is not joined, and logged", async () => {
    const s = setup(undefined, 1);
    await s.f.fetched(s.f.fetchStarted(), [bm(R1), bm(R2)], [], false);
    expect(s.joins().map((j) => j.attrs.to)).toEqual([`${R1}/alice`]);
    expect(s.log()).toContain("ROOM_LIMIT");
  });

  it("saves marks of the autojoin rooms it is in, keeps older ones until the rejoin, writes only changes, nothing before a fetch", async () => {
    const store = new MemoryMarks(new Map([[R2, 50], ["gone@conf", 7]]));
    const s = setup(store);
    await s.f.save();
    expect(store.saved).toEqual([]);
    await s.f.fetched(s.f.fetchStarted(), [bm(R1), bm(R2)], [], false);
    joined(s.rooms, R1, "alice", 1234);
    await s.f.save();
    await s.f.save();
    expect(store.saved).toEqual([new Map([[R1, 1234], [R2, 50]])]);
  });

  it("a failed write is logged and tried again at the next save", async () => {
    const s = setup(new MemoryMarks(new Map(), true));
    await s.f.fetched(s.f.fetchStarted(), [bm(R1)], [], false);
    joined(s.rooms, R1, "alice", 99);
    await s.f.save();
    expect(s.log()).toContain("ROOM_MARKS_WRITE");
    await s.f.save();
    expect(s.log().match(/ROOM_MARKS_WRITE/g)).toHaveLength(2);
  });

  it("an exception in a step is logged and does not stop the next ones", async () => {
    const s = setup(undefined);
    const f = new BookmarkFollower({ bare: A, rooms: s.rooms, execute: () => { throw new Error("boom"); }, maxRooms: undefined }, undefined, createLogger("silent"));
    await f.fetched(f.fetchStarted(), [bm(R1)], [], false);
    await expect(f.changed({ kind: "purge" })).resolves.toBeUndefined();
  });

  it("refreshMarks (a cluster member taking the lease): newer marks another node wrote move the queued autojoin joins' since forward, never back", async () => {
    const kept = new Map([[R1, 100_000], [R2, 500_000]]);
    const s = setup(new MemoryMarks(kept));
    // the account session is not up here: the bookmark joins wait in the queue
    s.rooms.accountSessionDown(0);
    await s.f.fetched(s.f.fetchStarted(), [bm(R1), bm(R2), bm("three@conf.example.org")], [], false);
    const queued = s.joins();
    const other = new Element("presence", { to: `${R1}/alice`, type: "unavailable" });
    const since = () => queued.map((j) => j.getChild("x")!.getChild("history")!.attrs.since as string | undefined);
    expect(since()).toEqual([new Date(95_000).toISOString(), new Date(495_000).toISOString(), undefined]);
    // meanwhile another node served the account: R1's mark moved on, R2's is older there (never back), a third room got one
    kept.set(R1, 300_000);
    kept.set(R2, 200_000);
    kept.set("three@conf.example.org", 700_000);
    await s.f.refreshMarks([...queued, other]);
    expect(since()).toEqual([new Date(295_000).toISOString(), new Date(495_000).toISOString(), new Date(695_000).toISOString()]);
    expect(other.toString()).toBe(`<presence to="${R1}/alice" type="unavailable"/>`);
  });

  it("refreshMarks with an unreadable store: logged, the queued joins unchanged", async () => {
    let fail = false;
    const store: RoomMarkStore = {
      load: () => (fail ? Promise.reject(new RoomMarkError("ROOM_MARKS_UNREADABLE", "no answer")) : Promise.resolve(new Map([[R1, 100_000]]))),
      save: () => Promise.resolve(),
    };
    const s = setup(store);
    s.rooms.accountSessionDown(0);
    await s.f.fetched(s.f.fetchStarted(), [bm(R1)], [], false);
    fail = true;
    await s.f.refreshMarks(s.joins());
    expect(s.joins()[0]!.getChild("x")!.getChild("history")!.attrs.since).toBe(new Date(95_000).toISOString());
    expect(s.log()).toContain("room marks not re-read at the lease");
    expect(s.log()).toContain("ROOM_MARKS_UNREADABLE");
  });

  it("advanceJoinSince: only a join presence with <history>, and only later", () => {
    const join = (since?: string) => new Element("presence", { to: `${R1}/a` }).c("x", { xmlns: "http://jabber.org/protocol/muc" }).c("history", { maxstanzas: "20", ...(since ? { since } : {}) }).root();
    const j = join();
    expect(advanceJoinSince(j, 5000)).toBe(true);
    expect(j.getChild("x")!.getChild("history")!.attrs).toEqual({ maxstanzas: "20", since: new Date(5000).toISOString() });
    expect(advanceJoinSince(j, 4000)).toBe(false);
    expect(advanceJoinSince(join(new Date(9000).toISOString()), 9000)).toBe(false);
    expect(advanceJoinSince(new Element("presence", { to: `${R1}/a` }), 5000)).toBe(false);
    expect(advanceJoinSince(new Element("message", { to: R1 }), 5000)).toBe(false);
  });
});
