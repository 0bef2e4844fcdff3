import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertError, CertStore, type CertPair } from "./cert-store.js";
import { generateSelfSigned, type SelfSignedPem } from "./dev-cert.js";

let dir: string;
let alpha: SelfSignedPem;
let beta: SelfSignedPem;
let pairA: CertPair;
let pairB: CertPair;

function writePair(name: string, pem: SelfSignedPem): CertPair {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, pem.cert);
  writeFileSync(keyFile, pem.key, { mode: 0o600 });
  return { certFile, keyFile };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minimix-certstore-"));
  alpha = generateSelfSigned(["alpha.test"]);
  beta = generateSelfSigned(["beta.test"]);
  pairA = writePair("alpha", alpha);
  pairB = writePair("beta", beta);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The subject CN as one string (Node types a repeated attribute as an array). */
function commonName(cert: tls.PeerCertificate): string {
  const cn = cert.subject.CN;
  return Array.isArray(cn) ? cn.join(",") : (cn ?? "");
}

interface Peer {
  subject: string;
  subjectaltname: string | undefined;
}

/**
 * Serves `store` the way the proxy does after STARTTLS: a plain socket upgraded with a server-side TLSSocket
 * holding the default context and the SNI callback. Connects trusting both certs and returns what the client saw.
 */
async function peerFor(store: CertStore, servername: string | undefined): Promise<Peer> {
  const server = net.createServer((raw) => {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: store.defaultContext(), SNICallback: store.sniCallback });
    s.on("error", () => s.destroy());
    s.on("secure", () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<Peer>((resolve, reject) => {
      const opts: tls.ConnectionOptions = { host: "127.0.0.1", port, ca: [alpha.cert, beta.cert] };
      // No servername: Node then sends no SNI at all (it never sends one for an IP address).
      if (servername !== undefined) opts.servername = servername;
      else opts.checkServerIdentity = () => undefined;
      const sock = tls.connect(opts, () => {
        const cert = sock.getPeerCertificate();
        resolve({ subject: commonName(cert), subjectaltname: cert.subjectaltname });
        sock.destroy();
      });
      sock.on("error", reject);
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe("CertStore", () => {
  it("maps SAN names, including wildcards, to the right certificate", () => {
    const store = new CertStore([pairA, pairB]);
    expect(store.domains()).toEqual(["alpha.test", "*.alpha.test", "beta.test", "*.beta.test"]);
    expect(store.contextFor("beta.test")).not.toBe(store.contextFor("alpha.test"));
    expect(store.contextFor("conference.beta.test")).toBe(store.contextFor("beta.test"));
    expect(store.contextFor("BETA.test.")).toBe(store.contextFor("beta.test"));
    // wildcards match one label only
    expect(store.contextFor("a.b.beta.test")).toBe(store.defaultContext());
    expect(store.contextFor("unknown.example")).toBe(store.defaultContext());
    expect(store.contextFor()).toBe(store.contextFor("alpha.test"));
    expect(store.covers("conference.alpha.test")).toBe(true);
    expect(store.covers("unknown.example")).toBe(false);
    const exp = store.expiry();
    expect(exp.map((e) => [e.file, e.domains])).toEqual([
      [pairA.certFile, ["alpha.test", "*.alpha.test"]],
      [pairB.certFile, ["beta.test", "*.beta.test"]],
    ]);
    expect(exp[0]?.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it("serves the certificate the client asked for by SNI, and the first one without SNI", async () => {
    const store = new CertStore([pairA, pairB]);
    expect(await peerFor(store, "beta.test")).toEqual({ subject: "beta.test", subjectaltname: "DNS:beta.test, DNS:*.beta.test" });
    expect(await peerFor(store, "conference.alpha.test")).toEqual({ subject: "alpha.test", subjectaltname: "DNS:alpha.test, DNS:*.alpha.test" });
    expect((await peerFor(store, undefined)).subject).toBe("alpha.test");
  });

  it("works as tls.createServer options (direct TLS listener)", async () => {
    const store = new CertStore([pairA, pairB]);
    const server = tls.createServer(store.serverOptions(), (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const seen = await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: "127.0.0.1", port, ca: beta.cert, servername: "conference.beta.test" }, () => {
        resolve(commonName(sock.getPeerCertificate()));
        sock.destroy();
      });
      sock.on("error", reject);
    });
    await new Promise((resolve) => server.close(resolve));
    expect(seen).toBe("beta.test");
  });

  it("detects a key that does not belong to the certificate", () => {
    const mixed = { certFile: pairA.certFile, keyFile: pairB.keyFile };
    expect(() => new CertStore([mixed])).toThrow(CertError);
    expect(() => new CertStore([pairA, mixed])).toThrow(expect.objectContaining({ code: "CERT_KEY_MISMATCH", file: pairB.keyFile }));
  });

  it("reports unreadable and unparsable files with stable codes", () => {
    expect(() => new CertStore([])).toThrow(expect.objectContaining({ code: "CERT_NONE" }));
    expect(() => new CertStore([{ certFile: join(dir, "missing.crt"), keyFile: pairA.keyFile }])).toThrow(
      expect.objectContaining({ code: "CERT_READ" }),
    );
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
    expect(() => new CertStore([{ certFile: junk, keyFile: pairA.keyFile }])).toThrow(expect.objectContaining({ code: "CERT_PARSE" }));
    expect(() => new CertStore([{ certFile: pairA.certFile, keyFile: junk }])).toThrow(expect.objectContaining({ code: "CERT_PARSE" }));
  });

  it("reload picks up new files, and keeps the old contexts when a file is bad", async () => {
    const live = writePair("live", alpha);
    const store = new CertStore([live, pairB]);
    const before = store.contextFor("alpha.test");

    // rotate to a new certificate for a new name
    const gamma = generateSelfSigned(["gamma.test"]);
    writeFileSync(live.certFile, gamma.cert);
    writeFileSync(live.keyFile, gamma.key);
    store.reload();
    expect(store.covers("gamma.test")).toBe(true);
    expect(store.covers("alpha.test")).toBe(false);
    const rotated = store.contextFor("gamma.test");
    expect(rotated).not.toBe(before);

    // a half-finished rotation: new cert, old key
    writeFileSync(live.certFile, alpha.cert);
    let thrown: unknown;
    try {
      store.reload();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CertError);
    expect((thrown as CertError).code).toBe("CERT_KEY_MISMATCH");
    expect(store.contextFor("gamma.test")).toBe(rotated);
    expect(store.domains()).toContain("gamma.test");

    // a deleted file
    rmSync(live.keyFile);
    expect(() => store.reload()).toThrow(expect.objectContaining({ code: "CERT_READ" }));
    expect(store.contextFor("gamma.test")).toBe(rotated);
    expect(store.covers("beta.test")).toBe(true);
  });
});
