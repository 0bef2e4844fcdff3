/**
 * `minimix-proxy status`: what the running proxy holds — accounts, their sessions, their rooms with
 * occupants and buffered messages, the account session — as JSON (GET /status on the admin HTTP
 * server, loopback only) and as the human-readable text the status command prints.
 */
import { rawBare } from "../core/jid.js";
import type { RoomSnapshot } from "../core/muc/room-state.js";

export interface StatusSession {
  id: string;
  transport: string;
  state: string;
  /** Full JID once bound. */
  jid?: string;
  connectedSeconds: number;
  /** Hibernating (XEP-0198, no connection): seconds left for its client to resume it. */
  resumeWithinSeconds?: number;
  /**
   * Logged in by a SCRAM exchange relayed to the server (no record for the account): its MUC
   * traffic passes through unchanged, the account layer does not serve it (docs/architecture.md §3.5).
   */
  mucPassThrough?: true;
}

export interface StatusRoom {
  room: string;
  nick: string;
  state: string;
  upstreamJoined: boolean;
  /** Sessions that joined the room through the proxy (full JIDs). */
  sessions: string[];
  /** Sessions whose join waits for the account's join to complete. */
  waiting: string[];
  /** Other occupants (not counting the account itself). */
  occupants: number;
  buffered: number;
  subject?: string;
  /** Seconds since the last session left; absent while a session is in the room. */
  idleSeconds?: number;
  /** Why the account is in the room: an autojoin bookmark it follows, or sessions' joins (docs/architecture.md §4.6). */
  source: "bookmark" | "client";
}

export interface StatusAccount {
  jid: string;
  accountSession: { state: string; jid?: string };
  sessions: StatusSession[];
  rooms: StatusRoom[];
  stats: { fannedOut: number; fromRoom: number; toRoom: number; reconnects: number };
}

/** --cluster-redis (docs/architecture.md §8.7): this node, the live nodes, the leases it holds. */
export interface StatusCluster {
  node: string;
  redis: "reachable" | "unreachable";
  nodes: { id: string; advertise?: string }[];
  /** Accounts whose lease this node holds (their account sessions run here). */
  leases: string[];
  /** Node-to-node forwarding since start: sessions sent to their owner, taken from other nodes, links refused, forwards that failed. */
  forwarded?: { out: number; in: number; refused: number; failed: number };
}

/** What the status reads of the cluster membership (ProxyServer.clusterStatus). */
export interface StatusClusterSource {
  readonly nodeId: string;
  readonly redisReachable: boolean;
  readonly knownNodes: readonly { id: string; advertise: string | undefined }[];
  accounts(): string[];
  readonly forwarded?: { out: number; in: number; refused: number; failed: number } | undefined;
}

export interface Status {
  version: string;
  pid: number;
  uptimeSeconds: number;
  connections: { total: number; byState: Record<string, number>; unbound: StatusSession[] };
  /** XEP-0198 sessions whose connection dropped, waiting to be resumed (listed under their account). */
  hibernating: number;
  accounts: StatusAccount[];
  cluster?: StatusCluster;
}

/** The parts of the running server the status reads (ProxyServer satisfies this). */
export interface StatusSource {
  readonly sessions: Iterable<{
    readonly id: string;
    readonly transport: string;
    readonly state: string;
    readonly jid: string | undefined;
    readonly startedAt: number;
    readonly mucPassThrough?: boolean;
  }>;
  /** XEP-0198 sessions without a connection, waiting for a resume (docs/architecture.md §8.4). */
  readonly hibernating?: Iterable<{
    readonly connId: string;
    readonly transport: string;
    readonly jid: string | undefined;
    readonly startedAt: number;
    readonly resumeDeadline: number | undefined;
    readonly mucPassThrough?: boolean;
  }>;
  readonly clusterStatus?: StatusClusterSource | undefined;
  readonly accounts?: {
    all(): Iterable<{
      readonly bare: string;
      readonly accountSessionJid: string | undefined;
      /** up / opening / down as the hub sees it (AccountHub.accountSessionState). */
      readonly accountSessionState: string;
      readonly stats: StatusAccount["stats"];
      readonly rooms: { rooms(): RoomSnapshot[] };
    }>;
  } | undefined;
}

export function buildStatus(src: StatusSource, info: { version: string; startedAt: number }, now = Date.now()): Status {
  const byState: Record<string, number> = {};
  const byAccount = new Map<string, StatusSession[]>();
  const unbound: StatusSession[] = [];
  let total = 0;
  for (const s of src.sessions) {
    total++;
    byState[s.state] = (byState[s.state] ?? 0) + 1;
    const entry: StatusSession = { id: s.id, transport: s.transport, state: s.state, connectedSeconds: Math.round((now - s.startedAt) / 1000) };
    if (s.mucPassThrough === true) entry.mucPassThrough = true;
    if (s.jid === undefined) {
      unbound.push(entry);
      continue;
    }
    entry.jid = s.jid;
    const bare = rawBare(s.jid).toLowerCase();
    const list = byAccount.get(bare) ?? [];
    list.push(entry);
    byAccount.set(bare, list);
  }
  let hibernating = 0;
  for (const h of src.hibernating ?? []) {
    if (h.jid === undefined) continue;
    hibernating++;
    const entry: StatusSession = { id: h.connId, transport: h.transport, state: "hibernating", jid: h.jid,
      connectedSeconds: Math.round((now - h.startedAt) / 1000) };
    if (h.mucPassThrough === true) entry.mucPassThrough = true;
    if (h.resumeDeadline !== undefined) entry.resumeWithinSeconds = Math.max(0, Math.round((h.resumeDeadline - now) / 1000));
    const bare = rawBare(h.jid).toLowerCase();
    const list = byAccount.get(bare) ?? [];
    list.push(entry);
    byAccount.set(bare, list);
  }
  const accounts: StatusAccount[] = [];
  for (const a of src.accounts?.all() ?? []) {
    const accountSession: StatusAccount["accountSession"] = { state: a.accountSessionState };
    if (a.accountSessionJid !== undefined) accountSession.jid = a.accountSessionJid;
    accounts.push({
      jid: a.bare,
      accountSession,
      sessions: byAccount.get(a.bare) ?? [],
      rooms: a.rooms.rooms().map((r) => {
        const room: StatusRoom = {
          room: r.room, nick: r.nick, state: r.state, upstreamJoined: r.upstreamJoined,
          sessions: r.sessions, waiting: r.waiting, occupants: r.occupants, buffered: r.buffered, source: r.source,
        };
        if (r.subject !== undefined) room.subject = r.subject;
        if (r.idleSince !== undefined) room.idleSeconds = Math.round((now - r.idleSince) / 1000);
        return room;
      }),
      stats: { ...a.stats },
    });
    byAccount.delete(a.bare);
  }
  // bound sessions of accounts the account layer does not hold: MUC pass-through sessions (SCRAM relayed)
  for (const [bare, sessions] of byAccount) {
    accounts.push({ jid: bare, accountSession: { state: "down" }, sessions, rooms: [], stats: { fannedOut: 0, fromRoom: 0, toRoom: 0, reconnects: 0 } });
  }
  accounts.sort((x, y) => x.jid.localeCompare(y.jid));
  const c = src.clusterStatus;
  return {
    version: info.version,
    pid: process.pid,
    uptimeSeconds: Math.round((now - info.startedAt) / 1000),
    connections: { total, byState, unbound },
    hibernating,
    accounts,
    ...(c ? { cluster: { node: c.nodeId, redis: c.redisReachable ? "reachable" : "unreachable",
      nodes: c.knownNodes.map((n) => (n.advertise !== undefined ? { id: n.id, advertise: n.advertise } : { id: n.id })),
      leases: c.accounts().sort(), ...(c.forwarded ? { forwarded: { ...c.forwarded } } : {}) } } : {}),
  };
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, "0")}h`;
}

/** Human-readable status, one fact per line, ending with a newline. */
export function formatStatus(st: Status): string {
  const lines: string[] = [];
  const states = Object.entries(st.connections.byState).map(([k, v]) => `${v} ${k}`).join(", ");
  lines.push(`minimix-proxy ${st.version} (pid ${st.pid}), up ${duration(st.uptimeSeconds)}`);
  lines.push(`connections: ${st.connections.total}${states ? ` (${states})` : ""}`);
  if (st.connections.unbound.length > 0) {
    lines.push(`  not yet bound: ${st.connections.unbound.map((s) => `#${s.id} ${s.transport} ${s.state} ${duration(s.connectedSeconds)}`).join("; ")}`);
  }
  if (st.cluster) {
    const c = st.cluster;
    lines.push(`cluster: node ${c.node}, Redis ${c.redis}, ${c.nodes.length} live node${c.nodes.length === 1 ? "" : "s"} (${c.nodes.map((n) => n.id + (n.advertise ? ` at ${n.advertise}` : "")).join(", ")})`);
    lines.push(`  account leases held here: ${c.leases.length}${c.leases.length > 0 ? ` (${c.leases.join(", ")})` : ""}`);
    const f = c.forwarded;
    lines.push(f ? `  forwarded sessions since start: ${f.out} to their owner, ${f.in} from other nodes (${f.refused} refused, ${f.failed} failed)` : "  forwarding: off (no cluster-advertise and cluster-secret-file)");
  }
  if (st.hibernating > 0) lines.push(`hibernating sessions (XEP-0198, waiting for their client to resume): ${st.hibernating}`);
  lines.push(`accounts: ${st.accounts.length}`);
  for (const a of st.accounts) {
    lines.push("");
    lines.push(`account ${a.jid}`);
    lines.push(`  account session: ${a.accountSession.state}${a.accountSession.jid ? ` as ${a.accountSession.jid}` : ""}` +
      ` (room stanzas received ${a.stats.fromRoom}, delivered ${a.stats.fannedOut}, sent ${a.stats.toRoom}, reconnects ${a.stats.reconnects})`);
    lines.push(`  sessions: ${a.sessions.length}`);
    for (const s of a.sessions) {
      const resume = s.resumeWithinSeconds !== undefined ? `, resume within ${duration(s.resumeWithinSeconds)}` : "";
      const pass = s.mucPassThrough ? "  MUC passes through (SCRAM relayed: no record for the account yet)" : "";
      lines.push(`    ${s.jid ?? `#${s.id}`}  ${s.transport}  ${s.state}${resume}  connected ${duration(s.connectedSeconds)}${pass}`);
    }
    lines.push(`  rooms: ${a.rooms.length}`);
    for (const r of a.rooms) {
      const joined = r.state === "joined" ? (r.upstreamJoined ? "joined" : "rejoining") : "joining";
      const idle = r.idleSeconds !== undefined ? `, idle ${duration(r.idleSeconds)} (no session in it)` : "";
      const from = r.source === "bookmark" ? "from bookmarks" : "from client joins";
      lines.push(`    ${r.room} as ${r.nick} (${from}): ${joined}, ${r.occupants} other occupant${r.occupants === 1 ? "" : "s"}, ${r.buffered} buffered message${r.buffered === 1 ? "" : "s"}${idle}`);
      if (r.subject !== undefined) lines.push(`      subject: ${JSON.stringify(r.subject)}`);
      lines.push(`      sessions in room: ${r.sessions.length === 0 ? "none" : r.sessions.join(", ")}`);
      if (r.waiting.length > 0) lines.push(`      waiting for the join: ${r.waiting.join(", ")}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
