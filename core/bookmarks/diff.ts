import type { Bookmark, BookmarkSet } from "./bookmark.js";

/** What following a bookmark change means for the account (docs/architecture.md §4.6). */
export interface BookmarkDiff {
  /** Autojoin now and not before (new, or autojoin switched on): the account joins. */
  join: Bookmark[];
  /** Autojoin before and not any more (retracted, or autojoin switched off): the account leaves. */
  leave: string[];
}

/**
 * Only autojoin transitions act: a bookmark without autojoin is the user's business (a client may join
 * it by hand, as with a direct server), and a room joined by a client that is not bookmarked is left alone.
 * Changing the nick or password of a bookmark that stays autojoin does not rejoin (a client renames itself).
 */
export function diffBookmarks(before: BookmarkSet, after: BookmarkSet): BookmarkDiff {
  const join: Bookmark[] = [];
  const leave: string[] = [];
  for (const b of after.values()) if (b.autojoin && before.get(b.room)?.autojoin !== true) join.push(b);
  for (const b of before.values()) if (b.autojoin && after.get(b.room)?.autojoin !== true) leave.push(b.room);
  return { join, leave };
}
