import { describe, expect, it } from "vitest";
import { buildStatus, duration, formatStatus, type StatusSource } from "./status.js";
import type { RoomSnapshot } from "../core/muc/room-state.js";

const NOW = 1_700_000_000_000;

function source(): StatusSource {
  const rooms: RoomSnapshot[] = [
    {
      room: "dev@muc.example.org", nick: "alice", state: "joined", upstreamJoined: true,
      sessions: ["alice@example.org/phone", "alice@example.org/laptop"], waiting: [], occupants: 4, buffered: 12,
      subject: "Release planning", idleSince: undefined, source: "client", lastSeen: NOW - 1000,
    },
    {
      room: "quiet@muc.example.org", nick: "al", state: "joined", upstreamJoined: false,
      sessions: [], waiting: [], occupants: 1, buffered: 1, subject: undefined, idleSince: NOW - 125_000, source: "bookmark", lastSeen: undefined,
    },
  ];
  return {
    sessions: [
      { id: "1", transport: "starttls", state: "open", jid: "alice@example.org/phone", startedAt: NOW - 3_600_000 },
      { id: "2", transport: "direct-tls", state: "open", jid: "Alice@example.org/laptop", startedAt: NOW - 60_000 },
      { id: "3", transport: "starttls", state: "tls", jid: undefined, startedAt: NOW - 2000 },
      { id: "4", transport: "starttls", state: "open", jid: "bob@example.org/x", startedAt: NOW - 1000 },
    ],
    hibernating: [
      { connId: "5", transport: "direct-tls", jid: "alice@example.org/tablet", startedAt: NOW - 600_000, resumeDeadline: NOW + 250_000 },
    ],
    accounts: {
      all: () => [
        { bare: "alice@example.org", accountSessionJid: "alice@example.org/minimix-1a2b", accountSessionState: "up", stats: { fannedOut: 30, fromRoom: 15, toRoom: 2, reconnects: 1 },
          rooms: { rooms: () => rooms } },
        { bare: "bob@example.org", accountSessionJid: undefined, accountSessionState: "down", stats: { fannedOut: 0, fromRoom: 0, toRoom: 0, reconnects: 0 },
          rooms: { rooms: () => [] } },
      ],
    },
  };
}

describe("status", () => {
  it("groups sessions under their account, with rooms, occupants and buffered messages", () => {
    const st = buildStatus(source(), { version: "9.9.9", startedAt: NOW - 90_000 }, NOW);
    expect(st.version).toBe("9.9.9");
    expect(st.uptimeSeconds).toBe(90);
    expect(st.connections.total).toBe(4);
    expect(st.connections.byState).toEqual({ open: 3, tls: 1 });
    expect(st.connections.unbound).toEqual([{ id: "3", transport: "starttls", state: "tls", connectedSeconds: 2 }]);
    const alice = st.accounts.find((a) => a.jid === "alice@example.org")!;
    expect(alice.accountSession).toEqual({ state: "up", jid: "alice@example.org/minimix-1a2b" });
    expect(alice.sessions.map((s) => s.jid)).toEqual(["alice@example.org/phone", "Alice@example.org/laptop", "alice@example.org/tablet"]);
    // a hibernating session (XEP-0198) is listed under its account, not counted as a connection
    expect(st.hibernating).toBe(1);
    expect(alice.sessions[2]).toEqual({ id: "5", transport: "direct-tls", state: "hibernating", jid: "alice@example.org/tablet",
      connectedSeconds: 600, resumeWithinSeconds: 250 });
    expect(alice.rooms[0]).toMatchObject({ room: "dev@muc.example.org", occupants: 4, buffered: 12, subject: "Release planning", source: "client" });
    expect(alice.rooms[1]).toMatchObject({ source: "bookmark" });
    expect(alice.rooms[0]!.idleSeconds).toBeUndefined();
    expect(alice.rooms[1]!.idleSeconds).toBe(125);
    expect(alice.stats.fannedOut).toBe(30);
    expect(st.accounts.map((a) => a.jid)).toEqual(["alice@example.org", "bob@example.org"]);
    expect(JSON.parse(JSON.stringify(st))).toEqual(st);
  });

  it("prints what an operator needs when a user says 'I don't see messages'", () => {
    const text = formatStatus(buildStatus(source(), { version: "9.9.9", startedAt: NOW - 90_000 }, NOW));
    expect(text).toContain("minimix-proxy 9.9.9");
    expect(text).toContain("up 1m30s");
    expect(text).toContain("connections: 4 (3 open, 1 tls)");
    expect(text).toContain("account alice@example.org");
    expect(text).toContain("account session: up as alice@example.org/minimix-1a2b");
    expect(text).toMatch(/alice@example.org\/phone {2}starttls {2}open {2}connected 1h00m/);
    expect(text).toContain("hibernating sessions (XEP-0198, waiting for their client to resume): 1");
    expect(text).toMatch(/alice@example.org\/tablet {2}direct-tls {2}hibernating, resume within 4m10s {2}connected 10m00s/);
    expect(text).toContain("dev@muc.example.org as alice (from client joins): joined, 4 other occupants, 12 buffered messages");
    expect(text).toContain('subject: "Release planning"');
    expect(text).toContain("sessions in room: alice@example.org/phone, alice@example.org/laptop");
    expect(text).toContain("quiet@muc.example.org as al (from bookmarks): rejoining, 1 other occupant, 1 buffered message, idle 2m05s (no session in it)");
    expect(text).toContain("account bob@example.org");
    expect(text).toContain("account session: down");
    expect(text.endsWith("\n")).toBe(true);
  });

  it("a cluster member shows its node, Redis, the live nodes and the leases it holds; a single node shows no cluster", () => {
    expect(buildStatus(source(), { version: "9.9.9", startedAt: NOW }, NOW).cluster).toBeUndefined();
    const src: StatusSource = { ...source(), clusterStatus: { nodeId: "n1", redisReachable: false,
      knownNodes: [{ id: "n1", advertise: "10.0.0.1:5299" }, { id: "n2", advertise: undefined }], accounts: () => ["bob@example.org", "alice@example.org"] } };
    const st = buildStatus(src, { version: "9.9.9", startedAt: NOW }, NOW);
    expect(st.cluster).toEqual({ node: "n1", redis: "unreachable", nodes: [{ id: "n1", advertise: "10.0.0.1:5299" }, { id: "n2" }], leases: ["alice@example.org", "bob@example.org"] });
    const text = formatStatus(st);
    expect(text).toContain("cluster: node n1, Redis unreachable, 2 live nodes (n1 at 10.0.0.1:5299, n2)");
    expect(text).toContain("account leases held here: 2 (alice@example.org, bob@example.org)");
    expect(text).toContain("forwarding: off");
    const withFwd = formatStatus(buildStatus({ ...src, clusterStatus: { ...src.clusterStatus!, forwarded: { out: 3, in: 1, refused: 2, failed: 0 } } }, { version: "9.9.9", startedAt: NOW }, NOW));
    expect(withFwd).toContain("forwarded sessions since start: 3 to their owner, 1 from other nodes (2 refused, 0 failed)");
  });

  it("durations", () => {
    expect(duration(5)).toBe("5s");
    expect(duration(3599)).toBe("59m59s");
    expect(duration(7260)).toBe("2h01m");
    expect(duration(90_000)).toBe("1d01h");
  });
});
