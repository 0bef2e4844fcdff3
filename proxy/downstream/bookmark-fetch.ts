import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import { type FetchPlan, fetchPlan, fetchRequests, hasCompat, legacyResult, pepResult } from "../../core/bookmarks/stanzas.js";
import type { Bookmark } from "../../core/bookmarks/bookmark.js";

export interface FetchedBookmarks {
  pep: Bookmark[] | undefined;
  /** undefined: that request failed, or was not asked (the server's compat was known to make it moot). */
  legacy: Bookmark[] | undefined;
  compat: boolean;
  /** The server's `#compat` as its disco#info result said; undefined when not asked or not answered with a result. */
  compatAnswered: boolean | undefined;
}

/**
 * The bookmark fetch a client login makes on its own leg right after bind (docs/architecture.md §4.6):
 * up to three IQ gets with ids no client uses; their answers are taken off the leg (never reach the
 * client) and, once all are in, handed to the account. What the account already knows of the server's
 * `#compat` decides which are asked (`fetchPlan`): a server's disco#info is asked once in a while, not
 * at every login, and with compat the XEP-0048 list is not asked at all.
 */
export class BookmarkFetch {
  private readonly ids: { disco: string; pep: string; legacy: string };
  private readonly plan: FetchPlan;
  /** The requests `plan` sends, by name and id, in the order they go out. */
  private readonly asked: { name: "disco" | "items" | "legacy"; id: string }[];
  private readonly answers = new Map<string, Element>();

  constructor(
    private readonly accountBare: string,
    /** The account's token for this fetch (AccountHub.bookmarkFetchStarted). */
    readonly token: number,
    /** The server's `#compat` as the account knows it (AccountHub.bookmarkCompat); undefined: ask. */
    private readonly knownCompat?: boolean,
  ) {
    const tag = `mmx-bm-${randomBytes(6).toString("hex")}`;
    this.ids = { disco: `${tag}-d`, pep: `${tag}-p`, legacy: `${tag}-l` };
    this.plan = fetchPlan(knownCompat);
    this.asked = [
      ...(this.plan.disco ? [{ name: "disco" as const, id: this.ids.disco }] : []),
      { name: "items" as const, id: this.ids.pep },
      ...(this.plan.legacy ? [{ name: "legacy" as const, id: this.ids.legacy }] : []),
    ];
  }

  /** The requests to write on the own leg. */
  requests(): string[] {
    return fetchRequests(this.accountBare, this.ids, this.plan).map((el) => el.toString());
  }

  /** What this fetch asks, by name (for the log). */
  get askedNames(): ("disco" | "items" | "legacy")[] {
    return this.asked.map((a) => a.name);
  }

  /** Is `id` one of this fetch's requests still unanswered? */
  expects(id: string | undefined): boolean {
    return id !== undefined && this.asked.some((a) => a.id === id) && !this.answers.has(id);
  }

  /** Records an answer; returns the result once all asked are in. */
  answer(iq: Element): FetchedBookmarks | undefined {
    const id = iq.attrs.id;
    if (typeof id !== "string" || !this.expects(id)) return undefined;
    this.answers.set(id, iq);
    if (this.asked.some((a) => !this.answers.has(a.id))) return undefined;
    const d = this.answers.get(this.ids.disco);
    const l = this.answers.get(this.ids.legacy);
    const compatAnswered = d?.attrs.type === "result" ? hasCompat(d) : undefined;
    return {
      pep: pepResult(this.answers.get(this.ids.pep)!),
      legacy: l ? legacyResult(l) : undefined,
      compat: this.knownCompat ?? (d ? hasCompat(d) : false),
      compatAnswered,
    };
  }
}
