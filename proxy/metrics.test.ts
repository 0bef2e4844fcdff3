import { describe, expect, it } from "vitest";
import { ProxyMetrics, type MetricsSource } from "./metrics.js";
import type { RoomSnapshot } from "../core/muc/room-state.js";

function room(over: Partial<RoomSnapshot> = {}): RoomSnapshot {
  return {
    room: "r@muc.example.org", nick: "alice", state: "joined", upstreamJoined: true, sessions: ["alice@example.org/a", "alice@example.org/b"],
    waiting: [], occupants: 3, buffered: 7, subject: undefined, idleSince: undefined, source: "client", lastSeen: undefined, ...over,
  };
}

/** The value of one sample line `name{labels} value` of the text exposition. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function fresh(source?: MetricsSource): ProxyMetrics {
  const m = new ProxyMetrics({ defaultMetrics: false });
  m.bind(source);
  return m;
}

describe("ProxyMetrics", () => {
  it("exposes every metric, with zero-valued series before any traffic", async () => {
    const { body, contentType } = await fresh().render(undefined);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      "minimix_connections", "minimix_connections_accepted_total", "minimix_tls_handshake_failures_total", "minimix_auth_successes_total",
      "minimix_auth_failures_total", "minimix_stanzas_total", "minimix_stanza_bytes_total", "minimix_limit_breaches_total",
      "minimix_upstream_connect_seconds", "minimix_upstream_connect_failures_total", "minimix_accounts", "minimix_account_sessions",
      "minimix_rooms", "minimix_room_buffered_messages", "minimix_room_sessions", "minimix_fanout_deliveries_total",
      "minimix_room_stanzas_received_total", "minimix_upstream_deliveries_saved", "minimix_client_buffered_bytes",
      "minimix_refused_stanzas_total",
    ]) {
      expect(body, name).toContain(`# TYPE ${name} `);
    }
    expect(sample(body, 'minimix_connections{transport="starttls",state="open"}')).toBe(0);
    expect(sample(body, 'minimix_stanzas_total{direction="in",kind="message"}')).toBe(0);
    expect(sample(body, 'minimix_account_sessions{state="up"}')).toBe(0);
    expect(sample(body, "minimix_client_buffered_bytes")).toBe(0);
    const bound = await fresh({ sessions: [], bufferedBytes: 123_456 }).render(undefined);
    expect(sample(bound.body, "minimix_client_buffered_bytes")).toBe(123_456);
  });

  it("counts hooks: stanzas and bytes by direction and kind, auth, TLS, limits, latency", async () => {
    const m = fresh();
    m.stanza("in", "message", 100);
    m.stanza("in", "message", 50);
    m.stanza("in", "auth", 30);
    m.stanza("out", "presence", 70);
    m.stanzaXml("out", "<iq type='result' id='x'/>");
    m.stanzaXml("out", "<message to='a@b/c'><body>é</body></message>");
    m.authSucceeded(120);
    m.authFailed("not-authorized");
    m.authFailed("something-made-up");
    m.tlsHandshakeFailed("direct-tls");
    m.connectionAccepted("starttls");
    m.limitBreach("client", "XML_STANZA_TOO_LARGE");
    m.upstreamConnected("account", 40);
    m.upstreamFailed("session", "UPSTREAM_CONNECT");
    m.upstreamFailed("account", undefined);
    const { body } = await m.render(undefined);
    expect(sample(body, 'minimix_stanzas_total{direction="in",kind="message"}')).toBe(2);
    expect(sample(body, 'minimix_stanza_bytes_total{direction="in",kind="message"}')).toBe(150);
    expect(sample(body, 'minimix_stanzas_total{direction="in",kind="other"}')).toBe(1);
    expect(sample(body, 'minimix_stanzas_total{direction="out",kind="presence"}')).toBe(1);
    expect(sample(body, 'minimix_stanzas_total{direction="out",kind="iq"}')).toBe(1);
    expect(sample(body, 'minimix_stanzas_total{direction="out",kind="message"}')).toBe(1);
    expect(sample(body, 'minimix_stanza_bytes_total{direction="out",kind="message"}')).toBe(Buffer.byteLength("<message to='a@b/c'><body>é</body></message>"));
    expect(sample(body, "minimix_auth_successes_total")).toBe(1);
    expect(sample(body, 'minimix_auth_failures_total{condition="not-authorized"}')).toBe(1);
    expect(sample(body, 'minimix_auth_failures_total{condition="other"}')).toBe(1);
    expect(sample(body, 'minimix_tls_handshake_failures_total{transport="direct-tls"}')).toBe(1);
    expect(sample(body, 'minimix_connections_accepted_total{transport="starttls"}')).toBe(1);
    expect(sample(body, 'minimix_limit_breaches_total{leg="client",kind="XML_STANZA_TOO_LARGE"}')).toBe(1);
    expect(sample(body, 'minimix_upstream_connect_seconds_count{purpose="session"}')).toBe(1);
    expect(sample(body, 'minimix_upstream_connect_seconds_sum{purpose="session"}')).toBeCloseTo(0.12);
    expect(sample(body, 'minimix_upstream_connect_seconds_bucket{le="0.05",purpose="account"}')).toBe(1);
    expect(sample(body, 'minimix_upstream_connect_failures_total{purpose="session",code="UPSTREAM_CONNECT"}')).toBe(1);
    expect(sample(body, 'minimix_upstream_connect_failures_total{purpose="account",code="INTERNAL"}')).toBe(1);
  });

  it("counts refused stanzas by kind", async () => {
    const m = fresh();
    m.refused("HELD_PMS_FULL");
    m.refused("HELD_PMS_LOST", 3);
    const { body } = await m.render(undefined);
    expect(sample(body, 'minimix_refused_stanzas_total{kind="HELD_PMS_FULL"}')).toBe(1);
    expect(sample(body, 'minimix_refused_stanzas_total{kind="HELD_PMS_LOST"}')).toBe(3);
  });

  it("reads connections, accounts, rooms and sessions per room from the bound server at scrape time", async () => {
    const sessions = [
      { transport: "starttls", state: "open" }, { transport: "starttls", state: "open" }, { transport: "direct-tls", state: "tls" },
    ];
    const accounts = [
      { rooms: { rooms: () => [room(), room({ room: "s@muc.example.org", state: "joining", sessions: [], waiting: ["alice@example.org/a"], buffered: 0 })] }, accountSessionState: "up" },
      { rooms: { rooms: () => [] }, accountSessionState: "down" },
      // online with no room (started at a login, or lingering): counted as up
      { accountSessionState: "up", rooms: { rooms: () => [] } },
    ];
    const m = fresh({ sessions, accounts: { all: () => accounts } });
    const { body } = await m.render(undefined);
    expect(sample(body, 'minimix_connections{transport="starttls",state="open"}')).toBe(2);
    expect(sample(body, 'minimix_connections{transport="direct-tls",state="tls"}')).toBe(1);
    expect(sample(body, 'minimix_connections{transport="direct-tls",state="open"}')).toBe(0);
    expect(sample(body, "minimix_accounts")).toBe(3);
    expect(sample(body, 'minimix_account_sessions{state="up"}')).toBe(2);
    expect(sample(body, 'minimix_account_sessions{state="down"}')).toBe(1);
    expect(sample(body, 'minimix_rooms{state="joined"}')).toBe(1);
    expect(sample(body, 'minimix_rooms{state="joining"}')).toBe(1);
    expect(sample(body, "minimix_room_buffered_messages")).toBe(7);
    expect(sample(body, "minimix_room_sessions_count")).toBe(2);
    expect(sample(body, "minimix_room_sessions_sum")).toBe(3);
    expect(sample(body, 'minimix_room_sessions_bucket{le="1"}')).toBe(1);
    expect(sample(body, 'minimix_room_sessions_bucket{le="2"}')).toBe(2);
    // re-scraping does not accumulate the sampled histogram
    const again = (await m.render(undefined)).body;
    expect(sample(again, "minimix_room_sessions_count")).toBe(2);
  });

  it("upstream deliveries saved = fan-out deliveries − room stanzas received", async () => {
    const m = fresh();
    for (let i = 0; i < 5; i++) {
      m.roomStanza();
      m.fanOut();
      m.fanOut();
      m.fanOut();
    }
    const { body } = await m.render(undefined);
    expect(sample(body, "minimix_fanout_deliveries_total")).toBe(15);
    expect(sample(body, "minimix_room_stanzas_received_total")).toBe(5);
    expect(sample(body, "minimix_upstream_deliveries_saved")).toBe(10);
  });

  it("serves OpenMetrics when the scraper asks for it", async () => {
    const m = fresh();
    m.fanOut();
    const om = await m.render("application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5");
    expect(om.contentType).toMatch(/^application\/openmetrics-text/);
    expect(om.body.trimEnd().endsWith("# EOF")).toBe(true);
    expect(om.body).toMatch(/^minimix_fanout_deliveries_total 1$/m);
  });

  it("labels never carry JIDs (bounded cardinality)", async () => {
    const m = fresh({
      sessions: [{ transport: "starttls", state: "open" }],
      accounts: { all: () => [{ rooms: { rooms: () => [room()] }, accountSessionState: "up" }] },
    });
    m.stanza("in", "message", 10);
    const { body } = await m.render(undefined);
    expect(body).not.toContain("@");
  });

  it("default process metrics are included unless turned off", async () => {
    const m = new ProxyMetrics();
    expect((await m.render(undefined)).body).toContain("process_cpu_user_seconds_total");
  });
});

describe("limit breaches", () => {
  it("count once per owner (a failed framer reports again for every later chunk)", async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    const conn = {};
    for (let i = 0; i < 3; i++) m.limitBreach("client", "XML_TOO_DEEP", conn);
    m.limitBreach("client", "XML_TOO_DEEP", {});
    m.limitBreach("upstream", "XML_TOO_DEEP", conn);
    const { body } = await m.render(undefined);
    expect(body).toContain('minimix_limit_breaches_total{leg="client",kind="XML_TOO_DEEP"} 2');
    expect(body).toContain('minimix_limit_breaches_total{leg="upstream",kind="XML_TOO_DEEP"} 1');
  });
});
