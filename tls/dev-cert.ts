import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";
import { CertError } from "./cert-error.js";
import { certDnsNames, certIpAddresses, normalizeName } from "./x509-names.js";

/** Apple (and the CA/B forum before 2020) reject TLS server certificates valid for longer than this. */
export const MAX_DEV_CERT_DAYS = 825;
/** A certificate closer than this to expiry is replaced rather than reused. */
const MIN_REMAINING_MS = 7 * 24 * 3600 * 1000;
/** Backdate notBefore so a client whose clock is slightly behind still accepts a fresh certificate. */
const BACKDATE_MS = 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

const CERT_FILE = "dev-cert.pem";
const KEY_FILE = "dev-key.pem";

export interface DevCert {
  certFile: string;
  keyFile: string;
  /** false when an existing certificate in stateDir was reused. */
  generated: boolean;
}

export interface SelfSignedPem {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate for the served XMPP domains in `stateDir`, reused while it still covers every
 * domain and has at least 7 days left; otherwise (or when missing, unreadable or mismatched) regenerated.
 */
export function ensureDevCert(stateDir: string, domains: string[], now: Date = new Date()): DevCert {
  const wanted = devCertNames(domains);
  const certFile = join(stateDir, CERT_FILE);
  const keyFile = join(stateDir, KEY_FILE);
  try {
    // recursive mkdir applies the mode to every directory it creates; an existing directory is left alone.
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new CertError("CERT_WRITE", `cannot create state directory ${stateDir}`, { file: stateDir, cause });
  }
  if (reusable(certFile, keyFile, wanted, now)) return { certFile, keyFile, generated: false };

  const pem = generateSelfSigned(domains, MAX_DEV_CERT_DAYS, now);
  // Key first: if we die between the two renames, the next start sees a mismatched pair and regenerates.
  writeAtomic(keyFile, pem.key, 0o600);
  writeAtomic(certFile, pem.cert, 0o644);
  return { certFile, keyFile, generated: true };
}

/**
 * PEM certificate + PKCS#8 key for `domains` (first domain is the CN). Validity is clamped to 1..825 days.
 * RSA keygen uses Node's native crypto (node-forge's pure-JS keygen takes seconds); node-forge only builds
 * and signs the certificate, which Node cannot do.
 */
export function generateSelfSigned(domains: string[], days: number = MAX_DEV_CERT_DAYS, now: Date = new Date()): SelfSignedPem {
  const names = devCertNames(domains);
  const validDays = Math.max(1, Math.min(MAX_DEV_CERT_DAYS, Math.floor(days)));
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serialNumber();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notBefore = notBefore;
  // Measured from notBefore: the 825-day limit is on the whole validity period.
  cert.validity.notAfter = new Date(notBefore.getTime() + validDays * DAY_MS);

  const first = names.dns[0] as string;
  const subject: forge.pki.CertificateField[] = [{ name: "organizationName", value: "minimix-proxy development" }];
  // X.520 caps the CN at 64 characters; longer names are still in the SAN, which is what clients check.
  if (first.length <= 64) subject.unshift({ name: "commonName", value: first });
  cert.setSubject(subject);
  cert.setIssuer(subject);

  cert.setExtensions([
    // CA:false: a leaf that clients trust directly (Node's `ca` option, NODE_EXTRA_CA_CERTS) accepts it as a
    // trust anchor, and it cannot be misused to issue other certificates if someone trusts it system-wide.
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        ...names.dns.map((value) => ({ type: 2, value })), // dNSName
        ...names.ips.map((ip) => ({ type: 7, ip })), // iPAddress
      ],
    },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

interface DevCertNames {
  dns: string[];
  ips: string[];
}

/**
 * For each domain: the domain and `*.domain` (MUC, upload and other components). For a single-label domain
 * such as `localhost`, also `conference.domain` explicitly: Node (and browsers) refuse to match a wildcard
 * with fewer than three labels, so `*.localhost` does not cover `conference.localhost` for them.
 * `localhost` adds 127.0.0.1 so clients connecting by address verify too.
 */
function devCertNames(domains: string[]): DevCertNames {
  if (domains.length === 0) throw new CertError("CERT_DOMAIN", "dev certificate needs at least one domain");
  const dns: string[] = [];
  const ips: string[] = [];
  for (const d of domains) {
    const domain = normalizeName(d);
    if (!isHostName(domain)) throw new CertError("CERT_DOMAIN", `not a host name: ${JSON.stringify(d)}`);
    dns.push(domain, `*.${domain}`);
    if (!domain.includes(".")) dns.push(`conference.${domain}`);
    if (domain === "localhost") ips.push("127.0.0.1");
  }
  return { dns: [...new Set(dns)], ips: [...new Set(ips)] };
}

function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
}

/** The existing pair is kept only if it parses, matches, is valid now and for 7 more days, and covers all names. */
function reusable(certFile: string, keyFile: string, wanted: DevCertNames, now: Date): boolean {
  try {
    const x509 = new X509Certificate(readFileSync(certFile));
    if (!x509.checkPrivateKey(createPrivateKey(readFileSync(keyFile)))) return false;
    const t = now.getTime();
    if (new Date(x509.validFrom).getTime() > t) return false;
    if (new Date(x509.validTo).getTime() - t < MIN_REMAINING_MS) return false;
    const dns = new Set(certDnsNames(x509));
    const ips = new Set(certIpAddresses(x509));
    return wanted.dns.every((n) => dns.has(n)) && wanted.ips.every((ip) => ips.has(ip));
  } catch {
    // Missing, unreadable or corrupt: it is our own throwaway certificate, so just make a new one.
    return false;
  }
}

/** Write to a temp file and rename, so a reader never sees a half-written PEM. */
function writeAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data, { mode });
    chmodSync(tmp, mode); // `mode` on write only applies when the file is created, and is masked by umask
    renameSync(tmp, file);
  } catch (cause) {
    throw new CertError("CERT_WRITE", `cannot write ${file}`, { file, cause });
  }
}

/** 16 random bytes, top bit clear and second bit set: a positive, full-length DER INTEGER (RFC 5280 §4.1.2.2). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x3f) | 0x40;
  return bytes.toString("hex");
}
