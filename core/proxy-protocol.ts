/**
 * HAProxy PROXY protocol, versions 1 (text) and 2 (binary), receiving side: lets a load
 * balancer in front of the proxy (HAProxy, nginx, sslh) tell us the real client address.
 * Spec: haproxy.org/download/2.9/doc/proxy-protocol.txt (§2.1 v1, §2.2 v2).
 * Pure: bytes in, a verdict out.
 */
export interface ProxiedAddress {
  address: string;
  port: number;
}

export type ProxyHeaderResult =
  | { kind: "incomplete" }
  | { kind: "error"; reason: string }
  /** `source` is absent for v1 UNKNOWN, v2 LOCAL and v2 families without an IP address. */
  | { kind: "ok"; consumed: number; version: 1 | 2; source?: ProxiedAddress };

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from("PROXY ", "latin1");
/** §2.1: a v1 line is at most 107 bytes including CRLF. */
const V1_MAX = 107;
/** v2 address block we accept at most (addresses + TLVs); the spec allows up to 65535, nobody needs it. */
const V2_MAX_LEN = 2048;

/** The longest a caller must buffer before parseProxyHeader can decide. */
export const PROXY_HEADER_MAX_BYTES = 16 + V2_MAX_LEN;

export function parseProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return { kind: "incomplete" };
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return { kind: "error", reason: "no PROXY protocol header" };
}

function prefixMatches(buf: Buffer, prefix: Buffer): boolean | "short" {
  const n = Math.min(buf.length, prefix.length);
  if (!buf.subarray(0, n).equals(prefix.subarray(0, n))) return false;
  return n < prefix.length ? "short" : true;
}

function parseV1(buf: Buffer): ProxyHeaderResult {
  const p = prefixMatches(buf, V1_PREFIX);
  if (p === false) return { kind: "error", reason: "no PROXY protocol header" };
  if (p === "short") return { kind: "incomplete" };
  const crlf = buf.indexOf("\r\n", 0, "latin1");
  if (crlf < 0) return buf.length >= V1_MAX ? { kind: "error", reason: "v1 header too long" } : { kind: "incomplete" };
  if (crlf + 2 > V1_MAX) return { kind: "error", reason: "v1 header too long" };
  const parts = buf.toString("latin1", 0, crlf).split(" ");
  const consumed = crlf + 2;
  if (parts[1] === "UNKNOWN") return { kind: "ok", consumed, version: 1 };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) return { kind: "error", reason: "bad v1 header" };
  const [, fam, src, , sport] = parts as [string, string, string, string, string, string];
  const port = Number(sport);
  if (!/^\d{1,5}$/.test(sport) || port > 65535) return { kind: "error", reason: "bad v1 source port" };
  const ok = fam === "TCP4" ? /^(\d{1,3})(\.\d{1,3}){3}$/.test(src) && src.split(".").every((o) => Number(o) <= 255) : /^[0-9a-fA-F:.]+$/.test(src) && src.includes(":");
  if (!ok) return { kind: "error", reason: "bad v1 source address" };
  return { kind: "ok", consumed, version: 1, source: { address: src, port } };
}

function parseV2(buf: Buffer): ProxyHeaderResult {
  const p = prefixMatches(buf, V2_SIG);
  if (p === false) return { kind: "error", reason: "no PROXY protocol header" };
  if (p === "short" || buf.length < 16) return { kind: "incomplete" };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: "error", reason: "unsupported PROXY protocol version" };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { kind: "error", reason: "unknown v2 command" };
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_LEN) return { kind: "error", reason: "v2 header too long" };
  if (buf.length < 16 + len) return { kind: "incomplete" };
  const consumed = 16 + len;
  // §2.2: LOCAL (health checks): keep the real connection endpoints
  if (cmd === 0) return { kind: "ok", consumed, version: 2 };
  const fam = famProto >> 4;
  const body = buf.subarray(16, 16 + len);
  if (fam === 1) {
    if (len < 12) return { kind: "error", reason: "v2 IPv4 block too short" };
    return { kind: "ok", consumed, version: 2, source: { address: [...body.subarray(0, 4)].join("."), port: body.readUInt16BE(8) } };
  }
  if (fam === 2) {
    if (len < 36) return { kind: "error", reason: "v2 IPv6 block too short" };
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { kind: "ok", consumed, version: 2, source: { address: groups.join(":"), port: body.readUInt16BE(32) } };
  }
  // AF_UNSPEC / AF_UNIX: no IP to report, the connection itself is still valid
  return { kind: "ok", consumed, version: 2 };
}
