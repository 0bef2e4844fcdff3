import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { CertError } from "./cert-error.js";
import { certDnsNames, normalizeName } from "./x509-names.js";

export { CertError, type CertErrorCode } from "./cert-error.js";

export interface CertPair {
  certFile: string;
  keyFile: string;
}

export interface CertExpiry {
  file: string;
  domains: string[];
  notAfter: Date;
}

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

interface LoadedPair {
  certFile: string;
  /** The PEMs as read, for callers that need options rather than a context (tls.createServer). */
  certPem: string;
  keyPem: string;
  domains: string[];
  notAfter: Date;
  context: tls.SecureContext;
}

interface State {
  pairs: LoadedPair[];
  /** Exact and wildcard (`*.parent`) names → context; the first pair naming a domain wins. */
  byName: Map<string, tls.SecureContext>;
}

/**
 * The proxy's server certificates, chosen per SNI name. Everything is loaded and checked up front, and
 * `reload()` swaps in a new set only when every file loads, so a bad file on SIGHUP never leaves the proxy
 * without certificates.
 */
export class CertStore {
  private readonly pairsConfig: readonly CertPair[];
  private state: State;

  /** For tls.createServer / new tls.TLSSocket: picks the context for the client's SNI name. */
  readonly sniCallback: SniCallback = (servername, cb) => {
    cb(null, this.contextFor(servername));
  };

  constructor(pairs: readonly CertPair[]) {
    this.pairsConfig = pairs.map((p) => ({ ...p }));
    this.state = load(this.pairsConfig);
  }

  /** Exact name, then the `*.parent` wildcard (one label only, RFC 6125 §6.4.3), else the first pair. */
  contextFor(servername?: string): tls.SecureContext {
    return (servername === undefined ? undefined : lookup(this.state.byName, servername)) ?? this.defaultContext();
  }

  defaultContext(): tls.SecureContext {
    return (this.state.pairs[0] as LoadedPair).context;
  }

  /**
   * Options for `tls.createServer` / `server.setSecureContext`: the first pair as the default certificate
   * (used when a client sends no SNI, e.g. connects by IP) plus the SNI callback. Call again after reload().
   */
  serverOptions(): tls.TlsOptions {
    const first = this.state.pairs[0] as LoadedPair;
    return { cert: first.certPem, key: first.keyPem, minVersion: "TLSv1.2", SNICallback: this.sniCallback };
  }

  /** Whether some certificate is valid for `domain` (the default fallback does not count). */
  covers(domain: string): boolean {
    return lookup(this.state.byName, domain) !== undefined;
  }

  /** Every name (including wildcards) some certificate is valid for. */
  domains(): string[] {
    return [...this.state.byName.keys()];
  }

  expiry(): CertExpiry[] {
    return this.state.pairs.map((p) => ({ file: p.certFile, domains: [...p.domains], notAfter: new Date(p.notAfter) }));
  }

  /** Re-read every file; on any failure throw a CertError and keep serving the previous certificates. */
  reload(): void {
    this.state = load(this.pairsConfig);
  }
}

function lookup(byName: Map<string, tls.SecureContext>, servername: string): tls.SecureContext | undefined {
  const name = normalizeName(servername);
  const exact = byName.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf(".");
  if (dot <= 0) return undefined;
  return byName.get(`*.${name.slice(dot + 1)}`);
}

function load(pairs: readonly CertPair[]): State {
  if (pairs.length === 0) throw new CertError("CERT_NONE", "no certificate configured");
  const loaded = pairs.map(loadPair);
  const byName = new Map<string, tls.SecureContext>();
  for (const p of loaded) {
    for (const name of p.domains) if (!byName.has(name)) byName.set(name, p.context);
  }
  return { pairs: loaded, byName };
}

function loadPair(pair: CertPair): LoadedPair {
  const certPem = readPem(pair.certFile);
  const keyPem = readPem(pair.keyFile);

  let x509: X509Certificate;
  try {
    // A chain file is leaf first; X509Certificate parses the first certificate, which is the leaf.
    x509 = new X509Certificate(certPem);
  } catch (cause) {
    throw new CertError("CERT_PARSE", `not a PEM certificate: ${pair.certFile}`, { file: pair.certFile, cause });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    throw new CertError("CERT_PARSE", `not an unencrypted PEM private key: ${pair.keyFile}`, { file: pair.keyFile, cause });
  }
  if (!x509.checkPrivateKey(key)) {
    throw new CertError("CERT_KEY_MISMATCH", `${pair.keyFile} is not the key of ${pair.certFile}`, { file: pair.keyFile });
  }
  const domains = certDnsNames(x509);
  if (domains.length === 0) {
    throw new CertError("CERT_NO_NAMES", `${pair.certFile} names no DNS SAN and no CN`, { file: pair.certFile });
  }

  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert: certPem, key: keyPem, minVersion: "TLSv1.2" });
  } catch (cause) {
    throw new CertError("CERT_PARSE", `TLS rejected ${pair.certFile}: ${errorMessage(cause)}`, { file: pair.certFile, cause });
  }
  return { certFile: pair.certFile, certPem, keyPem, domains, notAfter: new Date(x509.validTo), context };
}

function readPem(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new CertError("CERT_READ", `cannot read ${file}: ${errorMessage(cause)}`, { file, cause });
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
