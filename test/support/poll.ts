/**
 * Bounded polling for tests, for states that have no event to wait on (a log line, a socket count,
 * an occupant list). Each check runs every 20 ms until it holds or the time is up.
 */
import { sleep } from "./muc.js";

const INTERVAL_MS = 20;

/** Resolves once `pred()` holds; rejects naming `what` after `timeoutMs`. */
export async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(INTERVAL_MS);
  }
}

/** Resolves with the first value `f()` returns that is not undefined; rejects after `timeoutMs`. */
export async function untilValue<T>(f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("condition not reached in time");
    await sleep(INTERVAL_MS);
  }
}
