/**
 * `minimix-proxy check --config FILE`: validates what the proxy would run with, without starting it.
 * One line per check, OK / WARN / FAIL:
 *   - the configuration (the same ConfigError messages as at start-up; the CLI exits 2 on those),
 *   - each certificate/key pair: readable, parseable, key matches, chain, expiry (WARN under 14 days,
 *     FAIL once expired or not yet valid), and every served domain covered by some certificate,
 *   - the upstream, per served domain: TCP (or direct TLS), STARTTLS, certificate verification, and
 *     the SASL mechanisms its stream features offer.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type * as net from "node:net";
import * as tls from "node:tls";
import { NS_SASL } from "../core/xml/ns.js";
import { pickMechanism } from "../core/sasl/scram.js";
import { certDnsNames, normalizeName } from "../tls/x509-names.js";
import { DEFAULTS, formatCidr, type Config, type HostPort } from "./config.js";
import { FrameQueue } from "./stream/frame-queue.js";
import { XmppConnection } from "./stream/xmpp-connection.js";
import { upstreamTarget } from "./upstream/target.js";
import { connectSocket, offersStartTls, openStream, requiresTls, startTls, type UpstreamTarget } from "./upstream/connect.js";
import { UpstreamError } from "./upstream/errors.js";
import { FileCredentialStore } from "./credentials/file-store.js";
import { CredentialStoreError } from "./credentials/store.js";

export type CheckLevel = "OK" | "WARN" | "FAIL";

export interface CheckResult {
  level: CheckLevel;
  /** What was checked, e.g. "certificate /etc/…/fullchain.pem". */
  name: string;
  detail: string;
}

export interface CheckOptions {
  now?: Date;
  /** A certificate expiring within this many days is a WARN. */
  warnDays?: number;
  /** Skip the network probe of the upstream. */
  offline?: boolean;
}

export const EXPIRY_WARN_DAYS = 14;
const DAY_MS = 86_400_000;

const ok = (name: string, detail: string): CheckResult => ({ level: "OK", name, detail });
const warn = (name: string, detail: string): CheckResult => ({ level: "WARN", name, detail });
const failed = (name: string, detail: string): CheckResult => ({ level: "FAIL", name, detail });

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** One line per result: `OK   name: detail`. */
export function formatResult(r: CheckResult): string {
  return `${r.level.padEnd(4)} ${r.name}: ${r.detail.replace(/[\r\n]+/g, " ")}`;
}

/** 0 when nothing failed (warnings allowed), 1 otherwise. */
export function exitCode(results: readonly CheckResult[]): number {
  return results.some((r) => r.level === "FAIL") ? 1 : 0;
}

export function describeConfig(c: Config): CheckResult {
  const listeners = [
    ...c.listen.map((l) => `${formatHostPort(l)} starttls`),
    ...c.listenTls.map((l) => `${formatHostPort(l)} direct-tls`),
    ...(c.websocket?.listen ?? []).map((l) => `wss://${formatHostPort(l)}${c.websocket?.path ?? ""}`),
    ...(c.websocket?.listenPlain ?? []).map((l) => `ws://${formatHostPort(l)}${c.websocket?.path ?? ""}`),
  ].join(", ");
  const where = c.configFile ?? "command line";
  return ok("config", `${where} is valid: domain ${c.domains.join(", ")}; listen ${listeners}; upstream ${formatHostPort(c.upstream)} (${c.upstreamTls}); metrics ${c.metrics ? formatHostPort(c.metrics) : "off"}`);
}

export async function runChecks(c: Config, o: CheckOptions = {}): Promise<CheckResult[]> {
  const out = [describeConfig(c), ...checkCertificates(c, o)];
  out.push(...checkProxyProtocol(c));
  out.push(await checkCredentialStore(c));
  if (c.upstreamInsecure) out.push(warn("upstream", "upstream-insecure = true: the upstream certificate is not verified (testing only)"));
  if (!o.offline) for (const d of c.domains) out.push(...(await probeUpstream(c, d)));
  return out;
}

/** The client-leg SCRAM records under --state-dir (issue 12): readable and intact, or why not. Creates nothing. */
export async function checkCredentialStore(c: Config): Promise<CheckResult> {
  try {
    const r = await FileCredentialStore.inspect(c.stateDir);
    if ("missing" in r) return ok("credentials", `${r.dir}: none yet (created at the first start)`);
    return ok("credentials", `${r.dir}: ${r.accounts} account${r.accounts === 1 ? "" : "s"} with SCRAM records (not offered to clients yet: PLAIN only)`);
  } catch (err) {
    if (err instanceof CredentialStoreError) return failed("credentials", `${err.message} (${err.code}); the proxy will not start`);
    throw err;
  }
}

/**
 * --proxy-protocol / --proxy-protocol-from: who may vouch for client addresses. A /0 block trusts
 * everyone (anyone reaching the port can forge an address); a list without proxy-protocol does nothing.
 */
export function checkProxyProtocol(c: Config): CheckResult[] {
  const list = c.proxyProtocolFrom.map(formatCidr).join(", ");
  const isDefault = list === DEFAULTS.proxyProtocolFrom.map(formatCidr).join(", ");
  if (!c.proxyProtocol) {
    return isDefault ? [] : [warn("proxy-protocol-from", `${list}: has no effect, proxy-protocol is off`)];
  }
  const open = c.proxyProtocolFrom.filter((x) => x.prefix === 0).map(formatCidr);
  if (open.length > 0) {
    return [warn("proxy-protocol", `headers accepted from ${list}: ${open.join(", ")} trusts every address, so anyone who reaches the port can forge their address`)];
  }
  return [ok("proxy-protocol", `headers accepted only from ${list}${isDefault ? " (the default: loopback only; set proxy-protocol-from for a load balancer on another host)" : ""}; other sources are refused`)];
}

// ---------------------------------------------------------------------------------------------------
// Certificates

interface Loaded {
  file: string;
  names: string[];
}

function readable(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, "utf8") };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    return { error: `cannot read ${file}: ${why}` };
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function checkCertificates(c: Config, o: CheckOptions = {}): CheckResult[] {
  const now = o.now ?? new Date();
  const warnDays = o.warnDays ?? EXPIRY_WARN_DAYS;
  const out: CheckResult[] = [];
  if (c.certs.length === 0) {
    out.push(warn("certificates", `none configured: the proxy will use a self-signed certificate for ${c.domains.join(", ")} in ${c.stateDir}, which clients will not trust`));
  }
  const loaded: Loaded[] = [];
  for (const pair of c.certs) {
    const name = `certificate ${pair.certFile}`;
    const certText = readable(pair.certFile);
    const keyText = readable(pair.keyFile);
    if ("error" in certText) out.push(failed(name, certText.error));
    if ("error" in keyText) out.push(failed(`key ${pair.keyFile}`, keyText.error));
    if ("error" in certText || "error" in keyText) continue;

    const pems = certText.text.match(PEM_CERT) ?? [];
    let chain: X509Certificate[];
    try {
      if (pems.length === 0) throw new Error("no PEM certificate in it");
      chain = pems.map((p) => new X509Certificate(p));
    } catch (err) {
      out.push(failed(name, `not a PEM certificate: ${(err as Error).message}`));
      continue;
    }
    const leaf = chain[0]!;
    let key: KeyObject;
    try {
      key = createPrivateKey(keyText.text);
    } catch {
      out.push(failed(`key ${pair.keyFile}`, "not an unencrypted PEM private key"));
      continue;
    }
    if (!leaf.checkPrivateKey(key)) {
      out.push(failed(`key ${pair.keyFile}`, `is not the private key of ${pair.certFile}`));
      continue;
    }
    out.push(ok(`key ${pair.keyFile}`, `matches ${pair.certFile}`));
    try {
      tls.createSecureContext({ cert: certText.text, key: keyText.text, minVersion: "TLSv1.2" });
    } catch (err) {
      out.push(failed(name, `TLS rejects it: ${(err as Error).message}`));
      continue;
    }

    const names = certDnsNames(leaf);
    loaded.push({ file: pair.certFile, names });
    const notAfter = new Date(leaf.validTo);
    const notBefore = new Date(leaf.validFrom);
    const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
    const names1 = names.length > 0 ? names.join(", ") : "no DNS names";
    if (notAfter.getTime() <= now.getTime()) out.push(failed(name, `EXPIRED on ${notAfter.toISOString()} (${names1})`));
    else if (notBefore.getTime() > now.getTime()) out.push(failed(name, `not valid before ${notBefore.toISOString()} (${names1})`));
    else if (days < warnDays) out.push(warn(name, `expires in ${days} day${days === 1 ? "" : "s"}, on ${notAfter.toISOString()}: renew it, then reload with SIGHUP (${names1})`));
    else out.push(ok(name, `valid until ${notAfter.toISOString()} (${days} days) for ${names1}`));

    const selfSigned = leaf.issuer === leaf.subject && leaf.verify(leaf.publicKey);
    if (selfSigned) out.push(warn(name, "self-signed: clients will not trust it unless told to"));
    else if (chain.length === 1) out.push(warn(name, "holds only the server certificate, no intermediates: clients may not build a chain (with Let's Encrypt use fullchain.pem, not cert.pem)"));
    else {
      const broken = chain.findIndex((cert, i) => i > 0 && !chain[i - 1]!.verify(cert.publicKey));
      if (broken > 0) out.push(warn(name, `certificate ${broken + 1} in the file did not issue certificate ${broken} (chain out of order?)`));
    }
  }

  for (const d of c.domains) {
    const host = normalizeName(d);
    const dot = host.indexOf(".");
    const wildcard = dot > 0 ? `*.${host.slice(dot + 1)}` : undefined;
    const by = loaded.find((l) => l.names.includes(host) || (wildcard !== undefined && l.names.includes(wildcard)));
    if (by) out.push(ok(`domain ${d}`, `covered by ${by.file}`));
    else if (c.certs.length > 0) out.push(failed(`domain ${d}`, loaded.length > 0 ? "no configured certificate names it: clients will reject the proxy's certificate" : "no usable certificate"));
  }

  if (c.upstreamCa !== undefined) {
    const ca = readable(c.upstreamCa);
    if ("error" in ca) out.push(failed(`upstream-ca ${c.upstreamCa}`, ca.error));
    else {
      const n = (ca.text.match(PEM_CERT) ?? []).length;
      out.push(n > 0 ? ok(`upstream-ca ${c.upstreamCa}`, `${n} CA certificate${n === 1 ? "" : "s"}`) : failed(`upstream-ca ${c.upstreamCa}`, "no PEM certificate in it"));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Upstream

/** A finding of the probe itself (not an UpstreamError of the shared connect steps). */
class ProbeError extends Error {}

/**
 * The check's wording for a failure of the shared upstream steps (connect.ts): shorter than the
 * log messages, since each line already names the upstream, and with the step that was awaited.
 */
function probeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof ProbeError) return err.message;
  if (!(err instanceof UpstreamError)) return `unexpected: ${(err as Error).message}`;
  const step = err.step ?? "?";
  switch (err.code) {
    case "UPSTREAM_TIMEOUT":
      return `no answer in ${timeoutMs} ms (${step})`;
    case "UPSTREAM_CLOSED":
      return err.cause ? `connection lost (${step}): ${err.cause.message}` : `the server closed the stream (${step})`;
    case "UPSTREAM_STREAM_ERROR":
      return `stream error ${err.condition}${err.text ? ` (${err.text})` : ""} (${step})`;
    default:
      return err.message;
  }
}

/** Connects to the upstream as the proxy would for `domain`, up to (not including) SASL. */
export async function probeUpstream(c: Config, domain: string): Promise<CheckResult[]> {
  const target = `upstream ${formatHostPort(c.upstream)}`;
  const name = c.domains.length > 1 ? `${target} for ${domain}` : target;
  const out: CheckResult[] = [];
  const started = Date.now();
  let socket: net.Socket;
  let t: UpstreamTarget;
  try {
    // the same target (TLS options, limits) the proxy itself would use
    t = upstreamTarget(c, domain, c.upstreamCa !== undefined ? readFileSync(c.upstreamCa) : undefined);
    socket = await connectSocket(t);
  } catch (err) {
    // Node's own words (e.g. "connect ECONNREFUSED 127.0.0.1:5222") say most here
    const why = !(err instanceof UpstreamError) ? (err as Error).message
      : err.code === "UPSTREAM_TIMEOUT" ? `no connection in ${c.upstreamTimeoutMs} ms`
      : err.cause?.message ?? err.message;
    out.push(failed(name, `${c.upstreamTls === "direct" ? "direct TLS" : "TCP"} connect failed: ${why}`));
    return out;
  }
  const describeTls = (s: net.Socket): string => {
    const t = s as tls.TLSSocket;
    const verified = c.upstreamInsecure ? "certificate NOT verified (upstream-insecure)" : `certificate verified for ${domain}`;
    return `${t.getProtocol?.() ?? "TLS"}, ${verified}`;
  };
  if (c.upstreamTls === "direct") out.push(ok(name, `direct TLS connected in ${Date.now() - started} ms: ${describeTls(socket)}`));
  else out.push(ok(name, `TCP connected in ${Date.now() - started} ms`));

  const q = new FrameQueue();
  const conn = new XmppConnection(socket, q, { limits: t.limits, keepaliveMs: 0 });
  try {
    let f = await openStream(conn, q, t);
    if (c.upstreamTls === "starttls") {
      if (!offersStartTls(f)) throw new ProbeError("does not offer STARTTLS (set upstream-tls = \"direct\" if it only speaks direct TLS)");
      try {
        await startTls(conn, q, t);
      } catch (err) {
        if (!(err instanceof UpstreamError) || err.code !== "UPSTREAM_TLS") throw err;
        if (err.cause === undefined) throw new ProbeError("refused STARTTLS");
        throw new ProbeError(`TLS failed: ${err.cause.message}${c.upstreamCa ? "" : " (set upstream-ca for a private CA)"}`);
      }
      out.push(ok(name, `STARTTLS: ${describeTls(conn.socket)}`));
      f = await openStream(conn, q, t);
    } else if (c.upstreamTls === "none") {
      if (requiresTls(f)) throw new ProbeError("requires TLS on this connection (upstream-tls none needs the server to accept plain c2s on loopback: Prosody c2s_require_encryption = false, ejabberd starttls_required: false)");
      out.push(ok(name, "plain TCP on loopback (upstream-tls none): the upstream leg is not encrypted, as configured"));
    }
    const offered = (f.getChild("mechanisms", NS_SASL)?.getChildren("mechanism") ?? []).map((m) => m.getText().trim());
    const pick = pickMechanism(offered);
    const list = offered.join(" ") || "none";
    if (pick === null) out.push(failed(name, `SASL mechanisms offered: ${list}; the proxy needs SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN`));
    else if (pick === "PLAIN") out.push(warn(name, `SASL mechanisms offered: ${list}; only PLAIN is usable, so the proxy keeps the password (not a SCRAM key) in memory for the account session`));
    else out.push(ok(name, `SASL mechanisms offered: ${list}; the proxy will use ${pick}`));
  } catch (err) {
    out.push(failed(name, probeFailure(err, c.upstreamTimeoutMs)));
  } finally {
    conn.end(200);
  }
  return out;
}
