import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { WS_SUBPROTOCOL } from "./framing.js";

export interface UpgradeHooks {
  /** A reason (HTTP 503) to refuse the connection before the WebSocket exists, e.g. limits. */
  refuse(ip: string): string | undefined;
  /** A WebSocket speaking "xmpp" on the configured path. */
  accept(ws: WebSocket, socket: Duplex, ip: string): void;
  /** An HTTP request that was not a valid XMPP WebSocket upgrade (for logs). */
  rejected(ip: string, status: number, reason: string): void;
}

export interface WsListenerOptions {
  path: string;
  /** Largest WebSocket message accepted (the framer then applies --max-stanza-size itself). */
  maxPayload: number;
  /** Plain listener on loopback behind a reverse proxy: the client address is in X-Forwarded-For. */
  trustForwarded: boolean;
}

/** The client address: the socket's, or the rightmost X-Forwarded-For / X-Real-IP entry a local proxy set. */
export function clientAddress(req: http.IncomingMessage, trustForwarded: boolean): string {
  const own = req.socket.remoteAddress ?? "unknown";
  if (!trustForwarded) return own;
  const xff = req.headers["x-forwarded-for"];
  const list = (Array.isArray(xff) ? xff.join(",") : xff ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  const real = req.headers["x-real-ip"];
  return list[list.length - 1] ?? (typeof real === "string" && real !== "" ? real : own);
}

function reject(socket: Duplex, status: number, reason: string, extra: Record<string, string> = {}): void {
  const body = `${reason}\n`;
  const headers = { Connection: "close", "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(Buffer.byteLength(body)), ...extra };
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body}`);
}

/**
 * Attaches RFC 7395 upgrade handling to an HTTP(S) server: the path must match, the client must
 * offer the "xmpp" subprotocol (RFC 7395 §3.1; anything else is refused with 400 before the
 * handshake), and the server answers with it. Plain HTTP requests get 426 Upgrade Required.
 */
export function attachWebSocket(server: http.Server | https.Server, opts: WsListenerOptions, hooks: UpgradeHooks): WebSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false, // compression of secrets next to attacker-chosen data (CRIME/BREACH)
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(426, { "Content-Type": "text/plain; charset=utf-8", Upgrade: "websocket", Connection: "close" });
    res.end("XMPP over WebSocket (RFC 7395): connect with the \"xmpp\" subprotocol\n");
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => undefined);
    const ip = clientAddress(req, opts.trustForwarded);
    const path = (req.url ?? "").split("?")[0];
    if (path !== opts.path) {
      hooks.rejected(ip, 404, "wrong path");
      return reject(socket, 404, "not found");
    }
    if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      hooks.rejected(ip, 400, "not a WebSocket upgrade");
      return reject(socket, 400, "expected a WebSocket upgrade");
    }
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    if (!offered.includes(WS_SUBPROTOCOL)) {
      hooks.rejected(ip, 400, "no xmpp subprotocol");
      return reject(socket, 400, "the \"xmpp\" WebSocket subprotocol is required (RFC 7395)");
    }
    const refusal = hooks.refuse(ip);
    if (refusal !== undefined) return reject(socket, 503, refusal, { "Retry-After": "10" });
    wss.handleUpgrade(req, socket, head, (ws) => hooks.accept(ws, socket, ip));
  });
  return wss;
}
