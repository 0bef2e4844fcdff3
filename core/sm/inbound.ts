/**
 * The client→server side of one XEP-0198 session (docs/architecture.md §8.4): how many stanzas the
 * proxy has handled from the client — the 'h' of our <a/>, <resumed/> and <failed h/>.
 *
 * "Handled" (XEP-0198 §4) means the proxy took responsibility for the stanza: forwarded it on the
 * upstream leg, queued it for the account session, or answered it itself. The edge calls handled()
 * once per top-level element read from the client, after acting on it.
 */
import { SM_WRAP, isCounted, nextCount } from "./counter.js";

export class InboundCounter {
  private count: number;

  /** `start` is 0 for a new session (XEP-0198 §4); tests may start near 2^32. */
  constructor(start = 0) {
    if (!Number.isInteger(start) || start < 0 || start >= SM_WRAP) throw new RangeError("start must be a count in [0, 2^32)");
    this.count = start;
  }

  /** Counts one top-level element if it is a stanza (./counter.ts isCounted); returns whether it counted. */
  handled(name: string, xmlns?: string): boolean {
    if (!isCounted(name, xmlns)) return false;
    this.count = nextCount(this.count);
    return true;
  }

  /** Stanzas handled so far, mod 2^32. */
  get h(): number {
    return this.count;
  }
}
