/**
 * Both ends of node-to-node forwarding for one node (docs/architecture.md §8.7): the forwarding side
 * (a client on this node whose account another live node owns) and the owner's listener on
 * --cluster-advertise. The wire protocol is proxy/cluster/forward.ts.
 */
import * as tls from "node:tls";
import type { Logger } from "../log.js";
import { CHANNEL_BINDING_TYPES, type ChannelBindingType } from "../../core/sasl/channel-binding.js";
import type { LeaseKeeper } from "./leases.js";
import { TcpRelay } from "./relay.js";
import { answer, FORWARD_VERSION, openLink, readLine, verifyRequest, type ForwardHeader } from "./forward.js";

const LINK_TIMEOUT_MS = 5000;

export interface ForwardRequest {
  account: string;
  domain: string;
  ip: string;
  channelBindings: ReadonlyMap<string, Buffer>;
  /** How the client connected here (carried to the owner for a later <see-other-host/>). */
  transport?: "starttls" | "direct-tls";
  /** The client is on WebSocket (forward.ts ForwardHeader.websocket). */
  websocket?: true;
}

/**
 * What the forwarding side hands over once the owner accepted: the client's TLS socket, piped to the
 * link as it is (TCP clients), or a splice that translates between the client's framing and the link's
 * byte stream (WebSocket clients, ws-splice.ts).
 */
export type ReleasedClient = tls.TLSSocket | { splice(link: tls.TLSSocket, onClosed: () => void): void; stop(to: string | undefined): void };

/** A session this node forwards to its owner, as this node's SIGTERM sees it (docs/architecture.md §8.7). */
export interface OutgoingForward {
  readonly account: string;
  /** The owner's node id. */
  readonly owner: string;
  readonly transport: "starttls" | "direct-tls" | "websocket";
  /**
   * Ends the client's stream between two of the owner's elements: `<see-other-host>` (TCP, "host:port")
   * or `<close see-other-uri/>` (WebSocket, a wss URI) naming `to`, else `<system-shutdown/>`.
   */
  stop(to: string | undefined): void;
}

/** A forwarded session as the owner adopts it. */
export interface ForwardedClient {
  account: string;
  ip: string;
  from: string;
  channelBindings: Map<ChannelBindingType, Buffer>;
  /** How the client connected to the forwarding node; undefined from a node of an earlier version. */
  transport?: "starttls" | "direct-tls" | undefined;
  /** Its client is on WebSocket (RFC 7395 redirect at SIGTERM); only from a node that says so. */
  websocket?: boolean;
}

export class Forwarder {
  readonly stats = { out: 0, in: 0, refused: 0, failed: 0 };
  /** The sessions this node forwards now (until their client or link goes). */
  private readonly outgoing = new Set<OutgoingForward>();

  get forwarding(): readonly OutgoingForward[] {
    return [...this.outgoing];
  }

  constructor(private readonly keeper: LeaseKeeper, private readonly secret: Buffer, private readonly log: Logger) {}

  /**
   * If another live node owns the account: opens a link to it; once the owner accepted, `release` takes
   * the client's connection from its stream, the `replay` bytes go first, then both ways are piped (or
   * spliced, for a WebSocket client). True
   * when the session is forwarded; false when it is to be served here (no other owner, Redis or the
   * owner unreachable, the owner refused).
   */
  async tryForward(req: ForwardRequest, replay: Buffer, release: () => ReleasedClient | undefined): Promise<boolean> {
    let owner;
    try {
      // no owner yet: this node claims the account, so its later sessions elsewhere come here
      owner = await this.keeper.ownerElsewhere(req.account) ?? await this.keeper.claim(req.account);
    } catch (err) {
      this.log.info({ account: req.account, reason: (err as Error).message }, "cluster: owner unknown (Redis did not answer): serving the session here");
      return false;
    }
    if (!owner?.advertise) return false;
    const address = parseAddress(owner.advertise);
    if (!address) return false;
    const header: ForwardHeader = { v: FORWARD_VERSION, account: req.account, domain: req.domain, ip: req.ip, from: this.keeper.nodeId,
      cb: Object.fromEntries([...req.channelBindings].map(([k, v]) => [k, v.toString("base64")])), ...(req.transport ? { transport: req.transport } : {}),
      ...(req.websocket ? { websocket: true as const } : {}) };
    let link: tls.TLSSocket;
    try {
      link = await openLink(address, owner.id, header, this.secret, LINK_TIMEOUT_MS);
    } catch (err) {
      this.stats.failed++;
      this.log.warn({ account: req.account, owner: owner.id, reason: (err as Error).message, code: "FORWARD_FAILED" }, "cluster: could not forward to the account's owner: serving the session here");
      return false;
    }
    const client = release();
    if (!client) {
      link.destroy();
      return true; // the client went meanwhile: nothing left to serve
    }
    this.stats.out++;
    link.write(replay);
    const ownerId = owner.id;
    const done = (): void => void this.outgoing.delete(out);
    let out: OutgoingForward;
    if ("splice" in client) {
      out = { account: req.account, owner: ownerId, transport: "websocket", stop: (to) => client.stop(to) };
      this.outgoing.add(out);
      client.splice(link, done);
    } else {
      const relay = new TcpRelay(client, link, this.log, done);
      out = { account: req.account, owner: ownerId, transport: req.transport ?? "direct-tls", stop: (to) => relay.stop(to) };
      this.outgoing.add(out);
      relay.start();
    }
    this.log.info({ account: req.account, owner: owner.id, code: "FORWARDED" }, "cluster: session forwarded to the account's owner node");
    return true;
  }

  /** The owner's side of one incoming link: verified, checked against our lease, answered. */
  async accept(s: tls.TLSSocket, nodeId: string, adopt: (s: tls.TLSSocket, client: ForwardedClient) => void): Promise<void> {
    s.on("error", () => undefined);
    let h: ForwardHeader;
    try {
      h = verifyRequest(await readLine(s, LINK_TIMEOUT_MS), this.secret, s);
    } catch (err) {
      this.log.warn({ ip: s.remoteAddress, reason: (err as Error).message, code: "FORWARD_REFUSED" }, "cluster: node-to-node connection refused");
      this.stats.refused++;
      s.destroy();
      return;
    }
    const ok = this.keeper.holds(h.account);
    answer(s, this.secret, { v: FORWARD_VERSION, ok, node: nodeId });
    if (!ok) {
      this.stats.refused++;
      this.log.info({ account: h.account, from: h.from, code: "FORWARD_REFUSED" }, "cluster: forwarded session refused: this node does not hold the account's lease");
      s.end();
      return;
    }
    this.stats.in++;
    this.log.info({ account: h.account, from: h.from }, "cluster: forwarded session accepted");
    adopt(s, { account: h.account, ip: h.ip, from: h.from, transport: h.transport, websocket: h.websocket === true, channelBindings: new Map(CHANNEL_BINDING_TYPES.filter((t) => typeof h.cb[t] === "string").map((t) => [t, Buffer.from(h.cb[t]!, "base64")])) });
    s.resume();
  }
}

function parseAddress(a: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(a);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}
