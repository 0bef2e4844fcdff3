/**
 * Where a stopping cluster node sends its clients (docs/architecture.md §8.7 "Rolling restart"): the
 * RFC 6120 §4.9.3.19 `<see-other-host/>` stream error names one live peer, chosen per account by
 * rendezvous (highest-random-weight) hashing of the bare JID over the peers that published a client
 * address. Every session of one account, on any stopping node, gets the same peer, so they land
 * together on one node and none of them needs forwarding there; when a peer joins or leaves, only
 * the accounts that hashed to it move.
 */
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";

/** The client transports a see-other-host can name a port for (WebSocket has its own redirect, RFC 7395 §3.6.1). */
export type RedirectTransport = "starttls" | "direct-tls";

/** Where clients reach a node directly (--cluster-client-address), as published with its heartbeat. */
export interface ClientAddress {
  host: string;
  /** The node's port for each transport it listens on. */
  ports: Partial<Record<RedirectTransport, number>>;
}

export interface RedirectPeer {
  id: string;
  client: ClientAddress | undefined;
}

/** The weight of `nodeId` for `account`: the first 8 bytes of SHA-256 over both, as a bigint. */
function weight(account: string, nodeId: string): bigint {
  return createHash("sha256").update(nodeId).update("\0").update(account.toLowerCase()).digest().readBigUInt64BE(0);
}

/**
 * The peer for `account` among `peers` that published a client address: the highest weight (ties,
 * which need a SHA-256 collision of 64 bits, go to the smaller id). Undefined when none did.
 */
export function choosePeer<P extends RedirectPeer>(account: string, peers: readonly P[]): P | undefined {
  let best: P | undefined;
  let bestWeight = -1n;
  for (const p of peers) {
    if (p.client === undefined) continue;
    const w = weight(account, p.id);
    if (w > bestWeight || (w === bestWeight && best !== undefined && p.id < best.id)) {
      best = p;
      bestWeight = w;
    }
  }
  return best;
}

/**
 * The character data of `<see-other-host/>`: "domainpart:port", an IPv6 literal in brackets
 * (RFC 6120 §4.9.3.19: "[IPv6-ADDR] ... enclosing the IPv6 address in square brackets").
 */
export function seeOtherHostText(host: string, port: number): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return `${isIPv6(bare) ? `[${bare}]` : bare}:${port}`;
}

/**
 * The address to send a client of `account` on `transport` to, or undefined (then `<system-shutdown/>`):
 * no peer published a client address, or the chosen peer has no listener of the client's transport.
 * The port is the one of the client's own transport: RFC 6120 §4.9.3.19 has the client apply the same
 * policies to the new host as to the original connection, and clients keep their connection method
 * (a direct-TLS client opens TLS at once on the named port, as @xmpp/connection does with xmpps:).
 */
export function redirectFor(account: string, transport: RedirectTransport, peers: readonly RedirectPeer[]): string | undefined {
  const peer = choosePeer(account, peers);
  const port = peer?.client?.ports[transport];
  return peer && port !== undefined ? seeOtherHostText(peer.client!.host, port) : undefined;
}
