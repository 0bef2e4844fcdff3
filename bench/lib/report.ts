/** bench/RESULTS.md and its charts (latency.svg, scaling.svg), generated from one run's Results. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Results } from "./bench.js";
import type { PhoneSide } from "./inactive.js";
import { type SwitchSide, isSupported } from "./switch.js";
import type { LoginSide } from "./login.js";
import { ROOT } from "./procs.js";
import { type Summary, fmt, fmtS, quantile, sortNum, table } from "./stats.js";
import { hotPathSection } from "./hotpath.js";
import { clusterSection } from "./cluster.js";
import { COLORS, type Point, panel, svgDoc } from "./svg.js";

const PATHS = ["direct", "relay", "proxy"] as const;

function cdf(samples: number[], points = 240): Point[] {
  const s = sortNum(samples);
  if (s.length === 0) return [];
  const out: Point[] = [];
  for (let i = 0; i <= points; i++) {
    const q = i / points;
    out.push({ x: quantile(s, q), y: q });
  }
  return out;
}

const pt = (x: number, s: Summary): Point => ({ x, y: s.median, lo: s.min, hi: s.max });

export function latencySvg(r: Results): string | undefined {
  const p = r.passthrough;
  if (!p) return undefined;
  const all = PATHS.flatMap((n) => p.latency[n].samples);
  const xmax = Math.max(...PATHS.map((n) => quantile(sortNum(p.latency[n].samples), 0.99))) * 1.05;
  const body = [
    panel(0, 0, 520, 340, {
      title: `Chat round trip, CDF (${all.length} RTTs, ${r.meta.rounds} rounds)`, xlabel: "round trip (ms), up to the largest p99", ylabel: "fraction of round trips",
      series: PATHS.map((n) => ({ name: `${n} (p50 ${fmt(p.latency[n].p50.median, 3)} ms)`, color: COLORS[n], points: cdf(p.latency[n].samples), markers: false })),
      xmin: 0, xmax, ymin: 0, ymax: 1, legend: "br",
    }),
    panel(520, 0, 420, 340, {
      title: "Throughput vs. messages in flight", xlabel: "window (messages in flight)", ylabel: "messages/s delivered (median, min–max)", xlog: true,
      series: PATHS.map((n) => ({ name: n, color: COLORS[n], points: p.throughput.windows.map((w, i) => pt(w, p.throughput.rate[n][i]!)) })),
      xticks: p.throughput.windows, ymin: 0, legend: "br",
    }),
  ];
  return svgDoc(940, 340, body, "minimix-proxy: latency distributions and throughput");
}

export function scalingSvg(r: Results): string | undefined {
  const body: string[] = [];
  let x = 0;
  let y = 0;
  const W = 470;
  const H = 300;
  const place = (): [number, number] => {
    const at: [number, number] = [x, y];
    x += W;
    if (x >= 2 * W) {
      x = 0;
      y += H;
    }
    return at;
  };
  if (r.scale) {
    const s = r.scale;
    const [a, b] = place();
    body.push(panel(a, b, W, H, {
      title: "Proxy RSS per idle session", xlabel: "idle authenticated sessions", ylabel: "KiB per session", xlog: true,
      series: [
        { name: "proxy (both TLS legs)", color: COLORS.proxy, points: s.levels.map((l) => ({ x: l.sessions, y: l.rssPerSessionKiB })) },
        ...(s.relay ? [{ name: "pipe relay (floor)", color: COLORS.relay, points: [{ x: s.relay.sessions, y: s.relay.rssPerSessionKiB }], line: false }] : []),
      ],
      hlines: [{ y: 120, label: "target 120 KiB" }], ymin: 0, xticks: s.levels.map((l) => l.sessions), legend: "br",
    }));
    const [c, d] = place();
    body.push(panel(c, d, W, H, {
      title: "Proxy CPU per chat stanza vs. idle sessions", xlabel: "idle authenticated sessions", ylabel: "µs CPU per forwarded stanza", xlog: true,
      series: [{ name: "proxy (median, min–max)", color: COLORS.proxy, points: s.levels.map((l) => pt(l.sessions, l.cpuPerStanzaUs)) }],
      ymin: 0, xticks: s.levels.map((l) => l.sessions),
    }));
  }
  if (r.reconnect) {
    const rc = r.reconnect;
    const [a, b] = place();
    body.push(panel(a, b, W, H, {
      title: `Reconnect, ${rc.occupants} occupants per room`, xlabel: "rooms rejoined", ylabel: "ms until occupants + missed msgs (log)", xlog: true, ylog: true,
      series: [
        { name: "direct", color: COLORS.direct, points: rc.configs.map((c) => pt(c.rooms, c.direct.totalMs)) },
        { name: "proxy", color: COLORS.proxy, points: rc.configs.map((c) => pt(c.rooms, c.proxy.totalMs)) },
        { name: "proxy, rejoin alone (after bind)", color: COLORS.proxy, dash: "4 3", points: rc.configs.map((c) => pt(c.rooms, c.proxy.rejoinMs)) },
      ],
      xticks: rc.configs.map((c) => c.rooms),
    }));
  }
  if (r.accountWin) {
    const aw = r.accountWin;
    const maxR = Math.max(...aw.configs.map((c) => c.rooms));
    const cs = aw.configs.filter((c) => c.rooms === maxR);
    const [a, b] = place();
    body.push(panel(a, b, W, H, {
      title: `Server → account room messages (M=${aw.messages}, R=${maxR})`, xlabel: "sessions of the account (K)", ylabel: "stanzas", xlog: true,
      series: [
        { name: "direct", color: COLORS.direct, points: cs.map((c) => pt(c.k, c.direct.groupchat)) },
        { name: "proxy", color: COLORS.proxy, points: cs.map((c) => pt(c.k, c.proxy.groupchat)) },
      ],
      ymin: 0, xticks: cs.map((c) => c.k),
    }));
  }
  if (body.length === 0) return undefined;
  return svgDoc(2 * W, y + (x > 0 ? H : 0), body, "minimix-proxy: scaling, reconnect and the account-level win");
}

export function markdown(r: Results): string {
  const L: string[] = [];
  const m = r.meta;
  L.push("# minimix-proxy benchmark results", "");
  const latest = m.sections ? Object.entries(m.sections).filter(([, run]) => run.startsWith(m.date)).map(([sec]) => SECTION_TITLES[sec] ?? sec) : [];
  const how = m.sections ? `\`BENCH_ONLY=… npm run bench\` (sections ${latest.join(", ")})` : "`npm run bench`";
  L.push(`Generated by ${how}${m.quick ? " **in quick mode (smoke sizes: not for conclusions)**" : ""} on ${m.date}: Node ${m.node}, ${m.cpus} × ${m.cpuModel}, ` +
    `${m.rounds} rounds per measurement${r.inactive ? ` (section 7: ${r.inactive.options.rounds})` : ""}, ${fmt(m.seconds, 0)} s in all. Prosody 0.12 on loopback (test/support/prosody.sh), the proxy and the ` +
    "pipe relay as child processes; every client connects with direct TLS, the proxy and the relay connect to Prosody's direct-TLS port.", "");
  L.push("Every figure is **median (min–max) over the rounds**; the paths are interleaved and their order rotates every round, and every " +
    "comparison is a ratio of figures measured in this run. The machine is a noisy 2-core VM shared with other work: read spreads before differences.", "");
  if (m.sections) {
    const byRun = new Map<string, string[]>();
    for (const [sec, run] of Object.entries(m.sections)) byRun.set(run, [...(byRun.get(run) ?? []), SECTION_TITLES[sec] ?? sec]);
    L.push("**Sections from more than one run** (a partial run, `BENCH_ONLY`, merged into an earlier one; every ratio is still measured within one run): " +
      [...byRun].map(([run, secs]) => `${secs.join(", ")} — ${run}`).join("; ") + ". The run described above is the latest.", "");
  }
  if (r.errors.length) L.push(`**${r.errors.length} measurement(s) failed in this run** — see \`errors\` in results.json.`, "");

  L.push("## Targets", "");
  L.push(table(["Target", "Measured", "Ratio", "Limit", "Status"], r.targets.map((t) => [
    t.target, t.measured, t.unsupported ? "—" : fmt(t.ratio, 3), t.limit, t.unsupported ? "**not supported yet**" : t.met ? "**met**" : "**missed**",
  ])), "");
  L.push("Charts: [latency distributions and throughput](latency.svg) · [scaling, reconnect, account-level win](scaling.svg)", "");
  L.push("![latency](latency.svg)", "", "![scaling](scaling.svg)", "");
  const changes = changesSection();
  if (changes) L.push("What changed in the proxy for these figures, with before/after measurements: [Changes and before/after](#changes-and-beforeafter) (hand-written, from [CHANGES.md](CHANGES.md)).", "");

  const p = r.passthrough;
  if (p) {
    L.push("## 1. Pass-through cost (one-to-one chat)", "");
    L.push(`alice → bob → alice round trips, one at a time, ${p.pings} per round per path; bob's client answers each ping at once. ` +
      "Chat carries `<no-store xmlns='urn:xmpp:hints'/>`.", "");
    L.push(table(["Path", "p50 RTT (ms)", "p99 RTT (ms)", "added p50 vs direct (µs)", "added p99 vs direct (µs)"], PATHS.map((n) => [
      n, fmtS(p.latency[n].p50, 3), fmtS(p.latency[n].p99, 3),
      n === "direct" ? "—" : fmtS(scale(p.addedP50[n], 1000), 0), n === "direct" ? "—" : fmtS(scale(p.addedP99[n], 1000), 0),
    ])), "");
    L.push(`Added p50 latency, proxy ÷ relay: **${fmt(p.addedRatio, 2)}**.`, "");
    L.push("Closed-loop throughput: alice keeps a window of messages in flight to bob; messages/s delivered to bob:", "");
    L.push(table(["Path", ...p.throughput.windows.map((w) => `window ${w}`), "saturation (best window)", "Prosody CPU per message (µs)"], PATHS.map((n) => [
      n, ...p.throughput.rate[n].map((s) => fmtS(s, 0)), fmtS(p.throughput.saturation[n], 0), fmtS(p.prosodyCpuPerMessageUs[n], 0),
    ])), "");
    L.push(`Saturation throughput proxy ÷ direct: **${fmtS(p.throughput.ratio, 2)}**; relay ÷ direct: ${fmtS(p.throughput.relayRatio, 2)}.`, "");
  }
  const c = r.cpu;
  if (c) {
    L.push("## 2. Proxy CPU per stanza", "");
    L.push("Process CPU (user+sys from /proc/PID/stat) of the proxy / relay child during the saturated throughput runs, divided by stanzas " +
      "forwarded (a chat message crosses twice: alice → server, server → bob; a groupchat message is delivered K times). " +
      "The parser floor is a bare loop over the same stanza in this process: `parseStanza` (ltx) + `toString()`; the framer floor is " +
      "the proxy's byte framer alone.", "");
    L.push(table(["Traffic", "proxy µs/stanza", "relay µs/stanza", "parse+serialize floor µs", "framer floor µs", "proxy ÷ floor", "stanza bytes"], [
      ["chat", fmtS(c.chat.proxy), fmtS(c.chat.relay), fmtS(c.chat.floorParseSerialize), fmtS(c.chat.floorFramer), fmtS(c.chat.ratio), String(c.chat.stanzaBytes)],
      [`groupchat, K=${c.groupchat.k}`, fmtS(c.groupchat.proxy), fmtS(c.groupchat.relay), fmtS(c.groupchat.floorParseSerialize), fmtS(c.groupchat.floorFramer), fmtS(c.groupchat.ratio), String(c.groupchat.stanzaBytes)],
    ]), "");
    L.push("Groupchat load messages carry `<no-store xmlns='urn:xmpp:hints'/>` (no MUC archive writes); bob sends them straight to Prosody and keeps " +
      "a window of messages in flight, a message being done when all K sessions have it.", "");
    L.push(`Groupchat deliveries/s during the runs: relay ${fmtS(c.groupchat.rate.relay, 0)}, proxy ${fmtS(c.groupchat.rate.proxy, 0)}.`, "");
  }
  const aw = r.accountWin;
  if (aw) {
    L.push("## 3. The account-level win", "");
    L.push(`K sessions of alice in R rooms; bob posts M=${aw.messages} messages round-robin over the R rooms, one at a time, each done when all K ` +
      "sessions have it. What Prosody sends on connections bound to alice is counted by a TLS-terminating tap in front of Prosody " +
      "(both paths go through it, so both are counted the same way).", "");
    L.push(table(["K", "R", "room msgs direct", "room msgs proxy", "proxy ÷ direct × K", "all stanzas direct / proxy", "bytes direct / proxy", "delivery p50 ms direct / proxy", "p99 ms direct / proxy"],
      aw.configs.map((x) => [
        String(x.k), String(x.rooms), fmtS(x.direct.groupchat, 0), fmtS(x.proxy.groupchat, 0), fmtS(scale(x.groupchatRatio, x.k), 3),
        `${fmt(x.direct.stanzas.median, 0)} / ${fmt(x.proxy.stanzas.median, 0)}`, `${fmt(x.direct.bytes.median, 0)} / ${fmt(x.proxy.bytes.median, 0)}`,
        `${fmt(x.direct.latencyP50.median, 3)} / ${fmt(x.proxy.latencyP50.median, 3)}`, `${fmt(x.direct.latencyP99.median, 3)} / ${fmt(x.proxy.latencyP99.median, 3)}`,
      ])), "");
  }
  const rc = r.reconnect;
  if (rc) {
    L.push("## 4. Reconnect", "");
    L.push(`alice is in R rooms of ${rc.occupants} occupants each (${rc.occupants - 1} others + alice), drops her connection, misses one message per room, ` +
      "reconnects (TLS, SASL PLAIN, bind) and rejoins every room with `<history since=…>`. Timed until every room delivered its self-presence " +
      "(so its occupant list) and the missed message. Through the proxy the account stays in the rooms, so the rejoin is answered from its state; " +
      "the login still goes to Prosody. A warm-up round per R is not counted.", "");
    L.push(table(["R", "direct total ms", "proxy total ms", "speed-up (total)", "direct rejoin ms", "proxy rejoin ms", "speed-up (rejoin)", "login ms direct / proxy", "occupant presences seen d / p"],
      rc.configs.map((x) => [
        String(x.rooms), fmtS(x.direct.totalMs, 1), fmtS(x.proxy.totalMs, 1), fmtS(x.speedupTotal, 2), fmtS(x.direct.rejoinMs, 1), fmtS(x.proxy.rejoinMs, 1), fmtS(x.speedupRejoin, 1),
        `${fmt(x.direct.loginMs.median, 1)} / ${fmt(x.proxy.loginMs.median, 1)}`, `${x.direct.occupantsSeen} / ${x.proxy.occupantsSeen}`,
      ])), "");
  }
  const s = r.scale;
  if (s) {
    L.push("## 5. Memory and scale", "");
    L.push(`A fresh proxy process; idle sessions (TLS, PLAIN, bind, nothing else; alice/bob/carol in turn) are added level by level. RSS per session = ` +
      `(RSS now − RSS before the first idle session, ${fmt(s.baselineRssBytes / 1048576, 1)} MiB) ÷ sessions, median of 5 readings after settling. ` +
      "CPU per stanza is measured at each level with the chat throughput run (window 64) between two extra sessions.", "");
    L.push(table(["idle sessions", "established", "RSS MiB", "KiB per session", "login time s (this level)", "proxy CPU µs per stanza", "msgs/s", "proxy busy (cores)", "Prosody µs per msg", "Prosody busy (cores)"], s.levels.map((l) => [
      String(l.sessions), String(l.established), fmt(l.rssBytes / 1048576, 1), fmt(l.rssPerSessionKiB, 1), fmt(l.loginSeconds, 1), fmtS(l.cpuPerStanzaUs), fmtS(l.rate, 0),
      fmtS(l.proxyBusy), fmtS(l.prosodyCpuPerMessageUs, 0), fmtS(l.prosodyBusy),
    ])), "");
    if (s.relay) L.push(`Pipe relay (two TLS sockets per session and nothing else) at ${s.relay.sessions} sessions: **${fmt(s.relay.rssPerSessionKiB, 1)} KiB per session**.`, "");
    L.push(`CPU per stanza, largest level ÷ smallest: ${fmtS(s.growth, 2)}.`, "");
  }
  mobileSections(r, L);
  loginSection(r, L);
  hotPathSection(r.hotPath, L);
  firstJoinSection(r, L);
  clusterSection(r.cluster, L);
  if (r.profile && (r.profile.chat || r.profile.groupchat)) {
    L.push("## Profile of the proxy (node --cpu-prof)", "");
    L.push("A separate proxy process per load, run with `--cpu-prof` (200 µs sampling); only the samples of a 3 s saturated window after a 1 s warm-up count (start-up, logins and shutdown are cut off); self time, idle excluded. Native work (TLS, syscalls) is charged to the JS function that called it. " +
      "The raw profiles are in bench/profiles/ (open in Chrome DevTools or speedscope for a flame graph).", "");
    for (const kind of ["chat", "groupchat"] as const) {
      const pr = r.profile[kind];
      if (!pr) continue;
      L.push(`### ${kind}`, "");
      L.push(`${fmt(pr.rate ?? NaN, 0)} ${kind === "chat" ? "messages" : "deliveries"}/s; the sampled window holds ${fmt((pr.busyPct / 100) * pr.totalMs, 0)} ms of ` +
        `non-idle samples in ${fmt(pr.totalMs, 0)} ms, while /proc charged the process ${fmt(pr.procCpuMs ?? NaN, 0)} ms of CPU: the rest is native work ` +
        "V8's sampler books as (idle) (TLS records decrypted in libuv's read callbacks, kernel time of the socket calls) and other threads.", "");
      L.push(table(["function", "where", "self ms", "% of busy"], pr.functions.map((f) => [`\`${f.name}\``, f.where, fmt(f.selfMs, 1), fmt(f.pct, 1)])), "");
      L.push(table(["file", "self ms", "% of busy"], pr.files.slice(0, 10).map((f) => [f.name, fmt(f.selfMs, 1), fmt(f.pct, 1)])), "");
    }
  }
  if (r.errors.length) {
    L.push("## Errors", "");
    for (const e of r.errors) L.push("```", e.slice(0, 2000), "```");
  }
  if (changes) L.push(changes, "");
  return L.join("\n") + "\n";
}

const SECTION_TITLES: Record<string, string> = {
  passthrough: "1", cpu: "2", accountWin: "3", reconnect: "4", scale: "5", switchBack: "6", inactive: "7", login: "8", hotPath: "9", firstJoin: "10", cluster: "11", profile: "profile",
};

/** Sections 6 and 7 (issue 11). */
function mobileSections(r: Results, L: string[]): void {
  const sw = r.switchBack;
  if (sw) {
    const o = sw.options;
    L.push("## 6. Back after a network switch", "");
    L.push(`alice is in ${o.rooms} rooms with ${o.occupants} other occupants each (resources of bob), with an available presence. Her connection is cut ` +
      "abruptly (the socket is destroyed, no `</stream:stream>`; on loopback the server still sees the FIN at once). While she is away, over " +
      `${fmt(o.outageMs, 0)} ms, an occupant posts ${o.roomMessages} room messages round-robin over the rooms and carol sends ${o.chats} 1:1 messages to her ` +
      "bare JID. Then she comes back; timed from the new TCP connect until every missed message has arrived. **Full reconnect**: TLS, SASL PLAIN, " +
      "bind, then in one write a MAM query for the 1:1 messages since the cut (first, as MAM clients do, so Prosody does not also push its " +
      "offline copies), the available presence and every room rejoined with `<history since>`; no roster, disco or carbons: the least a client " +
      "can do. **Resume** (XEP-0198): `<enable resume='true'/>` after bind " +
      "before the cut, `<resume previd h/>` after SASL on the new connection; the server resends what it queued. The paths use separate rooms " +
      "of the same size; a warm-up round per path is not counted. The proxy path is measured only when the proxy offers `<sm xmlns='urn:xmpp:sm:3'/>` " +
      "after authentication and grants resumption. The relay path is not measured: a resume through a byte pipe is Prosody's own.", "");
    const row = (name: string, x: SwitchSide): string[] => [
      name, fmtS(x.totalMs, 0), fmtS(x.loginMs, 0), fmtS(x.restoreMs, 0), fmtS(x.bytes, 0), fmtS(x.stanzas, 0), `${x.delivered}/${x.expected}`, String(x.duplicates),
    ];
    const rows = [row("direct, full reconnect", sw.full), row("direct, Prosody's XEP-0198 resume", sw.sm)];
    if (isSupported(sw.proxy)) rows.push(row("proxy, the proxy's resume", sw.proxy));
    else rows.push(["proxy, the proxy's resume", `**not supported**: ${sw.proxy.reason}`, "—", "—", "—", "—", "—", "—"]);
    L.push(table(["Path", "connect → all missed ms", "login ms", "bind+rejoin+MAM / resume ms", "bytes received", "stanzas received", "missed delivered (fewest)", "duplicates (most)"], rows), "");
    L.push(`Prosody's resume vs a full reconnect: **${fmtS(sw.smSpeedup, 1)}× faster**.` +
      (sw.proxyVsSm && sw.proxySpeedup ? ` The proxy's resume ÷ Prosody's: **${fmtS(sw.proxyVsSm, 2)}**; full reconnect ÷ the proxy's resume: **${fmtS(sw.proxySpeedup, 1)}**.` : ""), "");
  }
  const ip = r.inactive;
  if (ip) {
    const o = ip.options;
    L.push("## 7. An inactive phone in busy rooms", "");
    L.push(`alice's phone joins ${o.rooms} rooms, each with ${o.occupants} other occupants (resources of bob), and sends \`<inactive xmlns='urn:xmpp:csi:0'/>\`. ` +
      `For ${fmt(o.seconds, 0)} s the occupants keep the rooms busy — ${fmt(o.eventsPerSecond, 0)} events/s over all rooms: status changes (with entity caps), ` +
      "occupants leaving and coming back, chat states without a body — and post " +
      `${o.bodies} messages with a body, evenly spread (per round: ${fmt(ip.driven.presences, 0)} presences, ${fmt(ip.driven.chatStates, 0)} chat states, ${fmt(ip.driven.bodies, 0)} bodies). ` +
      "Then the phone sends `<active/>` and gets what was held. Counted on the wire in front of the phone by a TCP pipe that does not terminate TLS: " +
      `bytes (TLS ciphertext), TLS records (about one per write of the sender) and bursts (arrivals after ≥ ${o.burstGapMs} ms of silence: what wakes a radio), ` +
      "from `<inactive/>` until the flush after `<active/>` has been quiet for 1 s. The phones run at the same time in the same rooms under the same traffic: " +
      "**direct** to Prosody 0.12 with `csi_simple` (holds presences and body-less messages, adds a `<delay/>` to each, flushes on a body, an IQ, " +
      "client activity or 256 held stanzas), **active** straight to Prosody and never inactive (the reference: what CSI saves at all), and **proxy**. " +
      "Prosody stays in a flushing state for `csi_resume_inactive_delay` (5 s) after each flush before it holds again, so with a body every " +
      `${fmt(o.seconds / Math.max(1, o.bodies), 0)} s it holds only part of the time. ${o.rounds} rounds. ` +
      "No phone enables stream management here. Every figure is the total (inactive window + the flush); the flush alone is listed too. " +
      "The proxy path is measured only when the proxy offers `<csi xmlns='urn:xmpp:csi:0'/>` and an inactive phone is really spared a room presence " +
      "(one status change, probed before the rounds): until the proxy's own CSI is wired it passes Prosody's `<csi/>` feature through, and " +
      "`<inactive/>` then reaches only its upstream leg, not the room traffic the proxy fans out. The relay path is not measured: CSI through a " +
      "byte pipe is Prosody's own.", "");
    const row = (name: string, x: PhoneSide): string[] => [
      name, fmtS(x.bytes, 0), fmtS(x.records, 0), fmtS(x.bursts, 0), fmtS(x.windowBursts, 0), fmtS(x.flushBytes, 0), fmtS(x.stanzas, 0), `${x.bodiesDelivered}/${x.bodiesSent}`,
    ];
    const rows = [row("direct, inactive (csi_simple)", ip.direct), row("direct, active (no CSI)", ip.active)];
    if (isSupported(ip.proxy)) rows.push(row("proxy, inactive", ip.proxy));
    else rows.push(["proxy, inactive", `**not supported**: ${ip.proxy.reason}`, "—", "—", "—", "—", "—", "—"]);
    L.push(table(["Phone", "bytes", "TLS records", "bursts", "bursts while inactive", "bytes of the flush", "stanzas", "bodies delivered (fewest)"], rows), "");
    L.push(`Prosody's csi_simple vs an active phone: bytes ${fmtS(ip.directVsActive.bytes, 2)}, bursts ${fmtS(ip.directVsActive.bursts, 2)}.` +
      (ip.proxyVsDirect ? ` Proxy ÷ direct: bytes **${fmtS(ip.proxyVsDirect.bytes, 2)}**, bursts **${fmtS(ip.proxyVsDirect.bursts, 2)}**, TLS records ${fmtS(ip.proxyVsDirect.records, 2)}.` : ""), "");
  }
}

/** Section 8 (issue 12). */
function loginSection(r: Results, L: string[]): void {
  const lg = r.login;
  if (!lg) return;
  const o = lg.options;
  L.push("## 8. SCRAM login cost", "");
  L.push("alice logs in with SCRAM-SHA-1 over direct TLS with the SaltedPassword she cached for the server's salt (RFC 5802 §5.1; " +
    "what a real client does after its first login: no PBKDF2 on the client), timed from the TCP connect to the bind result " +
    "(a server-chosen resource; the first moment the client can send). **Direct**: Prosody 0.12 verifies her. **Proxy**: the proxy has her record from a PLAIN login made before (the server's " +
    "salt mirrored) and verifies her proof with HMACs. Her own upstream leg (TCP, TLS, the server's features) was opened when her stream " +
    "was offered SASL, its SCRAM exchange begun when her client-first arrived; the proxy answers `<success/>` as soon as her proof " +
    "verifies, and the upstream leg finishes (its final round trip, the restart) while she restarts her stream, whose features wait for it. " +
    `Latency: ${o.sequential} logins one after the other per round (the round's median). Throughput: ${o.burst} logins, ${o.parallel} at a time; ` +
    "CPU from /proc of the serving process (the proxy, or Prosody when direct) and of Prosody. Logins per second of one core = 1000 ÷ CPU ms per login.", "");
  const row = (name: string, x: LoginSide): string[] => [name, fmtS(x.p50Ms, 1), fmtS(x.perSecond, 0), fmtS(x.cpuMsPerLogin, 2), fmtS(x.serverCpuMsPerLogin, 2)];
  L.push(table(["Path", "login p50 ms", "logins/s (wall)", "CPU ms per login (serving process)", "Prosody CPU ms per login"],
    [row("direct to Prosody", lg.direct), row("through the proxy", lg.proxy), ...(lg.proxyPlain ? [row("through the proxy, plain leg to Prosody (`--upstream-tls none`)", lg.proxyPlain)] : []),
      ...(lg.relay ? [row("floor: TLS pipe relay (no XMPP, SASL end to end)", lg.relay)] : []),
      ...(lg.relayPlain ? [row("floor: TLS pipe relay, plain leg to Prosody", lg.relayPlain)] : [])]), "");
  if (lg.proxyPlain) {
    L.push("The third row is a second proxy beside the server whose own legs are plain TCP on loopback (`--upstream-tls none`; this benchmark's Prosody " +
      `accepts plain c2s on 127.0.0.1): no TLS handshake on that leg for the proxy or for Prosody. Proxy (plain leg) ÷ direct login time: **${fmtS(lg.proxyPlain.vsDirect, 2)}**.`, "");
  }
  if (lg.relay) {
    L.push("**The floor.** The relay rows are the pipe relay of §9 (bench/relay.ts): it terminates the client's TLS and pipes the bytes to Prosody " +
      "(over TLS, or plain to the plain c2s port), with no XML, no SASL of its own and no account layer: the client's SCRAM exchange runs end to end with " +
      `Prosody. Any Node process that terminates the client's TLS pays at least that. Relay ÷ direct login time: **${fmtS(lg.relay.vsDirect, 2)}**` +
      (lg.relayPlain ? ` (plain leg: ${fmtS(lg.relayPlain.vsDirect, 2)})` : "") + `; the proxy ÷ the relay: **${fmtS(lg.relay.proxyVsRelay, 2)}**` +
      (lg.relayPlain?.proxyVsRelay ? `, the plain-leg proxy ÷ the plain-leg relay: **${fmtS(lg.relayPlain.proxyVsRelay, 2)}**` : "") + ".", "");
  }
  const rs = lg.resumed;
  if (rs) {
    const pct = (x: number | undefined): string => (x === undefined ? "–" : `${fmt(x * 100, 0)} %`);
    L.push("**TLS session resumption** (RFC 8446 §2.2): the client offers the session ticket it kept from its previous connection to the same " +
      `server, as phones do when they reconnect; ${o.sequential} sequential logins per round. Prosody 0.12 resumes none; the proxy resumes them.`, "");
    L.push(table(["Path", "login p50 ms", "÷ direct", "CPU ms per login (serving process)", "Prosody CPU ms per login", "connects resumed"], [
      ["direct to Prosody", fmtS(rs.direct, 1), "1", fmtS(rs.cpuMsPerLogin.direct, 2), fmtS(rs.serverCpuMsPerLogin.direct, 2), pct(rs.resumedShare.direct)],
      ["through the proxy", fmtS(rs.proxy, 1), fmtS(rs.proxyVsDirect, 2), fmtS(rs.cpuMsPerLogin.proxy, 2), fmtS(rs.serverCpuMsPerLogin.proxy, 2), pct(rs.resumedShare.proxy)],
      ...(rs.proxyPlain && rs.proxyPlainVsDirect && rs.cpuMsPerLogin.proxyPlain && rs.serverCpuMsPerLogin.proxyPlain
        ? [["through the proxy, plain leg", fmtS(rs.proxyPlain, 1), fmtS(rs.proxyPlainVsDirect, 2), fmtS(rs.cpuMsPerLogin.proxyPlain, 2), fmtS(rs.serverCpuMsPerLogin.proxyPlain, 2), pct(rs.resumedShare.proxyPlain)]]
        : []),
    ]), "");
  }
  if (lg.mobile) {
    L.push(`Over an emulated mobile link (${fmt(o.mobileRttMs, 0)} ms round trip between the phone and Prosody or the proxy, a delay pipe in the ` +
      `benchmark process; the proxy's own leg to Prosody on loopback), ${o.mobileLogins} logins per round: direct **${fmtS(lg.mobile.direct, 0)} ms**, ` +
      `through the proxy **${fmtS(lg.mobile.proxy, 0)} ms**, proxy ÷ direct **${fmtS(lg.mobile.proxyVsDirect, 2)}**.`, "");
  }
  L.push(`On loopback, proxy ÷ direct login time: **${fmtS(lg.proxyVsDirect, 2)}**. Logins per second of one core: the proxy ${fmt(lg.perCoreSecond.proxy, 0)}, ` +
    `Prosody (direct) ${fmt(lg.perCoreSecond.direct, 0)}. SCRAM-SHA-1-PLUS (tls-exporter) through the proxy: p50 ${fmtS(lg.proxyPlusP50Ms, 1)} ms.`, "");
  if (lg.plain) {
    L.push(`PLAIN logins (the password sent every time; connect → bound, ${o.sequential} per round, the bench client's own resource): direct **${fmtS(lg.plain.direct, 1)} ms**, ` +
      `through the proxy **${fmtS(lg.plain.proxy, 1)} ms**, proxy ÷ direct **${fmtS(lg.plain.proxyVsDirect, 2)}** (the proxy's upstream SCRAM login reuses the SaltedPassword it computed at the first one).`, "");
  }
}

/** Section 10 (issue 15). */
function firstJoinSection(r: Results, L: string[]): void {
  const fj = r.firstJoin;
  if (!fj) return;
  const o = fj.options;
  L.push("## 10. First join of a room", "");
  L.push(`carol, logged in (PLAIN, direct TLS), joins a room with ${o.occupants} occupants (bob's sessions straight to Prosody) that her account is not in; ` +
    "timed from her join presence to her self-presence; then she leaves and logs out, so every sample is a first join. " +
    "**proxy**: `--account-session-start login` (the default) with `--account-session-linger 0`, so each sample's account session is the one her own login started " +
    "(with the default linger every login after the first would find it warm). **proxy, start at join**: `--account-session-start join`, as before issue 15: the join waits for the account session's connect, login and bind. " +
    `**settled**: the join goes out ${o.settleMs} ms after the bind result (a client fetches its roster and sends its presence first); **immediate**: at once, ` +
    `when the account session may still be logging in. ${o.joins} joins per path, variant and round (the round's median); paths interleaved.`, "");
  const row = (v: "settled" | "immediate"): string[] => [v, fmtS(fj[v].direct, 1), fmtS(fj[v].proxy, 1), fmtS(fj[v].proxyVsDirect, 2), fmtS(fj[v].proxyJoin, 1), fmtS(fj[v].proxyJoinVsDirect, 2)];
  L.push(table(["join sent", "direct ms", "proxy ms", "proxy ÷ direct", "proxy, start at join ms", "÷ direct"], [row("settled"), row("immediate")]), "");
}

function scale(s: Summary, f: number): Summary {
  return { median: s.median * f, min: s.min * f, max: s.max * f, spread: s.spread, rounds: s.rounds.map((x) => x * f) };
}

/** The hand-written bench/CHANGES.md (changes made for the targets, with their before/after figures), if any. */
function changesSection(): string | undefined {
  const file = join(ROOT, "bench", "CHANGES.md");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

export function writeReport(r: Results, dir: string): void {
  const lat = latencySvg(r);
  if (lat) writeFileSync(join(dir, "latency.svg"), lat);
  const sc = scalingSvg(r);
  if (sc) writeFileSync(join(dir, "scaling.svg"), sc);
  writeFileSync(join(dir, "RESULTS.md"), markdown(r));
}
