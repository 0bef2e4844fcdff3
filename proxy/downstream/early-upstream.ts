/**
 * The session's upstream connection, opened when the client's first stream header names a domain the
 * proxy serves rather than when its credentials arrive (docs/architecture.md §3.5): TCP, TLS and the
 * server's stream features then run while the client does its STARTTLS, picks a mechanism and computes
 * its proof, and a login through the proxy costs about what a direct one does (bench m8). Used once, by whichever login runs (PLAIN,
 * SCRAM verified or relayed); closed if the stream ends first. Unauthenticated connections are bounded
 * per address and in total (--max-unauthenticated*), so this opens at most one upstream connection per
 * connection those limits let in.
 */
import type { PreAuthUpstream, UpstreamTarget } from "../upstream/connect.js";
import { openPreAuth } from "../upstream/connect.js";

/**
 * An early connection older than this is not used: servers close idle unauthenticated streams (and the
 * client may have taken its time), so a fresh one is opened instead.
 */
export const EARLY_UPSTREAM_MAX_AGE_MS = 20_000;

export class EarlyUpstream {
  #pending: Promise<PreAuthUpstream> | undefined;
  #openedAt = 0;
  #closed = false;

  constructor(private readonly open: (t: UpstreamTarget) => Promise<PreAuthUpstream> = openPreAuth) {}

  /** Starts connecting to `t` (once; later calls do nothing). */
  start(t: UpstreamTarget, now = Date.now()): void {
    if (this.#pending !== undefined || this.#closed) return;
    this.#openedAt = now;
    this.#pending = this.open(t);
    this.#pending.catch(() => undefined); // a failure is seen by take(), which then opens anew
  }

  /**
   * The early connection if it is there, alive and young enough; otherwise a new one. Hands it over:
   * the caller owns (and closes) what it gets.
   */
  async take(t: UpstreamTarget, now = Date.now()): Promise<PreAuthUpstream> {
    const p = this.#pending;
    this.#pending = undefined;
    if (p !== undefined && now - this.#openedAt <= EARLY_UPSTREAM_MAX_AGE_MS) {
      try {
        const pre = await p;
        if (!pre.conn.isClosed) return pre;
        pre.conn.end();
      } catch {
        // it failed early (the server was briefly away): one more try now
      }
    } else {
      p?.then((pre) => pre.conn.end(), () => undefined);
    }
    return this.open(t);
  }

  /** The client stream ended: an untaken connection is closed, and none is opened any more. */
  close(): void {
    this.#closed = true;
    const p = this.#pending;
    this.#pending = undefined;
    p?.then((pre) => pre.conn.end(), () => undefined);
  }
}
