/** The targets of issue 11 (sections 6 and 7), judged from one run's figures. */
import type { Results, Target } from "./bench.js";
import { isSupported } from "./switch.js";

/** Issue 11's and issue 12's targets; a proxy path that is not supported yet gets a verdict without a figure. */
export function mobileTargets(r: Results): Target[] {
  const t: Target[] = [];
  const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
  const sw = r.switchBack;
  if (sw) {
    const R = sw.options.rooms;
    const what = `${sw.options.roomMessages} room + ${sw.options.chats} 1:1 messages missed, ${R} rooms`;
    if (isSupported(sw.proxy) && sw.proxyVsSm && sw.proxySpeedup) {
      const p = sw.proxy;
      const all = p.delivered === p.expected && p.duplicates === 0;
      t.push({
        id: "switch-resume", target: `Back after a network switch (${what}): the proxy's resume ≤ Prosody's own XEP-0198 resume`,
        measured: `proxy ${f(p.totalMs.median, 0)} ms, Prosody ${f(sw.sm.totalMs.median, 0)} ms; ${p.delivered}/${p.expected} delivered, ${p.duplicates} duplicated`,
        ratio: sw.proxyVsSm.median, limit: "≤ 1", met: sw.proxyVsSm.median <= 1 && all,
      });
      t.push({
        id: "switch-full", target: `Back after a network switch (${what}): the proxy's resume ≥ 10× faster than a direct full reconnect`,
        measured: `direct full reconnect ${f(sw.full.totalMs.median, 0)} ms, proxy resume ${f(p.totalMs.median, 0)} ms`,
        ratio: sw.proxySpeedup.median, limit: "≥ 10", met: sw.proxySpeedup.median >= 10 && all,
      });
    } else {
      const why = isSupported(sw.proxy) ? "no figure" : sw.proxy.reason;
      const ctx = `Prosody's resume ${f(sw.sm.totalMs.median, 0)} ms, direct full reconnect ${f(sw.full.totalMs.median, 0)} ms`;
      t.push({ id: "switch-resume", target: `Back after a network switch (${what}): the proxy's resume ≤ Prosody's own XEP-0198 resume`, measured: `not supported: ${why} (${ctx})`, ratio: NaN, limit: "≤ 1", met: false, unsupported: why });
      t.push({ id: "switch-full", target: `Back after a network switch (${what}): the proxy's resume ≥ 10× faster than a direct full reconnect`, measured: `not supported: ${why} (${ctx})`, ratio: NaN, limit: "≥ 10", met: false, unsupported: why });
    }
  }
  const ip = r.inactive;
  if (ip) {
    const what = `${ip.options.rooms} busy rooms, ${ip.options.seconds} s inactive`;
    if (isSupported(ip.proxy) && ip.proxyVsDirect) {
      const p = ip.proxy;
      const all = p.bodiesDelivered === p.bodiesSent;
      t.push({
        id: "inactive-bytes", target: `An inactive phone in ${what}: bytes reaching it through the proxy ≤ 0.5× direct (Prosody's csi_simple), every message with a body delivered`,
        measured: `proxy ${f(p.bytes.median, 0)} B, direct ${f(ip.direct.bytes.median, 0)} B; bodies ${p.bodiesDelivered}/${p.bodiesSent}`,
        ratio: ip.proxyVsDirect.bytes.median, limit: "≤ 0.5", met: ip.proxyVsDirect.bytes.median <= 0.5 && all,
      });
      t.push({
        id: "inactive-bursts", target: `An inactive phone in ${what}: write bursts reaching it through the proxy ≤ 0.5× direct`,
        measured: `proxy ${f(p.bursts.median, 0)}, direct ${f(ip.direct.bursts.median, 0)} bursts (≥ ${ip.options.burstGapMs} ms apart)`,
        ratio: ip.proxyVsDirect.bursts.median, limit: "≤ 0.5", met: ip.proxyVsDirect.bursts.median <= 0.5 && all,
      });
    } else {
      const why = isSupported(ip.proxy) ? "no figure" : ip.proxy.reason;
      const ctx = `direct with csi_simple ${f(ip.direct.bytes.median, 0)} B in ${f(ip.direct.bursts.median, 0)} bursts, bodies ${ip.direct.bodiesDelivered}/${ip.direct.bodiesSent}`;
      t.push({ id: "inactive-bytes", target: `An inactive phone in ${what}: bytes reaching it through the proxy ≤ 0.5× direct (Prosody's csi_simple), every message with a body delivered`, measured: `not supported: ${why} (${ctx})`, ratio: NaN, limit: "≤ 0.5", met: false, unsupported: why });
      t.push({ id: "inactive-bursts", target: `An inactive phone in ${what}: write bursts reaching it through the proxy ≤ 0.5× direct`, measured: `not supported: ${why} (${ctx})`, ratio: NaN, limit: "≤ 0.5", met: false, unsupported: why });
    }
  }
  const lg = r.login;
  if (lg) {
    t.push({
      id: "login-scram-mobile", target: `A SCRAM-SHA-1 login (connect → bound) through the proxy no slower than a direct login to Prosody, over a ${f(lg.options.mobileRttMs, 0)} ms RTT link (p50)`,
      measured: `proxy ${f(lg.mobile.proxy.median, 0)} ms, direct ${f(lg.mobile.direct.median, 0)} ms`,
      ratio: lg.mobile.proxyVsDirect.median, limit: "≤ 1", met: lg.mobile.proxyVsDirect.median <= 1,
    });
    t.push({
      id: "login-scram", target: "A SCRAM-SHA-1 login (connect → bound) through the proxy no slower than a direct login to Prosody, on loopback (p50; CPU-bound: three processes on two cores)",
      measured: `proxy ${f(lg.proxy.p50Ms.median, 1)} ms, direct ${f(lg.direct.p50Ms.median, 1)} ms; logins per second of one core: proxy ${f(lg.perCoreSecond.proxy, 0)}, Prosody ${f(lg.perCoreSecond.direct, 0)}`,
      ratio: lg.proxyVsDirect.median, limit: "≤ 1", met: lg.proxyVsDirect.median <= 1,
    });
    t.push({
      id: "login-15", target: "Issue 15: a login (connect+TLS+SASL+bind) through the proxy ≤ 1.2× a direct one, on loopback (SCRAM-SHA-1, p50)",
      measured: `proxy ${f(lg.proxy.p50Ms.median, 1)} ms, direct ${f(lg.direct.p50Ms.median, 1)} ms; proxy CPU ${f(lg.proxy.cpuMsPerLogin.median, 2)} ms per login` +
        (lg.plain ? `; PLAIN: proxy ${f(lg.plain.proxy.median, 1)} ms, direct ${f(lg.plain.direct.median, 1)} ms` : "") +
        (lg.proxyPlain ? `; with a plain leg to Prosody (--upstream-tls none) ${f(lg.proxyPlain.vsDirect.median, 2)}×` : "") +
        (lg.resumed ? `; client resuming its TLS session ${f(lg.resumed.proxyVsDirect.median, 2)}×` +
          (lg.resumed.proxyPlainVsDirect ? `, and with the plain leg ${f(lg.resumed.proxyPlainVsDirect.median, 2)}×` : "") : "") +
        (lg.relay ? `; the floor, a TLS pipe relay with no XMPP work, is ${f(lg.relay.vsDirect.median, 2)}× direct` +
          (lg.relayPlain ? ` (${f(lg.relayPlain.vsDirect.median, 2)}× with a plain leg)` : "") + `, and the proxy ${f(lg.relay.proxyVsRelay.median, 2)}× that relay` +
          (lg.relayPlain?.proxyVsRelay ? ` (plain legs: ${f(lg.relayPlain.proxyVsRelay.median, 2)}×)` : "") : ""),
      ratio: lg.proxyVsDirect.median, limit: "≤ 1.2", met: lg.proxyVsDirect.median <= 1.2,
    });
  }
  const fj = r.firstJoin;
  if (fj) {
    t.push({
      id: "first-join", target: `Issue 15: a logged-in client's first join of a room (${fj.options.occupants} occupants) through the proxy ≤ 1.1× a direct one (join → self-presence, p50)`,
      measured: `proxy ${f(fj.settled.proxy.median, 1)} ms, direct ${f(fj.settled.direct.median, 1)} ms (account session at the first join, as before: ${f(fj.settled.proxyJoin.median, 1)} ms)`,
      ratio: fj.settled.proxyVsDirect.median, limit: "≤ 1.1", met: fj.settled.proxyVsDirect.median <= 1.1,
    });
  }
  return t;
}
