import * as net from "node:net";
import * as tls from "node:tls";
import type { Element } from "ltx";
import { parseStanza } from "../../core/xml/element.js";
import type { FramerLimits } from "../../core/xml/framer.js";
import { NS_SASL, NS_STREAMS_ERR, NS_TLS } from "../../core/xml/ns.js";
import { streamHeader } from "../../core/xml/stream.js";
import { ScramClient, pickMechanism, type ScramHash } from "../../core/sasl/scram.js";
import { SaltedPasswordCache } from "../../core/sasl/salted-cache.js";
import { SaslError } from "../../core/sasl/errors.js";
import { decodeSaslBase64, encodeSaslBase64 } from "../../core/sasl/base64.js";
import { encodePlain } from "../../core/sasl/plain.js";
import { FrameQueue, TimeoutError, type Frame } from "../stream/frame-queue.js";
import { XmppConnection } from "../stream/xmpp-connection.js";
import { UpstreamError } from "./errors.js";

export interface UpstreamTarget {
  host: string;
  port: number;
  /** "none": plain TCP, allowed by the config only to a loopback address (docs/architecture.md §3.6). */
  tls: "starttls" | "direct" | "none";
  /** The XMPP domain (stream `to`, TLS servername and certificate identity). */
  domain: string;
  ca?: string | Buffer;
  insecure: boolean;
  timeoutMs: number;
  limits: FramerLimits;
  keepaliveMs: number;
}

/**
 * What the proxy may keep instead of a password (docs/architecture.md §3.3): SCRAM's SaltedPassword,
 * or ClientKey and ServerKey (what a verified client proof reveals, §3.5), for the server's salt and
 * iteration count of `hash`. Either logs in with exactly SCRAM-<hash>, and only while the server's
 * salt and count stay the same.
 */
export type ScramSecret = { hash: ScramHash; salt: Buffer; iterations: number } &
  ({ saltedPassword: Buffer } | { clientKey: Buffer; serverKey: Buffer });
/** The SaltedPassword form: what a SCRAM login with the password leaves. */
export type SaltedPasswordSecret = Extract<ScramSecret, { saltedPassword: Buffer }>;
export type UpstreamSecret = { password: string } | ScramSecret;

export interface AuthenticatedUpstream {
  conn: XmppConnection;
  /** The frame queue still owning `conn`; hand frames over with drain() when taking ownership. */
  queue: FrameQueue;
  /** Post-authentication stream features, as the server sent them. */
  features: Element;
  mechanism: string;
  /** The SASL mechanisms the server offered before authentication (RFC 6120 §6.4.1). */
  saslMechanisms: string[];
  /** Present after a SCRAM exchange with the password: what the account session may re-use. */
  scram?: SaltedPasswordSecret;
  connectMs: number;
}

/**
 * SASL payloads from the upstream go through the same strict decoder as the clients' (RFC 6120
 * §6.4.2: no line breaks or whitespace inside, canonical padding); a server sending anything else
 * fails the exchange like any other malformed SCRAM message.
 */
const unb64 = (s: string): string => decodeSaslBase64(s).toString("utf8");

async function expect(queue: FrameQueue, timeoutMs: number, what: string): Promise<Frame> {
  let f: Frame;
  try {
    f = await queue.next(timeoutMs);
  } catch (err) {
    if (err instanceof TimeoutError) throw new UpstreamError("UPSTREAM_TIMEOUT", "remote-connection-failed", `upstream did not answer (${what})`, undefined, { step: what });
    if (err instanceof UpstreamError) throw err;
    const cause = err as Error;
    throw new UpstreamError("UPSTREAM_CLOSED", "remote-connection-failed", `upstream connection lost (${what}): ${cause.message}`, undefined, { step: what, cause });
  }
  if (f.kind === "close") throw new UpstreamError("UPSTREAM_CLOSED", "remote-connection-failed", `upstream closed the stream (${what})`, undefined, { step: what });
  if (f.kind === "stanza" && f.name === "stream:error") {
    // RFC 6120 §4.9.2: one condition element in the streams namespace, an optional <text/>
    const el = parseStanza(f.bytes);
    const cond = el.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS_STREAMS_ERR && c.name !== "text");
    const text = el.getChildText("text", NS_STREAMS_ERR) ?? undefined;
    throw new UpstreamError("UPSTREAM_STREAM_ERROR", cond?.name ?? "undefined-condition", `upstream stream error ${cond?.name ?? "?"} (${what})`, text, { step: what });
  }
  return f;
}

/** The next stanza (stream headers skipped); a stream error, close or timeout → UpstreamError with `step`. */
async function expectStanza(queue: FrameQueue, timeoutMs: number, what: string): Promise<Element> {
  for (;;) {
    const f = await expect(queue, timeoutMs, what);
    if (f.kind === "stanza") return parseStanza(f.bytes);
    // a header arrives before the features after every (re)start
  }
}

/** Sends a stream header and returns the stream features (RFC 6120 §4.3.2). */
export async function openStream(conn: XmppConnection, queue: FrameQueue, t: UpstreamTarget): Promise<Element> {
  conn.write(streamHeader({ to: t.domain }));
  const features = await expectStanza(queue, t.timeoutMs, "stream features");
  if (features.name !== "stream:features") {
    throw new UpstreamError("UPSTREAM_PROTOCOL", "remote-connection-failed", `expected stream features, got <${features.name}>`);
  }
  return features;
}

/**
 * One secure context per trusted CA (the --upstream-ca contents, or Node's store): given `ca`,
 * tls.connect would build a new context and parse the PEM for every connection, which the profile of a
 * login through the proxy showed as its largest JavaScript cost (bench m8).
 */
const upstreamContexts = new Map<string | Buffer | undefined, tls.SecureContext>();

function upstreamContext(ca: string | Buffer | undefined): tls.SecureContext {
  let c = upstreamContexts.get(ca);
  if (c === undefined) {
    c = tls.createSecureContext({ minVersion: "TLSv1.2", ...(ca ? { ca } : {}) });
    if (upstreamContexts.size >= 16) upstreamContexts.clear(); // a handful of targets at most; never grows unbounded
    upstreamContexts.set(ca, c);
  }
  return c;
}

/**
 * The last TLS session (ticket) each upstream gave, per trust context and target: the next connection
 * offers it (RFC 8446 §2.2 resumption; RFC 5077 tickets on TLS 1.2), which would save the certificate
 * chain, its verification and the server's signature of a full handshake. Only tickets from
 * connections whose certificate verified are kept. A server that does not resume what it was offered
 * is not offered tickets again (until a restart): Prosody 0.12 and ejabberd 23.01 both send TLS 1.3
 * tickets and resume none (checked; ejabberd has no resumption, processone/ejabberd#1436), so against
 * them this costs one offered ticket per target and nothing after; a server that resumes gets
 * shorter handshakes.
 */
const tickets = new Map<tls.SecureContext, Map<string, Buffer | "refused">>();

export type UpstreamResumption = "untried" | "offered" | "refused";

function ticketKey(t: UpstreamTarget): string {
  return `${t.host}|${t.port}|${t.domain}|${t.tls}|${t.insecure ? "insecure" : "verified"}`;
}

function ticketsOf(t: UpstreamTarget): Map<string, Buffer | "refused"> {
  const ctx = upstreamContext(t.ca);
  let m = tickets.get(ctx);
  if (m === undefined) {
    if (tickets.size >= 16) tickets.clear();
    m = new Map();
    tickets.set(ctx, m);
  }
  return m;
}

/** What the next connection to `t` does about TLS resumption (for tests and status). */
export function upstreamResumption(t: UpstreamTarget): UpstreamResumption {
  const v = ticketsOf(t).get(ticketKey(t));
  return v === undefined ? "untried" : v === "refused" ? "refused" : "offered";
}

/** Keeps the tickets `s` receives for the next connection to `t`; notes a server that did not resume `offered`. */
export function keepTickets(s: tls.TLSSocket, t: UpstreamTarget, offered: boolean): void {
  const m = ticketsOf(t);
  const key = ticketKey(t);
  let secured = false;
  s.once("secureConnect", () => {
    secured = true;
    if (offered && !s.isSessionReused()) m.set(key, "refused");
  });
  const keep = (session: Buffer): void => {
    if ((!t.insecure && !s.authorized) || m.get(key) === "refused") return;
    if (m.size >= 64) m.clear(); // a handful of targets at most
    m.set(key, session);
  };
  // a TLS 1.2 ticket comes before the handshake ends (and the certificate is judged); TLS 1.3 ones after
  s.on("session", (session: Buffer) => (secured ? keep(session) : s.once("secureConnect", () => keep(session))));
}

/** TLS options for the upstream leg, direct TLS and STARTTLS alike. */
export function tlsOptions(t: UpstreamTarget): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = {
    secureContext: upstreamContext(t.ca),
    rejectUnauthorized: !t.insecure,
    ALPNProtocols: t.tls === "direct" ? ["xmpp-client"] : undefined,
  };
  const session = ticketsOf(t).get(ticketKey(t));
  if (session !== undefined && session !== "refused") o.session = session;
  if (!net.isIP(t.domain)) o.servername = t.domain;
  return o;
}

/**
 * TCP, or direct TLS (XEP-0368), to the upstream. Rejects with UpstreamError UPSTREAM_TIMEOUT, or
 * UPSTREAM_CONNECT / UPSTREAM_TLS whose `cause` is Node's socket error.
 */
export function connectSocket(t: UpstreamTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let s: net.Socket;
    if (t.tls === "direct") {
      const o = tlsOptions(t);
      const secure = tls.connect({ host: t.host, port: t.port, ...o });
      keepTickets(secure, t, o.session !== undefined);
      s = secure;
    } else {
      s = net.connect({ host: t.host, port: t.port });
    }
    const ready = t.tls === "direct" ? "secureConnect" : "connect";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError("UPSTREAM_TIMEOUT", "remote-connection-failed", `upstream ${t.host}:${t.port} did not connect in ${t.timeoutMs} ms`));
    }, t.timeoutMs);
    s.once(ready, () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      const isTls = err.code?.startsWith("ERR_TLS") || /certificate|SSL|TLS/i.test(err.message) || (err.code?.includes("CERT") ?? false);
      reject(new UpstreamError(isTls ? "UPSTREAM_TLS" : "UPSTREAM_CONNECT", "remote-connection-failed",
        `upstream ${t.host}:${t.port}: ${err.code ?? ""} ${err.message}`.trim(), undefined, { cause: err }));
    });
  });
}

/**
 * Whether a server insists on TLS before anything else: STARTTLS offered as mandatory-to-negotiate
 * (RFC 6120 §5.3.1, <required/>), or no SASL mechanism offered without it (Prosody 0.12 with
 * c2s_require_encryption sends <starttls/> with no <required/> child and no mechanisms).
 */
export function requiresTls(features: Element): boolean {
  const st = features.getChild("starttls", NS_TLS);
  if (st === undefined) return false;
  return st.getChild("required") !== undefined || offeredMechanisms(features).length === 0;
}

/** Whether stream features offer STARTTLS (RFC 6120 §5.4.1). */
export function offersStartTls(features: Element): boolean {
  return features.getChild("starttls", NS_TLS) !== undefined;
}

/**
 * RFC 6120 §5.4.2: <starttls/>, <proceed/>, then the TLS handshake on the same socket (the caller
 * restarts the stream). UPSTREAM_TLS without `cause` when the server refused, with the handshake or
 * certificate error as `cause` when TLS failed.
 */
export async function startTls(conn: XmppConnection, queue: FrameQueue, t: UpstreamTarget): Promise<void> {
  conn.write(`<starttls xmlns='${NS_TLS}'/>`);
  const answer = await expectStanza(queue, t.timeoutMs, "STARTTLS");
  if (answer.name !== "proceed") throw new UpstreamError("UPSTREAM_TLS", "remote-connection-failed", "upstream refused STARTTLS", undefined, { step: "STARTTLS" });
  try {
    const o = tlsOptions(t);
    await conn.upgradeClient(o, t.timeoutMs, (secure) => keepTickets(secure, t, o.session !== undefined));
  } catch (err) {
    const cause = err as Error;
    throw new UpstreamError("UPSTREAM_TLS", "remote-connection-failed", `upstream TLS: ${cause.message}`, undefined, { step: "STARTTLS", cause });
  }
}

/** The SASL mechanisms a features element offers (RFC 6120 §6.4.1), as sent. */
export function offeredMechanisms(features: Element): string[] {
  return (features.getChild("mechanisms", NS_SASL)?.getChildren("mechanism") ?? []).map((m) => m.getText().trim());
}

async function authenticate(conn: XmppConnection, queue: FrameQueue, t: UpstreamTarget, features: Element,
  username: string, secret: UpstreamSecret): Promise<{ mechanism: string; scram?: SaltedPasswordSecret }> {
  const offered = offeredMechanisms(features);
  let mechanism: string | null = pickMechanism(offered);
  if (!("password" in secret)) {
    // a stored SCRAM secret only works with the very mechanism it was derived for
    const want = `SCRAM-${secret.hash}`;
    mechanism = offered.includes(want) ? want : null;
  }
  if (!mechanism) {
    throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `upstream offers no usable SASL mechanism (${offered.join(" ") || "none"})`);
  }
  if (mechanism === "PLAIN") {
    if (!("password" in secret)) throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", "PLAIN needs the password");
    conn.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${encodePlain(username, secret.password)}</auth>`);
    await saslOutcome(queue, t);
    return { mechanism };
  }
  const hash: ScramHash = "password" in secret ? (mechanism === "SCRAM-SHA-256" ? "SHA-256" : "SHA-1") : secret.hash;
  const client = new ScramClient(hash, username, "password" in secret ? { password: secret.password } : secret, { saltedPasswords });
  conn.write(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${encodeSaslBase64(client.clientFirst())}</auth>`);
  const challenge = await saslStep(queue, t);
  if (challenge.name !== "challenge") throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `unexpected <${challenge.name}> during SCRAM`);
  await finishScram(conn, queue, t, client, unb64(challenge.getText()));
  return { mechanism, scram: "password" in secret ? { hash, ...client.keys } : undefined };
}

/**
 * SaltedPasswords of PLAIN logins the server accepted, so a client logging in with its password again
 * costs no PBKDF2 here (core/sasl/salted-cache.ts: keyed under a per-process random key, LRU-bounded).
 */
const saltedPasswords = new SaltedPasswordCache(4096);

/** The server's next SASL element; a <failure/> → UpstreamError UPSTREAM_AUTH with its condition and text. */
export async function saslStep(queue: FrameQueue, t: UpstreamTarget): Promise<Element> {
  const el = await expectStanza(queue, t.timeoutMs, "SASL");
  if (el.name === "failure") {
    const cond = el.children.find((c): c is Element => typeof c !== "string" && c.name !== "text");
    const text = el.getChildText("text") ?? undefined;
    throw new UpstreamError("UPSTREAM_AUTH", cond?.name ?? "not-authorized", `upstream SASL failure: ${cond?.name ?? "?"}`, text);
  }
  return el;
}

/** client-final for `serverFirst`, then <success/> with a server signature that must verify (RFC 5802 §5). */
async function finishScram(conn: XmppConnection, queue: FrameQueue, t: UpstreamTarget, client: ScramClient, serverFirst: string): Promise<void> {
  let final: string;
  try {
    final = await client.clientFinalAsync(serverFirst);
  } catch (err) {
    conn.write(`<abort xmlns='${NS_SASL}'/>`);
    // a kept secret meets another salt or count: the password was changed on the server (§3.5)
    if (err instanceof SaslError && err.code === "SASL_NEEDS_PASSWORD") {
      throw new UpstreamError("UPSTREAM_AUTH", "credentials-expired", "the server's SCRAM salt or iteration count changed: the kept secret is stale", undefined, { stale: true });
    }
    throw new UpstreamError("UPSTREAM_AUTH", "temporary-auth-failure", `SCRAM: ${(err as Error).message}`);
  }
  conn.write(`<response xmlns='${NS_SASL}'>${encodeSaslBase64(final)}</response>`);
  const success = await saslOutcome(queue, t);
  try {
    client.verifyServerFinal(unb64(success.getText()));
  } catch {
    // RFC 5802 §5: a wrong server signature means we may be talking to an impostor
    throw new UpstreamError("UPSTREAM_AUTH", "temporary-auth-failure", "SCRAM server signature did not verify");
  }
}

async function saslOutcome(queue: FrameQueue, t: UpstreamTarget): Promise<Element> {
  const el = await saslStep(queue, t);
  if (el.name !== "success") throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `unexpected <${el.name}> after SASL`);
  return el;
}

/** A stream to the real server, TLS done, waiting for SASL (RFC 6120 §6.4.1). */
export interface PreAuthUpstream {
  conn: XmppConnection;
  queue: FrameQueue;
  /** The pre-authentication features: the SASL mechanisms the server offers. */
  features: Element;
  started: number;
}

/** Connect (TCP+STARTTLS or direct TLS) and read the SASL features. The connection is closed on failure. */
export async function openPreAuth(t: UpstreamTarget): Promise<PreAuthUpstream> {
  const started = Date.now();
  const socket = await connectSocket(t);
  const queue = new FrameQueue();
  const conn = new XmppConnection(socket, queue, { limits: t.limits, keepaliveMs: t.keepaliveMs });
  try {
    let features = await openStream(conn, queue, t);
    if (t.tls === "starttls") {
      if (!offersStartTls(features)) {
        throw new UpstreamError("UPSTREAM_TLS", "remote-connection-failed", "upstream does not offer STARTTLS");
      }
      await startTls(conn, queue, t);
      features = await openStream(conn, queue, t);
    } else if (t.tls === "none" && requiresTls(features)) {
      throw new UpstreamError("UPSTREAM_TLS", "remote-connection-failed",
        "upstream requires TLS on this connection (STARTTLS <required/>, no SASL offered): use --upstream-tls starttls, or let the server accept plain c2s on loopback (Prosody: c2s_require_encryption = false; ejabberd: starttls_required: false)");
    }
    return { conn, queue, features, started };
  } catch (err) {
    conn.end(500);
    throw err;
  }
}

/** After the server's <success/>: the stream restart (RFC 6120 §6.4.6) and the post-authentication features. */
export async function restartAfterAuth(pre: PreAuthUpstream, t: UpstreamTarget, mechanism: string): Promise<AuthenticatedUpstream> {
  pre.conn.restart();
  const features = await openStream(pre.conn, pre.queue, t);
  return { conn: pre.conn, queue: pre.queue, features, mechanism, saslMechanisms: offeredMechanisms(pre.features), connectMs: Date.now() - pre.started };
}

/** A SCRAM login upstream whose client-first went out before its secret was known (beginScram). */
export interface PendingScram {
  /** The mechanism ("SCRAM-<hash>"). */
  mechanism: string;
  /** client-final with `secret`, the server's verdict, the restart: the authenticated stream. */
  finish(secret: ScramSecret): Promise<AuthenticatedUpstream>;
  /** Not needed after all: the connection is closed. */
  abort(): void;
}

/**
 * SCRAM-<hash> upstream in two halves (docs/architecture.md §3.5): <auth/> with client-first goes out
 * now and the server-first is read, while the proxy's own client still computes the proof whose
 * ClientKey is the secret; finish() then needs one round trip and the restart. The connection is
 * closed on any failure. UPSTREAM_PROTOCOL when the server does not offer the mechanism.
 */
export async function beginScram(pre: PreAuthUpstream, t: UpstreamTarget, username: string, hash: ScramHash): Promise<PendingScram> {
  const mechanism = `SCRAM-${hash}`;
  try {
    const offered = offeredMechanisms(pre.features);
    if (!offered.includes(mechanism)) {
      throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `upstream does not offer ${mechanism} (${offered.join(" ") || "none"})`);
    }
    const client = new ScramClient(hash, username, "later");
    pre.conn.write(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${encodeSaslBase64(client.clientFirst())}</auth>`);
    const challenge = await saslStep(pre.queue, t);
    if (challenge.name !== "challenge") throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `unexpected <${challenge.name}> during SCRAM`);
    const serverFirst = unb64(challenge.getText());
    return {
      mechanism,
      finish: async (secret) => {
        try {
          client.supply(secret);
          await finishScram(pre.conn, pre.queue, t, client, serverFirst);
          return await restartAfterAuth(pre, t, mechanism);
        } catch (err) {
          pre.conn.end(500);
          throw err;
        }
      },
      abort: () => pre.conn.end(500),
    };
  } catch (err) {
    pre.conn.end(500);
    throw err;
  }
}

/**
 * Opens an authenticated stream to the real server: connect (TCP+STARTTLS or direct TLS),
 * SASL with the strongest mechanism offered (never -PLUS: the TLS channel differs on our two
 * legs, RFC 5802 §6), then the stream restart (RFC 6120 §6.4.6). Resource binding is left to
 * the caller (a client binds through us; the account session binds itself).
 */
export async function openUpstream(t: UpstreamTarget, username: string, secret: UpstreamSecret): Promise<AuthenticatedUpstream> {
  return loginOn(await openPreAuth(t), t, username, secret);
}

/** SASL and the stream restart on a connection openPreAuth made; it is closed on failure. */
export async function loginOn(pre: PreAuthUpstream, t: UpstreamTarget, username: string, secret: UpstreamSecret): Promise<AuthenticatedUpstream> {
  try {
    const auth = await authenticate(pre.conn, pre.queue, t, pre.features, username, secret);
    const up = await restartAfterAuth(pre, t, auth.mechanism);
    if (auth.scram) up.scram = auth.scram;
    return up;
  } catch (err) {
    pre.conn.end(500);
    throw err;
  }
}
