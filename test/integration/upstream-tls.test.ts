/**
 * TLS resumption on the upstream leg (proxy/upstream/connect.ts, keepTickets): the second connection
 * to a server offers the ticket of the first; a server that does not resume it is offered none again.
 * Prosody 0.12 and ejabberd 23.01 both send TLS 1.3 tickets and resume none (ejabberd: no resumption,
 * processone/ejabberd#1436): against both, one ticket is offered, then full, verified handshakes.
 */
import { describe, expect, it } from "vitest";
import type * as tls from "node:tls";
import { readFileSync } from "node:fs";
import { openPreAuth, upstreamResumption, type UpstreamTarget } from "../../proxy/upstream/connect.js";
import { DEFAULT_LIMITS } from "../../core/xml/framer.js";
import { upstreamServers } from "../support/servers.js";
import { sleep } from "../support/muc.js";

describe.each(upstreamServers())("against a real $kind", (server) => {
  for (const mode of ["starttls", "direct"] as const) {
    it(`${mode}: a ticket is offered once; refused, none is offered again; every handshake verifies the certificate`, async () => {
      const port = mode === "direct" ? server.tlsPort : server.port;
      const t: UpstreamTarget = { host: "127.0.0.1", port, tls: mode, domain: "localhost", ca: readFileSync(server.certFile), insecure: false,
        timeoutMs: 10_000, limits: DEFAULT_LIMITS, keepaliveMs: 0 };
      expect(upstreamResumption(t)).toBe("untried");
      const seen: UpstreamResumptionSeen[] = [];
      for (let i = 0; i < 3; i++) {
        const before = upstreamResumption(t);
        const up = await openPreAuth(t);
        const s = up.conn.socket as tls.TLSSocket;
        await sleep(200); // TLS 1.3 tickets come after the handshake
        seen.push({ before, reused: s.isSessionReused(), verified: s.authorized || s.isSessionReused() });
        up.conn.end();
      }
      for (const x of seen) expect(x.verified).toBe(true);
      // both servers send TLS 1.3 tickets and resume none (checked): one offer, then none
      expect(seen.map((x) => x.before)).toEqual(["untried", "offered", "refused"]);
      expect(seen.every((x) => !x.reused)).toBe(true);
    });
  }
});

interface UpstreamResumptionSeen {
  before: string;
  reused: boolean;
  verified: boolean;
}
