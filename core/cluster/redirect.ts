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
import { escapeXML } from "../xml/element.js";
import { NS_FRAMING } from "../xml/ns.js";

/** The client transports a see-other-host can name a port for (WebSocket has its own redirect, RFC 7395 §3.6.1). */
export type RedirectTransport = "starttls" | "direct-tls";

/** Where clients reach a node directly (--cluster-client-address), as published with its heartbeat. */
export interface ClientAddress {
  host: string;
  /** The node's port for each transport it listens on. */
  ports: Partial<Record<RedirectTransport, number>>;
  /** Its WebSocket endpoint (wss://host:port/path), for RFC 7395 §3.6.1 `see-other-uri`; absent from a node without a wss listener. */
  ws?: string;
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

/**
 * The WebSocket URI to send a WebSocket client of `account` to (RFC 7395 §3.6.1), or undefined (then
 * `<system-shutdown/>`): the same peer as `redirectFor` chooses for the account's TCP sessions, if it
 * published one.
 */
export function redirectUriFor(account: string, peers: readonly RedirectPeer[]): string | undefined {
  return choosePeer(account, peers)?.client?.ws;
}

/** The wss URI a node with a wss listener on `port` publishes (an IPv6 literal in brackets, RFC 3986 §3.2.2). */
export function wsUri(host: string, port: number, path: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return `wss://${isIPv6(bare) ? `[${bare}]` : bare}:${port}${path.startsWith("/") ? path : `/${path}`}`;
}

/**
 * RFC 7395 §3.6.1: the server's `<close/>` with `see-other-uri`, after which it closes the WebSocket;
 * the client connects to that URI (never from wss to ws).
 */
export function seeOtherUriClose(uri: string): string {
  return `<close xmlns='${NS_FRAMING}' see-other-uri='${escapeXML(uri)}'/>`;
}
