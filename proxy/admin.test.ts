import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as http from "node:http";
import { createLogger } from "./log.js";
import { ProxyMetrics } from "./metrics.js";
import { isLoopback, startAdmin, type AdminServer } from "./admin.js";
import { buildStatus } from "./status.js";

function get(port: number, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("admin HTTP server", () => {
  let admin: AdminServer;
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  beforeAll(async () => {
    metrics.bind({ sessions: [{ transport: "starttls", state: "open" }] });
    admin = await startAdmin({
      address: { host: "127.0.0.1", port: 0 },
      metrics,
      status: () => buildStatus({ sessions: [] }, { version: "1.2.3", startedAt: Date.now() }),
      log: createLogger("silent"),
    });
  });
  afterAll(() => admin.close());

  it("GET /metrics: Prometheus text, or OpenMetrics on request", async () => {
    const r = await get(admin.port, "/metrics");
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain('minimix_connections{transport="starttls",state="open"} 1');
    const om = await get(admin.port, "/metrics", { accept: "application/openmetrics-text; version=1.0.0" });
    expect(om.type).toMatch(/^application\/openmetrics-text/);
    expect(om.body).toContain("# EOF");
  });

  it("GET /status: JSON for loopback clients", async () => {
    const r = await get(admin.port, "/status");
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toMatchObject({ version: "1.2.3", accounts: [], connections: { total: 0 } });
  });

  it("other paths and methods", async () => {
    expect((await get(admin.port, "/healthz")).body).toBe("ok\n");
    expect((await get(admin.port, "/nope")).status).toBe(404);
    expect((await get(admin.port, "/metrics", {}, "POST")).status).toBe(405);
    expect((await get(admin.port, "/metrics", {}, "HEAD")).status).toBe(200);
  });

  it("a busy port is an error, not a crash", async () => {
    await expect(startAdmin({ address: { host: "127.0.0.1", port: admin.port }, metrics, status: () => { throw new Error("x"); }, log: createLogger("silent") }))
      .rejects.toMatchObject({ code: "EADDRINUSE" });
  });

  it("loopback detection", () => {
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(isLoopback(a), a).toBe(true);
    for (const a of ["10.0.0.1", "::ffff:192.168.1.1", "fe80::1", "1127.0.0.1", undefined]) expect(isLoopback(a), String(a)).toBe(false);
  });
});
