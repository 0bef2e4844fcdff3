import { describe, expect, it } from "vitest";
import type { PreAuthUpstream, UpstreamTarget } from "../upstream/connect.js";
import { EARLY_UPSTREAM_MAX_AGE_MS, EarlyUpstream } from "./early-upstream.js";

/** A stand-in for an upstream connection: only what EarlyUpstream looks at (isClosed, end). */
function fakeConn(): PreAuthUpstream & { ended: boolean } {
  const c = { isClosed: false, ended: false, end() { c.ended = true; c.isClosed = true; } };
  const pre = { conn: c, queue: undefined, features: undefined, started: 0 } as unknown as PreAuthUpstream & { ended: boolean };
  Object.defineProperty(pre, "ended", { get: () => c.ended });
  return pre;
}

const target = {} as UpstreamTarget;

function opener(results: Array<PreAuthUpstream | Error>): { open: (t: UpstreamTarget) => Promise<PreAuthUpstream>; calls: () => number } {
  let n = 0;
  return {
    open: async () => {
      const r = results[n++];
      if (r === undefined) throw new Error("no more connections");
      if (r instanceof Error) throw r;
      return r;
    },
    calls: () => n,
  };
}

describe("EarlyUpstream", () => {
  it("take() hands over the connection started early, once; a second take opens another", async () => {
    const a = fakeConn();
    const b = fakeConn();
    const o = opener([a, b]);
    const e = new EarlyUpstream(o.open);
    e.start(target, 1000);
    e.start(target, 1000); // once
    expect(o.calls()).toBe(1);
    expect(await e.take(target, 2000)).toBe(a);
    expect(await e.take(target, 2000)).toBe(b);
    expect(a.ended).toBe(false);
  });

  it("too old, closed by the server, or failed: a fresh connection instead (the old one closed)", async () => {
    const old = fakeConn();
    const fresh = fakeConn();
    const o = opener([old, fresh]);
    const e = new EarlyUpstream(o.open);
    e.start(target, 0);
    expect(await e.take(target, EARLY_UPSTREAM_MAX_AGE_MS + 1)).toBe(fresh);
    await Promise.resolve();
    expect(old.ended).toBe(true);

    const dead = fakeConn();
    const next = fakeConn();
    const o2 = opener([dead, next]);
    const e2 = new EarlyUpstream(o2.open);
    e2.start(target, 0);
    dead.conn.end();
    expect(await e2.take(target, 10)).toBe(next);

    const ok = fakeConn();
    const o3 = opener([new Error("ECONNREFUSED"), ok]);
    const e3 = new EarlyUpstream(o3.open);
    e3.start(target, 0);
    expect(await e3.take(target, 10)).toBe(ok);
  });

  it("take() without start() opens one; close() ends an untaken one and stops further starts", async () => {
    const a = fakeConn();
    const o = opener([a]);
    expect(await new EarlyUpstream(o.open).take(target)).toBe(a);

    const b = fakeConn();
    const o2 = opener([b]);
    const e = new EarlyUpstream(o2.open);
    e.start(target);
    e.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(b.ended).toBe(true);
    e.start(target);
    expect(o2.calls()).toBe(1);
  });
});
