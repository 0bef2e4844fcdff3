import * as net from "node:net";
import * as tls from "node:tls";
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import { readFileSync } from "node:fs";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import type { OutputHolder, ProxyContext } from "./context.js";
import { BufferBudget } from "../core/buffer-budget.js";
import { offeredMechanisms, openPreAuth, type UpstreamTarget } from "./upstream/connect.js";
import { upstreamTarget as targetFor } from "./upstream/target.js";
import { ClientStream, type ConnectionFactory, type Transport } from "./downstream/client-stream.js";
import { Resumption } from "./downstream/resumption.js";
import type { BoundSession } from "./downstream/bound-session.js";
import { WebSocketConnection } from "./websocket/connection.js";
import { attachWebSocket } from "./websocket/listener.js";
import { CertStore } from "../tls/cert-store.js";
import { ensureDevCert } from "../tls/dev-cert.js";
import { AccountRegistry } from "./account/registry.js";
import { FileRoomMarkStore } from "./state/room-marks.js";
import { readProxyHeader, socketWithPrefix, sourceFilter } from "./proxy-protocol-reader.js";
import { metrics } from "./metrics.js";
import { SaslOffer } from "./downstream/sasl-offer.js";
import { CredentialKeeper } from "./credentials/keeper.js";
import { FileCredentialStore } from "./credentials/file-store.js";
import type { CredentialStore } from "./credentials/store.js";
import { redactedUrl, startCluster, type Cluster } from "./cluster/cluster.js";
import { RedisCredentialStore, RedisRoomMarkStore } from "./cluster/redis-stores.js";
import { Forwarder, type ForwardedClient } from "./cluster/forwarder.js";
import { parseSecret } from "./cluster/forward.js";
import type { LeaseKeeper } from "./cluster/leases.js";
import { randomBytes } from "node:crypto";
import { streamError, streamHeader } from "../core/xml/stream.js";
import { redirectFor, redirectUriFor, wsUri, type RedirectPeer } from "../core/cluster/redirect.js";

export interface BoundListener {
  transport: Transport;
  host: string;
  port: number;
  /** WebSocket listeners: wss (true) or plain loopback ws (false), and the path. */
  tls?: boolean;
  path?: string;
}


/**
 * The composition root: certificates, listeners, the set of live sessions, reload and shutdown.
 */
/** How long start() waits for the upstream's SASL mechanisms (probeSasl). */
const PROBE_WAIT_MS = 3000;

export class ProxyServer {
  readonly sessions = new Set<ClientStream>();
  private readonly servers: { server: net.Server | tls.Server; transport: Transport }[] = [];
  private certs!: CertStore;
  private connSeq = 0;
  private upstreamCa: Buffer | undefined;
  private stopping = false;
  /** Connections not authenticated yet, per remote address, and their total (--max-unauthenticated*). */
  private readonly unauthByIp = new Map<string, number>();
  private readonly unauthenticated = new Map<ClientStream, string>();
  /** Connections refused by those limits, for logs and tests. */
  readonly refused = { perIp: 0, total: 0 };
  accounts!: AccountRegistry;
  /** --max-buffered-bytes: unread output of all clients together. */
  readonly buffers: BufferBudget<OutputHolder>;
  /** XEP-0198 resumption ids and the sessions hibernating without a connection. */
  readonly resumption = new Resumption<BoundSession>();
  /** The dev certificate in use when none was configured. */
  devCertFile: string | undefined;

  /** --client-sasl, with what each domain's server offers (docs/architecture.md §3.5). */
  readonly saslOffer: SaslOffer;
  private credentialStore: CredentialStore | undefined;
  private keeper!: CredentialKeeper;
  /** --cluster-redis (docs/architecture.md §8.7); undefined for a single node. */
  cluster: Cluster | undefined;
  /** Node-to-node forwarding (--cluster-advertise with --cluster-secret-file), and its listener. */
  forwarder: Forwarder | undefined;
  private forwardServer: tls.Server | undefined;

  /** `opts.credentials`: the store of SCRAM records; by default the file store under --state-dir, opened by start(). */
  constructor(readonly config: Config, readonly log: Logger, opts: { credentials?: CredentialStore } = {}) {
    this.buffers = new BufferBudget<OutputHolder>(config.limits.maxBufferedBytes, (h) => h.pendingOutput);
    this.saslOffer = new SaslOffer(config.clientSasl);
    this.credentialStore = opts.credentials;
  }

  /** The cluster membership, for status and metrics; undefined for a single node. */
  get clusterStatus(): (Pick<LeaseKeeper, "nodeId" | "redisReachable" | "knownNodes" | "heldCount" | "stats"> & { accounts(): string[]; forwarded: Forwarder["stats"] | undefined }) | undefined {
    const k = this.cluster?.keeper;
    if (!k) return undefined;
    return { nodeId: k.nodeId, redisReachable: k.redisReachable, knownNodes: k.knownNodes, heldCount: k.heldCount, stats: k.stats,
      accounts: () => k.accounts(), forwarded: this.forwarder?.stats };
  }

  /** Sessions whose connection dropped, waiting for a resume (status). */
  get hibernating(): BoundSession[] {
    return this.resumption.hibernating();
  }

  get hibernatingCount(): number {
    return this.resumption.hibernatingCount;
  }

  /** Bytes of unread client output counted against --max-buffered-bytes (metrics). */
  get bufferedBytes(): number {
    return this.buffers.total;
  }

  private context(): ProxyContext {
    const domains = new Set(this.config.domains.map((d) => d.toLowerCase()));
    const cfg = this.config;
    const upstreamTarget = (domain: string): UpstreamTarget => targetFor(cfg, domain, this.upstreamCa);
    this.accounts = new AccountRegistry({
      target: upstreamTarget,
      resourcePrefix: cfg.accountResourcePrefix,
      rooms: { historyLimit: cfg.roomHistory, historyBytes: cfg.roomHistoryBytes, maxHeldPms: cfg.maxHeldPms, maxHeldPmBytes: cfg.maxHeldPmBytes, maxOutboxStanzas: cfg.maxRoomOutbox, maxOutboxBytes: cfg.maxRoomOutboxBytes, maxPendingIqs: cfg.maxPendingIqs, maxAccountOutboxStanzas: cfg.maxAccountOutbox, maxAccountOutboxBytes: cfg.maxAccountOutboxBytes, idleLeaveMs: cfg.roomIdleLeaveMs, awayPresence: cfg.awayPresence, joinTimeoutMs: cfg.joinTimeoutMs },
      maxRooms: cfg.limits.maxRoomsPerAccount,
      push: cfg.push,
      accountSession: cfg.accountSession,
      log: this.log,
      ...(cfg.bookmarks === "follow" ? { bookmarks: { marks: this.cluster ? new RedisRoomMarkStore(this.cluster.redis) : new FileRoomMarkStore(cfg.stateDir) } } : {}),
      ...(this.cluster ? { cluster: this.cluster.gate } : {}),
    });
    return {
      config: cfg,
      log: this.log,
      certs: this.certs,
      serves: (d) => domains.has(d),
      nextConnId: () => (++this.connSeq).toString(36),
      upstreamTarget,
      accounts: this.accounts,
      buffers: this.buffers,
      resumption: this.resumption,
      credentials: this.keeper,
      saslOffer: this.saslOffer,
      forward: this.forwarder,
    };
  }

  private loadCerts(): CertStore {
    if (this.config.certs.length > 0) return new CertStore(this.config.certs);
    const dev = ensureDevCert(this.config.stateDir, this.config.domains);
    this.devCertFile = dev.certFile;
    this.log.warn({ certFile: dev.certFile, generated: dev.generated, domains: this.config.domains },
      "no certificate configured: using a self-signed development certificate (clients must trust it explicitly)");
    return new CertStore([{ certFile: dev.certFile, keyFile: dev.keyFile }]);
  }

  /**
   * --client-sasl auto mirrors the server's SCRAM hashes (docs/architecture.md §3.5): each domain's
   * upstream is asked for its SASL mechanisms before the listeners open, for at most PROBE_WAIT_MS
   * (an upstream that is down must not hold the start; every later upstream login updates them).
   */
  private async probeSasl(): Promise<void> {
    if (this.config.clientSasl !== "auto") return;
    const probes = this.config.domains.map(async (domain) => {
      try {
        const pre = await openPreAuth(targetFor(this.config, domain, this.upstreamCa));
        this.saslOffer.learn(domain, offeredMechanisms(pre.features));
        pre.conn.end();
        this.log.debug({ domain, mechanisms: this.saslOffer.mechanisms(domain) }, "SASL mechanisms to offer clients");
      } catch (err) {
        this.log.info({ domain, reason: (err as Error).message }, "upstream SASL mechanisms not known yet: offering every mechanism until a login sees them");
      }
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(probes), new Promise<void>((r) => (timer = setTimeout(r, PROBE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  async start(): Promise<BoundListener[]> {
    this.certs = this.loadCerts();
    // a cluster member that cannot reach Redis does not start: it could not keep one account session per account
    if (this.config.cluster) {
      const cc = this.config.cluster;
      // the secret first: a node that cannot read it must not join and take leases it could not serve
      const secret = cc.secretFile !== undefined ? parseSecret(readFileSync(cc.secretFile)) : undefined;
      this.cluster = await startCluster(cc, this.config.accountResourcePrefix, this.log,
        // an account the registry holds (sessions, rooms, a wanted account session) is in use
        (account) => this.accounts?.find(account) !== undefined);
      if (secret && cc.advertise) this.forwarder = new Forwarder(this.cluster.keeper, secret, this.log.child({ node: cc.nodeId }));
    }
    // a cluster shares its credential records in Redis (docs/architecture.md §8.7); a single node keeps them under --state-dir.
    // A damaged or unreadable file store stops the start (CredentialStoreError with its code), not a login later
    this.credentialStore ??= this.cluster ? new RedisCredentialStore(this.cluster.redis, `redis:${redactedUrl(this.config.cluster!.redisUrl)}`)
      : (await FileCredentialStore.open(this.config.stateDir)).store;
    this.keeper = new CredentialKeeper(this.credentialStore, { log: this.log });
    if (this.config.upstreamCa) this.upstreamCa = readFileSync(this.config.upstreamCa);
    if (this.config.upstreamInsecure) {
      this.log.warn("upstream certificate verification is DISABLED (--upstream-insecure): anyone on the path can read passwords");
    }
    const ctx = this.context();
    await this.probeSasl();
    if (this.forwarder) await this.startForwarding(ctx, this.forwarder);
    const onConnection = (transport: Transport) => (socket: net.Socket, peer?: string): void => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      socket.on("error", () => undefined); // errors are handled by the session; never crash on a reset
      metrics.connectionAccepted(transport);
      const ip = peer ?? socket.remoteAddress ?? "unknown";
      if (this.refuseUnauthenticated(socket, transport, ip)) return;
      this.adopt(ctx, socket, transport, ip);
    };
    const bound: BoundListener[] = [];
    if (this.config.proxyProtocol) return this.publishClientAddress([...await this.startProxied(onConnection), ...await this.startWebSockets(ctx)]);
    for (const addr of this.config.listen) {
      const server = net.createServer(onConnection("starttls"));
      bound.push(await this.listen(server, addr, "starttls"));
    }
    for (const addr of this.config.listenTls) {
      // XEP-0368: direct TLS with ALPN "xmpp-client"
      // a handshake that never finishes is cut after the auth timeout (Node's own default is 120 s)
      const server = tls.createServer({ ...this.certs.serverOptions(), ALPNProtocols: ["xmpp-client"],
        handshakeTimeout: this.config.limits.authTimeoutMs }, onConnection("direct-tls"));
      server.on("tlsClientError", (err, s) => {
        this.log.info({ ip: s.remoteAddress, transport: "direct-tls", reason: err.message }, "TLS handshake failed");
        // with a listener for this event, Node leaves the socket open (e.g. after handshakeTimeout): close it here
        s.destroy();
        metrics.tlsHandshakeFailed("direct-tls");
      });
      bound.push(await this.listen(server, addr, "direct-tls"));
    }
    bound.push(...await this.startWebSockets(ctx));
    return this.publishClientAddress(bound);
  }

  /**
   * --cluster-client-address (docs/architecture.md §8.7): published with the heartbeat once the listeners
   * are bound, with this node's port for each transport (the flag's PORT for STARTTLS when given).
   */
  private publishClientAddress(bound: BoundListener[]): BoundListener[] {
    const ca = this.config.cluster?.clientAddress;
    if (ca && this.cluster) {
      const starttls = ca.port ?? bound.find((b) => b.transport === "starttls")?.port;
      const direct = bound.find((b) => b.transport === "direct-tls")?.port;
      const ports = { ...(starttls !== undefined ? { starttls } : {}), ...(direct !== undefined ? { "direct-tls": direct } : {}) };
      // RFC 7395 §3.6.1 see-other-uri: the first wss listener; a plain ws listener sits behind a
      // TLS-terminating proxy whose public URI this node cannot know (and wss clients never follow ws)
      const wss = bound.find((b) => b.transport === "websocket" && b.tls === true);
      const ws = wss && this.config.websocket ? wsUri(ca.host, wss.port, wss.path ?? this.config.websocket.path) : undefined;
      this.cluster.keeper.publishClientAddress({ host: ca.host, ports, ...(ws ? { ws } : {}) });
      this.log.info({ host: ca.host, ...ports, ...(ws ? { ws } : {}) }, "cluster: client address published");
    }
    return bound;
  }

  /**
   * The live other nodes that published a client address, for <see-other-host/> at SIGTERM; none when
   * Redis does not answer within a second (the clients then get <system-shutdown/>).
   */
  private async redirectPeers(): Promise<RedirectPeer[]> {
    const k = this.cluster?.keeper;
    if (!k) return [];
    await k.withdraw();
    let timer: NodeJS.Timeout | undefined;
    const nodes = await Promise.race([k.nodes().catch(() => []), new Promise<[]>((r) => (timer = setTimeout(() => r([]), 1000)))]);
    clearTimeout(timer);
    return nodes.filter((n) => n.id !== k.nodeId && n.client !== undefined).map((n) => ({ id: n.id, client: n.client }));
  }

  /** The owner's end of node-to-node forwarding, on --cluster-advertise (docs/architecture.md §8.7). */
  private async startForwarding(ctx: ProxyContext, fwd: Forwarder): Promise<void> {
    const cc = this.config.cluster!;
    const addr = cc.advertise!;
    const server = tls.createServer({ ...this.certs.serverOptions(), minVersion: "TLSv1.3", handshakeTimeout: 10_000 }, (s) => {
      if (this.stopping) return void s.destroy();
      void fwd.accept(s, cc.nodeId, (sock, client) => this.adoptForwarded(ctx, sock, client));
    });
    server.on("tlsClientError", (err, s) => {
      this.log.info({ ip: s.remoteAddress, reason: err.message }, "cluster: node-to-node TLS handshake failed");
      s.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(addr.port, addr.host, () => (server.off("error", reject), resolve()));
    });
    this.forwardServer = server;
    this.log.info({ host: addr.host, port: addr.port }, "cluster: listening for forwarded sessions");
  }

  /** A session another node forwarded: served as if its client were connected here. */
  private adoptForwarded(ctx: ProxyContext, socket: tls.TLSSocket, client: ForwardedClient): void {
    socket.on("error", () => undefined);
    const session = new ClientStream(ctx, socket, "direct-tls", {
      closed: (s) => {
        this.sessions.delete(s);
        this.authenticatedOrGone(s);
      },
      authenticated: (s) => this.authenticatedOrGone(s),
    }, client.ip, client);
    this.sessions.add(session);
    this.unauthenticated.set(session, client.ip);
    this.unauthByIp.set(client.ip, (this.unauthByIp.get(client.ip) ?? 0) + 1);
  }

  /** A new client connection becomes a session, counted as unauthenticated until SASL succeeds. */
  private adopt(ctx: ProxyContext, conn: net.Socket | ConnectionFactory, transport: Transport, ip: string): void {
    const session = new ClientStream(ctx, conn, transport, {
      closed: (s) => {
        this.sessions.delete(s);
        this.authenticatedOrGone(s);
      },
      authenticated: (s) => this.authenticatedOrGone(s),
    }, ip);
    this.sessions.add(session);
    this.unauthenticated.set(session, ip);
    this.unauthByIp.set(ip, (this.unauthByIp.get(ip) ?? 0) + 1);
  }

  /**
   * XMPP over WebSocket (RFC 7395, docs/websocket.md): wss with the XMPP certificates (SNI), and
   * plain ws on loopback for a TLS-terminating reverse proxy. Streams are the same
   * ClientStream, starting after TLS; PROXY protocol does not apply here (a reverse proxy
   * reports the client in X-Forwarded-For, trusted on the loopback listener only).
   */
  private async startWebSockets(ctx: ProxyContext): Promise<BoundListener[]> {
    const ws = this.config.websocket;
    if (!ws) return [];
    const { maxStanzaSize } = this.config.limits;
    const hooks = {
      refuse: (ip: string): string | undefined => {
        if (this.stopping) return "shutting down";
        return this.unauthLimit("websocket", ip)?.text;
      },
      accept: (socket: import("ws").WebSocket, raw: Duplex, ip: string): void => {
        if (this.stopping) return void socket.terminate();
        metrics.connectionAccepted("websocket");
        const factory: ConnectionFactory = (handler, opts) => new WebSocketConnection(socket, raw, handler, opts);
        this.adopt(ctx, factory, "websocket", ip);
      },
      rejected: (ip: string, status: number, reason: string): void => {
        this.log.info({ ip, transport: "websocket", status, reason }, "WebSocket upgrade refused");
      },
    };
    // room for the <open/>/<close/> framing around a maximal stanza; the framer enforces the limit itself
    const maxPayload = maxStanzaSize + 4096;
    // the HTTP upgrade request must arrive within the authentication deadline too
    const httpTimeouts = { headersTimeout: this.config.limits.authTimeoutMs, requestTimeout: this.config.limits.authTimeoutMs };
    const bound: BoundListener[] = [];
    for (const addr of ws.listen) {
      const server = https.createServer({ ...this.certs.serverOptions(), handshakeTimeout: this.config.limits.authTimeoutMs, ...httpTimeouts });
      server.on("tlsClientError", (err, s) => {
        this.log.info({ ip: s.remoteAddress, transport: "websocket", reason: err.message }, "TLS handshake failed");
        s.destroy();
        metrics.tlsHandshakeFailed("websocket");
      });
      attachWebSocket(server, { path: ws.path, maxPayload, trustForwarded: false }, hooks);
      bound.push(await this.listen(server, addr, "websocket", { tls: true, path: ws.path }));
    }
    for (const addr of ws.listenPlain) {
      const server = http.createServer(httpTimeouts);
      attachWebSocket(server, { path: ws.path, maxPayload, trustForwarded: true }, hooks);
      bound.push(await this.listen(server, addr, "websocket", { tls: false, path: ws.path }));
    }
    return bound;
  }

  /**
   * --proxy-protocol: every connection starts with a PROXY v1/v2 header from the load balancer
   * (HAProxy, nginx, sslh); logs and per-IP limits then use the client address it reports.
   * Direct TLS is terminated here by hand (not tls.Server), since the header precedes the handshake.
   */
  private async startProxied(onConnection: (t: Transport) => (s: net.Socket, peer?: string) => void): Promise<BoundListener[]> {
    const timeoutMs = this.config.limits.authTimeoutMs;
    const trusted = sourceFilter(this.config.proxyProtocolFrom);
    const accept = (transport: Transport) => (socket: net.Socket): void => {
      socket.on("error", () => undefined);
      // --proxy-protocol-from: only the load balancers may vouch for a client address; anyone else
      // is closed before a byte is read (no header parsed, no TLS, no stream error to leak anything)
      if (!trusted(socket.remoteAddress)) {
        this.log.warn({ ip: socket.remoteAddress, transport, code: "PROXY_UNTRUSTED_SOURCE" },
          "connection refused: not from a --proxy-protocol-from source");
        metrics.limitBreach("client", "PROXY_UNTRUSTED_SOURCE");
        socket.destroy();
        return;
      }
      readProxyHeader(socket, timeoutMs).then(({ source, rest }) => {
        const peer = source?.address ?? socket.remoteAddress;
        if (transport === "starttls") {
          if (rest.length > 0) socket.unshift(rest);
          onConnection("starttls")(socket, peer);
          socket.resume();
          return;
        }
        const secure = new tls.TLSSocket(socketWithPrefix(socket, rest) as unknown as net.Socket, {
          isServer: true, ...this.certs.serverOptions(), ALPNProtocols: ["xmpp-client"],
        });
        const timer = setTimeout(() => secure.destroy(), timeoutMs);
        secure.once("secure", () => {
          clearTimeout(timer);
          onConnection("direct-tls")(secure, peer);
        });
        secure.once("error", (err) => {
          clearTimeout(timer);
          this.log.info({ ip: peer, transport, reason: err.message }, "TLS handshake failed");
          metrics.tlsHandshakeFailed("direct-tls");
          secure.destroy();
        });
        secure.once("close", () => clearTimeout(timer));
      }, (err: Error) => {
        this.log.info({ ip: socket.remoteAddress, transport, code: "PROXY_HEADER", reason: err.message }, "connection refused: bad PROXY protocol header");
        metrics.limitBreach("client", "PROXY_HEADER");
        socket.destroy();
      });
    };
    const bound: BoundListener[] = [];
    for (const addr of this.config.listen) bound.push(await this.listen(net.createServer(accept("starttls")), addr, "starttls"));
    for (const addr of this.config.listenTls) bound.push(await this.listen(net.createServer(accept("direct-tls")), addr, "direct-tls"));
    return bound;
  }

  private listen(server: net.Server | tls.Server, addr: { host: string; port: number }, transport: Transport,
    extra: { tls?: boolean; path?: string } = {}): Promise<BoundListener> {
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(addr.port, addr.host, () => {
        server.off("error", reject);
        server.on("error", (err) => this.log.error({ err: err.message, transport }, "listener error"));
        this.servers.push({ server, transport });
        const a = server.address() as net.AddressInfo;
        this.log.info({ transport, host: a.address, port: a.port, ...extra }, "listening");
        resolve({ transport, host: a.address, port: a.port, ...extra });
      });
    });
  }

  /**
   * --max-unauthenticated-per-ip / --max-unauthenticated: a connection over either limit gets a
   * stream header and a stream error (policy-violation for one address, resource-constraint for the
   * total; RFC 6120 §4.9.3) and is closed at once, before any TLS or SASL work is spent on it.
   */
  private refuseUnauthenticated(socket: net.Socket, transport: Transport, ip: string): boolean {
    const over = this.unauthLimit(transport, ip);
    if (!over) return false;
    socket.setNoDelay(true);
    socket.end(streamHeader({ from: this.config.domains[0], id: randomBytes(8).toString("hex") }) + streamError(over.condition, over.text));
    const t = setTimeout(() => socket.destroy(), 2000);
    t.unref();
    socket.once("close", () => clearTimeout(t));
    return true;
  }

  /** Whether a new connection from `ip` is over an unauthenticated-connection limit (counted and logged). */
  private unauthLimit(transport: Transport, ip: string): { condition: "policy-violation" | "resource-constraint"; text: string } | undefined {
    const { maxUnauthenticatedPerIp, maxUnauthenticated } = this.config.limits;
    let condition: "policy-violation" | "resource-constraint";
    let code: string;
    if ((this.unauthByIp.get(ip) ?? 0) >= maxUnauthenticatedPerIp) {
      condition = "policy-violation";
      code = "UNAUTH_PER_IP";
      this.refused.perIp++;
    } else if (this.unauthenticated.size >= maxUnauthenticated) {
      condition = "resource-constraint";
      code = "UNAUTH_TOTAL";
      this.refused.total++;
    } else return undefined;
    metrics.limitBreach("client", code);
    this.log.warn({ ip, transport, code, perIp: this.unauthByIp.get(ip) ?? 0, total: this.unauthenticated.size,
      refusedPerIp: this.refused.perIp, refusedTotal: this.refused.total }, "connection refused: too many unauthenticated connections");
    const text = code === "UNAUTH_PER_IP" ? "too many unauthenticated connections from your address" : "too many unauthenticated connections";
    return { condition, text };
  }

  private authenticatedOrGone(s: ClientStream): void {
    const ip = this.unauthenticated.get(s);
    if (ip === undefined) return;
    this.unauthenticated.delete(s);
    const n = (this.unauthByIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.unauthByIp.delete(ip);
    else this.unauthByIp.set(ip, n);
  }

  /** Connections currently counted as unauthenticated (for tests and status). */
  get unauthenticatedCount(): number {
    return this.unauthenticated.size;
  }

  /** SIGHUP: re-read certificates; on failure keep the old ones. Live connections are not touched. */
  reloadCertificates(): boolean {
    try {
      this.certs.reload();
      for (const { server, transport } of this.servers) {
        if (transport === "direct-tls") (server as tls.Server).setSecureContext({ ...this.certs.serverOptions(), ALPNProtocols: ["xmpp-client"] } as tls.SecureContextOptions);
        else if (transport === "websocket" && server instanceof tls.Server) server.setSecureContext(this.certs.serverOptions() as tls.SecureContextOptions);
      }
      this.log.info({ certificates: this.certs.expiry() }, "certificates reloaded");
      return true;
    } catch (err) {
      this.log.error({ reason: (err as Error).message }, "certificate reload failed; keeping the previous certificates");
      return false;
    }
  }

  /**
   * SIGTERM: <system-shutdown/> to every client (a cluster member: <see-other-host/> naming a live peer
   * where it can, docs/architecture.md §8.7), close upstream streams, stop listening.
   */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    for (const { server } of this.servers) server.close();
    this.forwardServer?.close();
    const n = this.sessions.size;
    const peers = await this.redirectPeers();
    let redirected = 0;
    for (const s of [...this.sessions]) {
      const r = peers.length > 0 ? s.redirectable : undefined;
      const to = r ? (r.transport === "websocket" ? redirectUriFor(r.account, peers) : redirectFor(r.account, r.transport, peers)) : undefined;
      if (to !== undefined) {
        s.redirect(to);
        redirected++;
      } else s.shutdown();
    }
    // sessions this node forwards: sent to their owner, which holds the account (no forwarding there)
    const forwarding = this.forwarder?.forwarding ?? [];
    for (const f of forwarding) {
      const owner = peers.filter((p) => p.id === f.owner);
      const to = f.transport === "websocket" ? redirectUriFor(f.account, owner) : redirectFor(f.account, f.transport, owner);
      if (to !== undefined) redirected++;
      f.stop(to);
    }
    // hibernating sessions (XEP-0198) end too: unacknowledged stanzas settled, own legs closed
    this.resumption.shutdown();
    const deadline = Date.now() + graceMs;
    while ((this.sessions.size > 0 || (this.forwarder?.forwarding.length ?? 0) > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sessions) s.conn.destroy();
    // account sessions end their streams (no per-room leave: the server's own cleanup removes the
    // occupants, docs/architecture.md §4.5); wait for the close to reach the server, bounded
    const accountsClosed = this.accounts.shutdown();
    await Promise.race([accountsClosed, new Promise((r) => setTimeout(r, Math.max(graceMs, 200)).unref())]);
    // leases not released yet (an account session still closing) go now, so other nodes take the accounts at once
    await this.cluster?.stop();
    this.log.info({ sessions: n, ...(this.cluster ? { redirected, forwarding: forwarding.length } : {}) }, "stopped");
  }
}
