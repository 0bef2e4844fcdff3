/**
 * Node-to-node forwarding (docs/architecture.md §8.7): a session whose account another node owns is
 * piped to that node, which serves it as its own. The link is TLS (the owner presents its XMPP
 * certificate; identity is proven by the shared secret, not the certificate), authenticated both ways
 * by HMAC-SHA256 over the TLS connection's exporter value (RFC 5705/8446 §7.5), so a MAC cannot be
 * replayed on another connection and a man in the middle (two TLS connections) cannot relay it:
 *
 *   forwarder → owner:  one JSON line {v, account, domain, ip, from, cb, transport?, mac}
 *   owner → forwarder:  one JSON line {v, ok, node, mac} (ok false: it does not hold the account's lease)
 *   forwarder → owner:  a stream header and the client's <auth/> as the client sent it, then the
 *                       client's bytes as they come; owner → client: everything the owner writes.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import * as tls from "node:tls";
import type { Logger } from "../log.js";

export const FORWARD_VERSION = 1;
const MAX_LINE = 65_536;
const LABEL = "EXPORTER-minimix-cluster-forward";

export interface ForwardHeader {
  v: number;
  /** Lower-case bare JID of the account (from the client's SASL authcid). */
  account: string;
  domain: string;
  /** The client's address. */
  ip: string;
  /** The forwarding node. */
  from: string;
  /** Channel-binding data of the client's TLS connection (type → base64), so -PLUS verifies on the owner. */
  cb: Record<string, string>;
  /**
   * How the client connected to the forwarding node, so that the owner can send it elsewhere with
   * `<see-other-host/>` at SIGTERM on the right port (docs/architecture.md §8.7). Absent from a node of an
   * earlier version: the owner then ends the stream with `<system-shutdown/>`.
   */
  transport?: "starttls" | "direct-tls";
  /**
   * The client is on WebSocket (its forwarding node translates, ws-splice.ts): at SIGTERM the owner sends
   * it on with an RFC 7395 §3.6.1 `<close see-other-uri/>` on the link, which that node passes on.
   * A separate field, not a `transport` value, so that an owner of an earlier version (which refuses an
   * unknown transport) still accepts the session; it ignores this field.
   */
  websocket?: true;
}

export interface ForwardReply {
  v: number;
  ok: boolean;
  node: string;
}

function exporter(s: tls.TLSSocket): Buffer {
  return s.exportKeyingMaterial(32, LABEL, Buffer.alloc(0));
}

function mac(secret: Buffer, role: "request" | "reply", ekm: Buffer, body: string): string {
  return createHmac("sha256", secret).update(`minimix-forward-${role}-v${FORWARD_VERSION}\n`).update(ekm).update("\n").update(body).digest("base64");
}

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a, "base64");
  const y = Buffer.from(b, "base64");
  return x.length === y.length && x.length === 32 && timingSafeEqual(x, y);
}

/** Reads one line (bounded) from `s`; the bytes after it are put back. */
export function readLine(s: tls.TLSSocket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, line?: string, rest?: Buffer): void => {
      clearTimeout(timer);
      s.off("data", onData);
      s.off("close", onClose);
      s.off("error", onClose);
      if (err) return reject(err);
      s.pause();
      if (rest && rest.length > 0) s.unshift(rest);
      resolve(line!);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) return done(undefined, buf.subarray(0, nl).toString("utf8"), buf.subarray(nl + 1));
      if (buf.length > MAX_LINE) done(new Error("header line too long"));
    };
    const onClose = (): void => done(new Error("connection closed before the header"));
    const timer = setTimeout(() => done(new Error("no header in time")), timeoutMs);
    s.on("data", onData);
    s.on("close", onClose);
    s.on("error", onClose);
    s.resume();
  });
}

/** The owner's side: checks the forwarder's line; the reply is sent by `answer`. */
export function verifyRequest(line: string, secret: Buffer, s: tls.TLSSocket): ForwardHeader {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error("header is not JSON");
  }
  if (typeof v !== "object" || v === null) throw new Error("header is not an object");
  const { mac: m, ...rest } = v as Record<string, unknown>;
  if (typeof m !== "string" || !sameMac(m, mac(secret, "request", exporter(s), JSON.stringify(rest)))) throw new Error("bad MAC");
  const h = rest as Partial<ForwardHeader>;
  if (h.v !== FORWARD_VERSION || typeof h.account !== "string" || typeof h.domain !== "string" || typeof h.ip !== "string"
    || typeof h.from !== "string" || typeof h.cb !== "object" || h.cb === null) throw new Error("bad header fields");
  for (const x of Object.values(h.cb)) if (typeof x !== "string") throw new Error("bad channel-binding data");
  if (h.transport !== undefined && h.transport !== "starttls" && h.transport !== "direct-tls") throw new Error("bad transport");
  if (h.websocket !== undefined && h.websocket !== true) throw new Error("bad websocket flag");
  return h as ForwardHeader;
}

export function answer(s: tls.TLSSocket, secret: Buffer, reply: ForwardReply): void {
  const body = JSON.stringify(reply);
  s.write(`${JSON.stringify({ ...reply, mac: mac(secret, "reply", exporter(s), body) })}\n`);
}

/**
 * The forwarder's side: a TLS connection to `address`, the request sent, the owner's reply verified.
 * Resolves with the link, ready for the replayed bytes and the pipe; rejects (and closes it) when the
 * owner is unreachable, refuses (it does not hold the lease), or does not prove the secret.
 */
export async function openLink(address: { host: string; port: number }, owner: string, header: ForwardHeader, secret: Buffer, timeoutMs: number): Promise<tls.TLSSocket> {
  const s = tls.connect({ host: address.host, port: address.port, rejectUnauthorized: false, minVersion: "TLSv1.3", servername: undefined });
  s.setNoDelay(true);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("connect timed out")), timeoutMs);
      s.once("secureConnect", () => (clearTimeout(t), resolve()));
      s.once("error", (e) => (clearTimeout(t), reject(e)));
    });
    const body = JSON.stringify(header);
    s.write(`${JSON.stringify({ ...header, mac: mac(secret, "request", exporter(s), body) })}\n`);
    const line = await readLine(s, timeoutMs);
    const v = JSON.parse(line) as Record<string, unknown>;
    const { mac: m, ...rest } = v;
    if (typeof m !== "string" || !sameMac(m, mac(secret, "reply", exporter(s), JSON.stringify(rest)))) throw new Error("the owner did not prove the cluster secret");
    const r = rest as Partial<ForwardReply>;
    if (r.node !== owner) throw new Error(`answered by node ${String(r.node)}, not ${owner}`);
    if (r.ok !== true) throw new Error("the owner refused: it does not hold the account's lease");
    return s;
  } catch (err) {
    s.destroy();
    throw err;
  }
}

/** Reads the cluster secret: at least 32 bytes, a trailing newline ignored. */
export function parseSecret(raw: Buffer): Buffer {
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
  const s = raw.subarray(0, end);
  if (s.length < 32) throw new Error(`the cluster secret must be at least 32 bytes, it has ${s.length}`);
  return Buffer.from(s);
}

/** The account a SASL <auth/> names (PLAIN authcid, SCRAM n=), lower-case, with `domain`; undefined when it cannot tell. */
export function authAccount(mechanism: string, base64: string, domain: string): string | undefined {
  let text: string;
  try {
    text = Buffer.from(base64.trim(), "base64").toString("utf8");
  } catch {
    return undefined;
  }
  let user: string | undefined;
  if (mechanism === "PLAIN") {
    const parts = text.split("\0");
    if (parts.length !== 3) return undefined;
    user = parts[1];
  } else if (mechanism.startsWith("SCRAM-")) {
    // gs2-header "n,," / "y,," / "p=type,," [a=authzid]; then "n=user,r=nonce" (RFC 5802 §7)
    const m = /^[nyp][^,]*,[^,]*,n=([^,]*),/.exec(text);
    user = m?.[1]?.replace(/=2C/g, ",").replace(/=3D/g, "=");
  }
  if (user === undefined || user === "" || /[@/\s]/.test(user)) return undefined;
  return `${user.toLowerCase()}@${domain.toLowerCase()}`;
}
