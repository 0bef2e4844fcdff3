/**
 * The admin HTTP server (--metrics HOST:PORT, default loopback only):
 *   GET /metrics  Prometheus text format, or OpenMetrics when the Accept header asks for it
 *   GET /status   JSON for `minimix-proxy status` — answered to loopback clients only, since it
 *                 names accounts and rooms even when the metrics port is opened to a scraper
 *   GET /healthz  "ok"
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { HostPort } from "./config.js";
import type { Logger } from "./log.js";
import type { ProxyMetrics } from "./metrics.js";
import type { Status } from "./status.js";

export interface AdminOptions {
  address: HostPort;
  metrics: ProxyMetrics;
  status: () => Status;
  log: Logger;
}

export interface AdminServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.startsWith("::ffff:") ? addr.slice(7) : addr;
  return a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

export function startAdmin(o: AdminOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    switch (path) {
      case "/metrics":
        o.metrics.render(req.headers.accept).then(
          (m) => send(200, m.contentType, m.body),
          (err: unknown) => {
            o.log.error({ reason: (err as Error).message }, "metrics collection failed");
            send(500, "text/plain; charset=utf-8", "metrics collection failed\n");
          },
        );
        return;
      case "/status":
        if (!isLoopback(req.socket.remoteAddress)) return send(403, "text/plain; charset=utf-8", "status is only served to loopback clients\n");
        try {
          return send(200, "application/json; charset=utf-8", `${JSON.stringify(o.status(), null, 2)}\n`);
        } catch (err) {
          o.log.error({ reason: (err as Error).message }, "status failed");
          return send(500, "text/plain; charset=utf-8", "status failed\n");
        }
      case "/healthz":
        return send(200, "text/plain; charset=utf-8", "ok\n");
      default:
        return send(404, "text/plain; charset=utf-8", "not found: try /metrics or /status\n");
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.address.port, o.address.host, () => {
      server.off("error", reject);
      server.on("error", (err) => o.log.error({ err: err.message }, "admin listener error"));
      const a = server.address() as AddressInfo;
      o.log.info({ host: a.address, port: a.port, paths: ["/metrics", "/status"] }, "metrics listening");
      resolve({
        host: a.address,
        port: a.port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
