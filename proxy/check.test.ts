import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import forge from "node-forge";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSelfSigned } from "../tls/dev-cert.js";
import { loadConfig } from "./config.js";
import { checkCertificates, checkProxyProtocol, exitCode, formatResult, probeUpstream, runChecks, type CheckResult } from "./check.js";

const DAY = 86_400_000;
let dir: string;
const pems = new Map<string, { cert: string; key: string }>();

function pair(name: string, domains: string[], days = 90): { cert: string; key: string } {
  const pem = generateSelfSigned(domains, days);
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, pem.cert);
  writeFileSync(key, pem.key);
  pems.set(name, pem);
  return { cert, key };
}

function config(args: string[]): ReturnType<typeof loadConfig> {
  return loadConfig(["check", "--metrics", "off", "--state-dir", dir, ...args], { HOME: dir });
}

const lines = (rs: CheckResult[]): string[] => rs.map(formatResult);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "minimix-check-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("check: certificates", () => {
  it("a good pair: key matches, valid, domain covered (self-signed is a warning)", () => {
    const p = pair("good", ["example.org", "conference.example.org"]);
    const rs = checkCertificates(config(["--domain", "example.org", "--cert", p.cert, "--key", p.key]));
    const out = lines(rs);
    expect(out).toContainEqual(`OK   key ${p.key}: matches ${p.cert}`);
    expect(out.some((l) => l.startsWith(`OK   certificate ${p.cert}: valid until `) && l.includes("for example.org, *.example.org, conference.example.org"))).toBe(true);
    expect(out).toContainEqual(`WARN certificate ${p.cert}: self-signed: clients will not trust it unless told to`);
    expect(out).toContainEqual(`OK   domain example.org: covered by ${p.cert}`);
    expect(exitCode(rs)).toBe(0);
  });

  it("expiry: WARN under 14 days, FAIL once expired or not yet valid", () => {
    const p = pair("short", ["example.org"], 30);
    const c = config(["--domain", "example.org", "--cert", p.cert, "--key", p.key]);
    const soon = lines(checkCertificates(c, { now: new Date(Date.now() + 25 * DAY) }));
    expect(soon.some((l) => /^WARN certificate .*: expires in [34] days, on .*renew it, then reload with SIGHUP/.test(l))).toBe(true);
    const expired = checkCertificates(c, { now: new Date(Date.now() + 31 * DAY) });
    expect(lines(expired).some((l) => /^FAIL certificate .*: EXPIRED on /.test(l))).toBe(true);
    expect(exitCode(expired)).toBe(1);
    const early = lines(checkCertificates(c, { now: new Date(Date.now() - 3 * DAY) }));
    expect(early.some((l) => /^FAIL certificate .*: not valid before /.test(l))).toBe(true);
  });

  it("a key that does not match, an unreadable file, an uncovered domain", () => {
    const a = pair("a", ["example.org"]);
    const b = pair("b", ["example.org"]);
    const mismatch = checkCertificates(config(["--domain", "example.org", "--cert", a.cert, "--key", b.key]));
    expect(lines(mismatch)).toContainEqual(`FAIL key ${b.key}: is not the private key of ${a.cert}`);
    expect(lines(mismatch)).toContainEqual("FAIL domain example.org: no usable certificate");

    const missing = join(dir, "missing.pem");
    const unreadable = lines(checkCertificates(config(["--domain", "example.org", "--cert", missing, "--key", a.key])));
    expect(unreadable).toContainEqual(`FAIL certificate ${missing}: cannot read ${missing}: no such file`);

    const uncovered = checkCertificates(config(["--domain", "example.org", "--domain", "other.net", "--cert", a.cert, "--key", a.key]));
    expect(lines(uncovered)).toContainEqual("FAIL domain other.net: no configured certificate names it: clients will reject the proxy's certificate");
    expect(exitCode(uncovered)).toBe(1);
  });

  it("garbage instead of PEM; no certificate configured; upstream-ca", () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "hello");
    const a = pair("c", ["example.org"]);
    expect(lines(checkCertificates(config(["--domain", "example.org", "--cert", junk, "--key", a.key])))[0]).toMatch(/^FAIL certificate .*junk.pem: not a PEM certificate/);
    expect(lines(checkCertificates(config(["--domain", "example.org", "--cert", a.cert, "--key", junk])))[0]).toBe(`FAIL key ${junk}: not an unencrypted PEM private key`);
    expect(lines(checkCertificates(config(["--domain", "example.org"])))[0]).toMatch(/^WARN certificates: none configured: the proxy will use a self-signed certificate/);
    expect(lines(checkCertificates(config(["--domain", "example.org", "--upstream-ca", a.cert])))).toContainEqual(`OK   upstream-ca ${a.cert}: 1 CA certificate`);
    expect(lines(checkCertificates(config(["--domain", "example.org", "--upstream-ca", junk])))).toContainEqual(`FAIL upstream-ca ${junk}: no PEM certificate in it`);
  });

  it("Let's Encrypt style: fullchain.pem passes, cert.pem alone (no intermediate) is warned about", () => {
    const { fullchain, leafOnly, key } = caSignedChain("example.org");
    const full = join(dir, "fullchain.pem");
    const only = join(dir, "cert.pem");
    const priv = join(dir, "privkey.pem");
    writeFileSync(full, fullchain);
    writeFileSync(only, leafOnly);
    writeFileSync(priv, key);
    const good = lines(checkCertificates(config(["--domain", "example.org", "--cert", full, "--key", priv])));
    expect(good.filter((l) => !l.startsWith("OK "))).toEqual([]);
    const bad = lines(checkCertificates(config(["--domain", "example.org", "--cert", only, "--key", priv])));
    expect(bad).toContainEqual(`WARN certificate ${only}: holds only the server certificate, no intermediates: clients may not build a chain (with Let's Encrypt use fullchain.pem, not cert.pem)`);
    const reversed = join(dir, "reversed.pem");
    writeFileSync(reversed, leafOnly + fullchain.slice(leafOnly.length) + leafOnly);
    const rev = lines(checkCertificates(config(["--domain", "example.org", "--cert", reversed, "--key", priv])));
    expect(rev.some((l) => /^WARN certificate .*: certificate 3 in the file did not issue certificate 2/.test(l))).toBe(true);
  });
});

/** A CA and a leaf it signed (node-forge), as certbot's fullchain.pem / cert.pem / privkey.pem. */
function caSignedChain(domain: string): { fullchain: string; leafOnly: string; key: string } {
  const mk = (): { pub: forge.pki.PublicKey; priv: forge.pki.rsa.PrivateKey; pem: string } => {
    const k = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
    return { pub: forge.pki.publicKeyFromPem(k.publicKey), priv: forge.pki.privateKeyFromPem(k.privateKey) as forge.pki.rsa.PrivateKey, pem: k.privateKey };
  };
  const caKey = mk();
  const leafKey = mk();
  const now = Date.now();
  const ca = forge.pki.createCertificate();
  ca.publicKey = caKey.pub;
  ca.serialNumber = "01";
  ca.validity.notBefore = new Date(now - DAY);
  ca.validity.notAfter = new Date(now + 365 * DAY);
  const caName = [{ name: "commonName", value: "Test Intermediate" }];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([{ name: "basicConstraints", cA: true }, { name: "keyUsage", keyCertSign: true, cRLSign: true }]);
  ca.sign(caKey.priv, forge.md.sha256.create());
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKey.pub;
  leaf.serialNumber = "02";
  leaf.validity.notBefore = new Date(now - DAY);
  leaf.validity.notAfter = new Date(now + 90 * DAY);
  leaf.setSubject([{ name: "commonName", value: domain }]);
  leaf.setIssuer(caName);
  leaf.setExtensions([{ name: "subjectAltName", altNames: [{ type: 2, value: domain }] }]);
  leaf.sign(caKey.priv, forge.md.sha256.create());
  const leafPem = forge.pki.certificateToPem(leaf);
  return { fullchain: leafPem + forge.pki.certificateToPem(ca), leafOnly: leafPem, key: leafKey.pem };
}

describe("check: upstream probe against fake servers", () => {
  function fakeServer(reply: (sock: net.Socket) => void): Promise<{ port: number; close: () => void }> {
    return new Promise((resolve) => {
      const srv = net.createServer((sock) => {
        sock.once("data", () => reply(sock));
        sock.on("error", () => undefined);
      });
      srv.listen(0, "127.0.0.1", () => resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() }));
    });
  }
  const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='x' version='1.0'>";

  it("a server that does not offer STARTTLS", async () => {
    const s = await fakeServer((sock) => sock.write(`${HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`));
    const rs = await probeUpstream(config(["--domain", "example.org", "--upstream", `127.0.0.1:${s.port}`]), "example.org");
    s.close();
    expect(lines(rs)).toEqual([
      expect.stringMatching(/^OK {3}upstream 127\.0\.0\.1:\d+: TCP connected in \d+ ms$/),
      expect.stringMatching(/^FAIL upstream 127\.0\.0\.1:\d+: does not offer STARTTLS/),
    ]);
  });

  it("a server that does not serve the domain", async () => {
    const s = await fakeServer((sock) => sock.write(`${HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`));
    const rs = await probeUpstream(config(["--domain", "example.org", "--upstream", `127.0.0.1:${s.port}`]), "example.org");
    s.close();
    expect(lines(rs)[1]).toMatch(/^FAIL upstream .*: stream error host-unknown \(stream features\)$/);
  });

  it("a server that refuses STARTTLS, closes the stream, or explains its stream error", async () => {
    const probe = async (reply: string): Promise<string | undefined> => {
      const s = await fakeServer((sock) => {
        sock.write(`${HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>`);
        sock.once("data", () => sock.write(reply));
      });
      const rs = await probeUpstream(config(["--domain", "example.org", "--upstream", `127.0.0.1:${s.port}`]), "example.org");
      s.close();
      return lines(rs).at(-1);
    };
    expect(await probe("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>")).toMatch(/^FAIL upstream .*: refused STARTTLS$/);
    expect(await probe("</stream:stream>")).toMatch(/^FAIL upstream .*: the server closed the stream \(STARTTLS\)$/);
    expect(await probe("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>busy</text></stream:error>"))
      .toMatch(/^FAIL upstream .*: stream error policy-violation \(busy\) \(STARTTLS\)$/);
  });

  it("a server that does not answer", async () => {
    const s = await fakeServer(() => undefined);
    const rs = await probeUpstream(config(["--domain", "example.org", "--upstream", `127.0.0.1:${s.port}`, "--upstream-timeout", "1"]), "example.org");
    s.close();
    expect(lines(rs)[1]).toMatch(/^FAIL upstream .*: no answer in 1000 ms \(stream features\)$/);
  });

  it("nothing listening: FAIL, and runChecks reports the config first", async () => {
    const closed = await fakeServer(() => undefined);
    closed.close();
    const rs = await runChecks(config(["--domain", "example.org", "--upstream", `127.0.0.1:${closed.port}`]));
    expect(lines(rs)[0]).toMatch(/^OK {3}config: command line is valid: domain example.org; listen 0\.0\.0\.0:5222 starttls, 0\.0\.0\.0:5223 direct-tls; upstream 127\.0\.0\.1:\d+ \(starttls\); metrics off$/);
    expect(lines(rs).at(-1)).toMatch(/^FAIL upstream 127\.0\.0\.1:\d+: TCP connect failed: connect ECONNREFUSED/);
    expect(exitCode(rs)).toBe(1);
  });
});

describe("check: PROXY protocol sources", () => {
  it("reports who may send headers: the loopback default, a list, a /0 that trusts everyone, a list without proxy-protocol", () => {
    const line = (args: string[]): string[] => lines(checkProxyProtocol(config(["--domain", "example.org", ...args])));
    expect(line([])).toEqual([]);
    expect(line(["--proxy-protocol"])).toEqual([
      "OK   proxy-protocol: headers accepted only from 127.0.0.0/8, ::1 (the default: loopback only; set proxy-protocol-from for a load balancer on another host); other sources are refused",
    ]);
    expect(line(["--proxy-protocol", "--proxy-protocol-from", "10.0.0.5", "--proxy-protocol-from", "2001:db8::/32"])).toEqual([
      "OK   proxy-protocol: headers accepted only from 10.0.0.5, 2001:db8::/32; other sources are refused",
    ]);
    expect(line(["--proxy-protocol", "--proxy-protocol-from", "0.0.0.0/0"])[0]).toMatch(/^WARN proxy-protocol: .*0\.0\.0\.0\/0 trusts every address/);
    expect(line(["--proxy-protocol-from", "10.0.0.5"])).toEqual(["WARN proxy-protocol-from: 10.0.0.5: has no effect, proxy-protocol is off"]);
  });

  it("runChecks includes the line", async () => {
    const rs = await runChecks(config(["--domain", "example.org", "--proxy-protocol"]), { offline: true });
    expect(lines(rs).some((l) => l.startsWith("OK   proxy-protocol: headers accepted only from 127.0.0.0/8, ::1"))).toBe(true);
  });
});

describe("check: credential store", () => {
  it("none yet: OK without creating it; then the count; a damaged record: FAIL with its code", async () => {
    const { existsSync, mkdirSync, writeFileSync: write } = await import("node:fs");
    const { checkCredentialStore } = await import("./check.js");
    const { FileCredentialStore } = await import("./credentials/file-store.js");
    const state = mkdtempSync(join(tmpdir(), "minimix-check-cred-"));
    try {
      const c = loadConfig(["check", "--domain", "example.org", "--state-dir", state], { HOME: state });
      expect(formatResult(await checkCredentialStore(c))).toBe(`OK   credentials: ${join(state, "credentials")}: none yet (created at the first start)`);
      expect(existsSync(join(state, "credentials"))).toBe(false);
      const { store } = await FileCredentialStore.open(state);
      await store.put({ account: "alice@example.org", source: "login", updatedAt: "2026-12-01T00:00:00Z",
        scram: { "SHA-1": { origin: "server", salt: Buffer.from("s"), iterations: 4096, storedKey: Buffer.alloc(20), serverKey: Buffer.alloc(20) } } });
      expect(formatResult(await checkCredentialStore(c))).toMatch(/^OK {3}credentials: .*: 1 account with SCRAM records/);
      mkdirSync(join(state, "credentials"), { recursive: true });
      write(join(state, "credentials", "bob@example.org.json"), "{}", { mode: 0o600 });
      const r = await checkCredentialStore(c);
      expect(formatResult(r)).toMatch(/^FAIL credentials: credential record .*bob@example\.org\.json: .*\(CREDENTIAL_STORE_CORRUPT\); the proxy will not start$/);
      expect(exitCode([r])).toBe(1);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
