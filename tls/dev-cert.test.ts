import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { CertError } from "./cert-error.js";
import { ensureDevCert, generateSelfSigned } from "./dev-cert.js";

const DAY = 24 * 3600 * 1000;
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "minimix-devcert-"));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Handshake against a real TLS server, trusting only `ca`; resolves with the verification outcome. */
async function handshake(cert: string, key: string, servername: string): Promise<{ authorized: boolean; error?: string }> {
  const server = tls.createServer({ cert, key, minVersion: "TLSv1.2" }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({ host: "127.0.0.1", port, ca: cert, servername }, () => {
        resolve({ authorized: sock.authorized });
        sock.destroy();
      });
      sock.on("error", (e: NodeJS.ErrnoException) => resolve({ authorized: false, error: e.code ?? e.message }));
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe("generateSelfSigned", () => {
  it("is a CA:false leaf with the domain, its wildcard, conference.localhost and 127.0.0.1", () => {
    const { cert } = generateSelfSigned(["localhost"]);
    const x = new X509Certificate(cert);
    expect(x.subjectAltName).toBe("DNS:localhost, DNS:*.localhost, DNS:conference.localhost, IP Address:127.0.0.1");
    expect(x.subject).toContain("CN=localhost");
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // Node names the extKeyUsage OIDs here: serverAuth
    const days = (new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / DAY;
    expect(days).toBe(825);
  });

  it("clamps validity to 825 days and rejects non-host names", () => {
    const x = new X509Certificate(generateSelfSigned(["example.org"], 5000).cert);
    expect((new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / DAY).toBe(825);
    expect(x.subjectAltName).toBe("DNS:example.org, DNS:*.example.org");
    expect(() => generateSelfSigned(["bad domain"])).toThrow(CertError);
    expect(() => generateSelfSigned([])).toThrow(expect.objectContaining({ code: "CERT_DOMAIN" }));
  });

  it("is trusted by a real tls.connect for localhost and conference.localhost, not for other names", async () => {
    const { cert, key } = generateSelfSigned(["localhost"]);
    expect(await handshake(cert, key, "localhost")).toEqual({ authorized: true });
    expect(await handshake(cert, key, "conference.localhost")).toEqual({ authorized: true });
    expect(await handshake(cert, key, "example.org")).toEqual({ authorized: false, error: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  it("covers subdomains of a multi-label domain through the wildcard", async () => {
    const { cert, key } = generateSelfSigned(["chat.example"]);
    expect(await handshake(cert, key, "conference.chat.example")).toEqual({ authorized: true });
  });
});

describe("ensureDevCert", () => {
  it("generates into a 0700 state dir with a 0600 key, then reuses it", () => {
    const state = join(tempDir(), "state", "nested");
    const first = ensureDevCert(state, ["localhost"]);
    expect(first.generated).toBe(true);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(first.keyFile).mode & 0o777).toBe(0o600);
    const pem = readFileSync(first.certFile, "utf8");

    const again = ensureDevCert(state, ["localhost"]);
    expect(again).toEqual({ ...first, generated: false });
    expect(readFileSync(again.certFile, "utf8")).toBe(pem);
  });

  it("regenerates when the domains change, and reuses for a subset", () => {
    const state = tempDir();
    const a = ensureDevCert(state, ["localhost"]);
    const b = ensureDevCert(state, ["localhost", "example.org"]);
    expect(b.generated).toBe(true);
    const x = new X509Certificate(readFileSync(b.certFile));
    expect(x.subjectAltName).toContain("DNS:*.example.org");
    expect(x.subjectAltName).toContain("DNS:conference.localhost");
    expect(b.certFile).toBe(a.certFile);
    expect(ensureDevCert(state, ["example.org"]).generated).toBe(false);
  });

  it("regenerates when fewer than 7 days are left, or the pair is broken", () => {
    const state = tempDir();
    const t0 = new Date("2030-01-01T00:00:00Z");
    ensureDevCert(state, ["localhost"], t0);
    expect(ensureDevCert(state, ["localhost"], new Date(t0.getTime() + 810 * DAY)).generated).toBe(false);
    expect(ensureDevCert(state, ["localhost"], new Date(t0.getTime() + 820 * DAY)).generated).toBe(true);

    const { keyFile } = ensureDevCert(state, ["localhost"]);
    writeFileSync(keyFile, generateSelfSigned(["localhost"]).key); // another key: mismatch
    expect(ensureDevCert(state, ["localhost"]).generated).toBe(true);
    writeFileSync(keyFile, "garbage");
    expect(ensureDevCert(state, ["localhost"]).generated).toBe(true);
  });
});
