import { type Bookmark, type BookmarkSet, effective, toSet } from "./bookmark.js";
import { type BookmarkDiff, diffBookmarks } from "./diff.js";
import type { BookmarkChange } from "./stanzas.js";

/**
 * One account's bookmarks as the proxy knows them: the XEP-0402 list, the XEP-0048 list and whether
 * the server unifies them (docs/architecture.md §4.6). Pure; each update says what the account must do.
 */
export class BookmarkBook {
  private pep = new Map<string, Bookmark>();
  private legacy = new Map<string, Bookmark>();
  private compat = false;
  private current: Map<string, Bookmark> = new Map();

  /** The bookmarks the account follows now. */
  get bookmarks(): BookmarkSet {
    return this.current;
  }

  /**
   * A fetch's answers (undefined: that request failed; the list known before is kept). Returns
   * every autojoin room to be in (joined already or not: a fetch at login puts the account back into
   * a room it was removed from, as a client joining its autojoin bookmarks at login does) and the
   * rooms whose autojoin went away since the last look.
   */
  loaded(pep: Bookmark[] | undefined, legacy: Bookmark[] | undefined, compat: boolean, since: readonly BookmarkChange[] = []): BookmarkDiff {
    this.compat = compat;
    if (pep !== undefined) this.pep = toSet(pep);
    if (legacy !== undefined) this.legacy = toSet(legacy);
    // Changes seen after the fetch went out may not be in its answers (another leg's publish, or
    // the server answered first): applied again on top. Each is idempotent.
    for (const c of since) this.change(c);
    const d = this.recompute();
    return { join: [...this.current.values()].filter((b) => b.autojoin), leave: d.leave };
  }

  /** A change seen in passing (a client's publish, retract or XEP-0048 store; a PEP notification). */
  apply(change: BookmarkChange): BookmarkDiff {
    this.change(change);
    return this.recompute();
  }

  private change(change: BookmarkChange): void {
    switch (change.kind) {
      case "upsert":
        for (const b of change.bookmarks) this.pep.set(b.room, b);
        break;
      case "remove":
        for (const r of change.rooms) this.pep.delete(r);
        break;
      case "purge":
        this.pep.clear();
        break;
      case "legacy":
        // With compat the server turns the XEP-0048 list into XEP-0402 items (and retracts the ones
        // missing from it): the new list is the whole truth. Without it, only the legacy part changes.
        this.legacy = toSet(change.bookmarks);
        if (this.compat) this.pep = toSet(change.bookmarks);
        break;
    }
  }

  private recompute(): BookmarkDiff {
    const next = effective(this.pep, this.legacy, this.compat);
    const d = diffBookmarks(this.current, next);
    this.current = next;
    return d;
  }
}
