/**
 * Channel-binding data read from real Node TLS connections (loopback, the dev certificate of
 * tls/dev-cert.ts): both ends must compute the same bytes for every type, or no -PLUS login could work.
 */
import { X509Certificate, createHash, createHmac, pbkdf2Sync } from "node:crypto";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSelfSigned } from "../tls/dev-cert.js";
import { ScramClient } from "../core/sasl/scram.js";
import { ScramServer } from "../core/sasl/scram-server.js";
import { SaslError } from "../core/sasl/errors.js";
import { channelBindings } from "./channel-binding.js";
import { type ChannelBindingType, advertisedChannelBindingTypes } from "../core/sasl/channel-binding.js";

const pem = generateSelfSigned(["localhost"]);
type Version = "TLSv1.2" | "TLSv1.3";

let server: tls.Server;
let port = 0;
/** Server-side results in connection order. */
const serverSide: { bindings: Map<ChannelBindingType, Buffer>; reused: boolean; finished: Buffer | undefined }[] = [];
const waiting: (() => void)[] = [];

beforeAll(async () => {
  server = tls.createServer({ key: pem.key, cert: pem.cert, minVersion: "TLSv1.2" }, (s) => {
    serverSide.push({ bindings: channelBindings(s, "server"), reused: s.isSessionReused(), finished: s.getFinished() });
    waiting.shift()?.();
    s.on("error", () => undefined);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

async function connect(version: Version, session?: Buffer) {
  const index = serverSide.length;
  const serverDone = new Promise<void>((r) => waiting.push(r));
  const client = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: pem.cert, minVersion: version, maxVersion: version, ...(session ? { session } : {}) });
  let ticket: Buffer | undefined;
  client.on("session", (s: Buffer) => (ticket = s));
  await new Promise<void>((resolve, reject) => {
    client.once("secureConnect", resolve);
    client.once("error", reject);
  });
  const result = { bindings: channelBindings(client, "client"), reused: client.isSessionReused(), finished: client.getFinished(), peerFinished: client.getPeerFinished() };
  await serverDone;
  // TLS 1.2 hands out the session right after the handshake; wait for the close so it has arrived.
  await new Promise<void>((r) => {
    client.on("end", () => r());
    client.on("close", () => r());
    client.resume();
  });
  client.destroy();
  return { client: result, server: serverSide[index]!, ticket };
}

const devCertDer = new X509Certificate(pem.cert).raw;

describe("channel bindings on real TLS connections", () => {
  it("TLS 1.3: tls-exporter and tls-server-end-point advertised, tls-unique accepted too (the client's Finished), the same on both ends", async () => {
    const { client, server: srv } = await connect("TLSv1.3");
    expect([...srv.bindings.keys()]).toEqual(["tls-exporter", "tls-server-end-point", "tls-unique"]);
    expect([...client.bindings.keys()]).toEqual(["tls-exporter", "tls-server-end-point", "tls-unique"]);
    expect(advertisedChannelBindingTypes([...srv.bindings.keys()])).toEqual(["tls-exporter", "tls-server-end-point"]);
    for (const [type, data] of srv.bindings) expect(client.bindings.get(type)?.equals(data), type).toBe(true);
    // what OpenSSL-based clients (Python's ssl: slixmpp) and ejabberd use on TLS 1.3
    expect(srv.bindings.get("tls-unique")?.equals(client.finished!)).toBe(true);
    expect(srv.bindings.get("tls-exporter")).toHaveLength(32);
    // the dev certificate is signed with SHA-256 (RSA): RFC 5929 §4.1 hashes it with SHA-256
    expect(srv.bindings.get("tls-server-end-point")?.equals(createHash("sha256").update(devCertDer).digest())).toBe(true);
  });

  it("TLS 1.3: tls-exporter differs per connection; tls-server-end-point does not", async () => {
    const a = await connect("TLSv1.3");
    const b = await connect("TLSv1.3");
    expect(a.server.bindings.get("tls-exporter")?.equals(b.server.bindings.get("tls-exporter")!)).toBe(false);
    expect(a.server.bindings.get("tls-server-end-point")?.equals(b.server.bindings.get("tls-server-end-point")!)).toBe(true);
  });

  it("TLS 1.2 full handshake: tls-unique is the client's Finished, the same on both ends; no tls-exporter", async () => {
    const { client, server: srv } = await connect("TLSv1.2");
    expect(srv.reused).toBe(false);
    expect([...srv.bindings.keys()]).toEqual(["tls-server-end-point", "tls-unique"]);
    for (const [type, data] of srv.bindings) expect(client.bindings.get(type)?.equals(data), type).toBe(true);
    expect(srv.bindings.get("tls-unique")?.equals(client.finished!)).toBe(true);
    expect(srv.bindings.get("tls-unique")?.equals(srv.finished!)).toBe(false);
  });

  it("TLS 1.2 resumed handshake: tls-unique is the server's Finished, the same on both ends", async () => {
    const first = await connect("TLSv1.2");
    expect(first.ticket).toBeDefined();
    const { client, server: srv } = await connect("TLSv1.2", first.ticket);
    expect(client.reused).toBe(true);
    expect(srv.reused).toBe(true);
    expect(srv.bindings.get("tls-unique")?.equals(client.bindings.get("tls-unique")!)).toBe(true);
    expect(srv.bindings.get("tls-unique")?.equals(srv.finished!)).toBe(true);
    expect(client.bindings.get("tls-unique")?.equals(client.peerFinished!)).toBe(true);
    expect(srv.bindings.get("tls-unique")?.equals(first.server.bindings.get("tls-unique")!)).toBe(false);
  });

  it("a SCRAM-SHA-256-PLUS exchange binds to its own connection only", async () => {
    const a = await connect("TLSv1.3");
    const b = await connect("TLSv1.3");
    const salt = Buffer.from("0123456789abcdef");
    const salted = pbkdf2Sync("pw", salt, 4096, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const rec = { salt, iterations: 4096, storedKey: createHash("sha256").update(clientKey).digest(), serverKey: createHmac("sha256", salted).update("Server Key").digest() };
    for (const type of ["tls-exporter", "tls-server-end-point"] as const) {
      const run = (clientSide: ReadonlyMap<string, Buffer>) => {
        const c = new ScramClient("SHA-256", "alice", { password: "pw" }, { gs2: { type, data: clientSide.get(type)! } });
        const s = new ScramServer({ mechanism: "SCRAM-SHA-256-PLUS", channelBindings: a.server.bindings, plusAdvertised: true });
        s.clientFirst(c.clientFirst());
        const ok = s.clientFinal(c.clientFinal(s.serverFirst(rec)));
        c.verifyServerFinal(ok.serverFinal);
      };
      expect(() => run(a.client.bindings)).not.toThrow();
      if (type === "tls-exporter") expect(() => run(b.client.bindings)).toThrow(SaslError); // another connection's exporter
    }
  });
});
