import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { fetchRequests, hasCompat, legacyResult, pepResult } from "../../core/bookmarks/stanzas.js";
import type { Bookmark } from "../../core/bookmarks/bookmark.js";

export interface FetchedBookmarks {
  pep: Bookmark[] | undefined;
  legacy: Bookmark[] | undefined;
  compat: boolean;
}

/**
 * The bookmark fetch a client login makes on its own leg right after bind (docs/architecture.md §4.6):
 * three IQ gets with ids no client uses; their answers are taken off the leg (never reach the client)
 * and, once all three are in, handed to the account.
 */
export class BookmarkFetch {
  private readonly ids: { disco: string; pep: string; legacy: string };
  private readonly answers = new Map<string, Element>();

  constructor(
    private readonly accountBare: string,
    /** The account's token for this fetch (AccountHub.bookmarkFetchStarted). */
    readonly token: number,
  ) {
    const tag = `mmx-bm-${randomBytes(6).toString("hex")}`;
    this.ids = { disco: `${tag}-d`, pep: `${tag}-p`, legacy: `${tag}-l` };
  }

  /** The requests to write on the own leg. */
  requests(): string[] {
    return fetchRequests(this.accountBare, this.ids).map((el) => el.toString());
  }

  /** Is `id` one of this fetch's requests still unanswered? */
  expects(id: string | undefined): boolean {
    return id !== undefined && Object.values(this.ids).includes(id) && !this.answers.has(id);
  }

  /** Records an answer; returns the result once all three are in. */
  answer(iq: Element): FetchedBookmarks | undefined {
    const id = iq.attrs.id;
    if (typeof id !== "string" || !this.expects(id)) return undefined;
    this.answers.set(id, iq);
    const d = this.answers.get(this.ids.disco);
    const p = this.answers.get(this.ids.pep);
    const l = this.answers.get(this.ids.legacy);
    if (!d || !p || !l) return undefined;
    return { pep: pepResult(p), legacy: legacyResult(l), compat: hasCompat(d) };
  }
}
