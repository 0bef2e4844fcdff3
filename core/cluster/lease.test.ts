import { describe, expect, it } from "vitest";
import { clusterResource, granted, isValid, leaseTiming, renewDue, renewed, retryAfter } from "./lease.js";

const t = leaseTiming(9000); // renew every 3000, margin 1800

describe("lease timing", () => {
  it("renews every third of the TTL, gives up a fifth early (at least 200 ms)", () => {
    expect(t).toEqual({ ttlMs: 9000, renewEveryMs: 3000, safetyMs: 1800 });
    expect(leaseTiming(1000).safetyMs).toBe(200);
  });
  it("refuses a TTL under a second or not a number", () => {
    expect(() => leaseTiming(999)).toThrow(RangeError);
    expect(() => leaseTiming(Number.NaN)).toThrow(RangeError);
  });
});

describe("a held lease", () => {
  it("is valid until the sent time + TTL − margin, not the time the answer came", () => {
    const l = granted(7, "n1:7", 1000, t);
    expect(l.validUntil).toBe(1000 + 9000 - 1800);
    expect(isValid(l, 8199)).toBe(true);
    expect(isValid(l, 8200)).toBe(false);
  });

  it("is due for renewal after renewEveryMs, not while a renewal is in flight, never once lost", () => {
    const l = granted(1, "n1:1", 0, t);
    expect(renewDue(l, 2999, t)).toBe(false);
    expect(renewDue(l, 3000, t)).toBe(true);
    l.renewingSince = 3000;
    expect(renewDue(l, 4000, t)).toBe(false);
    l.renewingSince = undefined;
    expect(renewDue(l, 7200, t)).toBe(false); // past validUntil: lost, nothing to renew
  });

  it("an extension counts from when the renewal was sent", () => {
    const l = granted(1, "n1:1", 0, t);
    l.renewingSince = 3000;
    expect(renewed(l, 3000, "extended", 3500, t)).toEqual({ kind: "held" });
    expect(l.validUntil).toBe(3000 + 7200);
    expect(l.lastSentAt).toBe(3000);
    expect(l.renewingSince).toBeUndefined();
  });

  it("an extension that arrives after the local deadline does not revive it (the node was paused)", () => {
    const l = granted(1, "n1:1", 0, t);
    // renewal sent at 3000, then the process stopped; the answer is read at 20000
    expect(renewed(l, 3000, "extended", 20_000, t)).toEqual({ kind: "lost", why: "expired" });
  });

  it("taken: lost at once, whatever the clock says", () => {
    const l = granted(1, "n1:1", 0, t);
    expect(renewed(l, 3000, "taken", 3001, t)).toEqual({ kind: "lost", why: "taken" });
  });

  it("unanswered (Redis down): kept until the local deadline, then lost", () => {
    const l = granted(1, "n1:1", 0, t);
    expect(renewed(l, 3000, "unanswered", 4000, t)).toEqual({ kind: "held" });
    expect(l.validUntil).toBe(7200);
    expect(renewDue(l, 4000, t)).toBe(true); // the next try is due at once
    expect(renewed(l, 4000, "unanswered", 7200, t)).toEqual({ kind: "lost", why: "expired" });
  });

  it("a late extension never shortens the lease", () => {
    const l = granted(1, "n1:1", 5000, t);
    renewed(l, 2000, "extended", 5001, t); // an older renewal answered after a newer grant
    expect(l.validUntil).toBe(5000 + 7200);
  });
});

describe("retryAfter", () => {
  it("waits until the other owner's lease expires, at most a renewal period", () => {
    expect(retryAfter(1000, t)).toBe(1050);
    expect(retryAfter(60_000, t)).toBe(3000);
    expect(retryAfter(-2, t)).toBe(100); // no TTL (key vanished meanwhile): soon
  });
});

describe("clusterResource", () => {
  it("is the prefix and 12 hex digits of the digest", () => {
    expect(clusterResource("minimix-", "0123456789abcdef")).toBe("minimix-0123456789ab");
  });
});
