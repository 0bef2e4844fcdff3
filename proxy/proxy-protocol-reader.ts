import { BlockList, isIP, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { PROXY_HEADER_MAX_BYTES, parseProxyHeader, type ProxiedAddress } from "../core/proxy-protocol.js";
import type { Cidr } from "./config.js";

export class ProxyHeaderError extends Error {
  readonly code = "PROXY_HEADER_INVALID";
}

export interface ProxyHeader {
  /** The client address the load balancer reported; absent for LOCAL/UNKNOWN headers. */
  source: ProxiedAddress | undefined;
  /** Bytes that followed the header in the same read (the client's first bytes). */
  rest: Buffer;
}

/**
 * Reads a PROXY protocol header (v1 or v2) from the start of `socket` before anything else
 * touches it. The socket is left paused; the caller hands `rest` on (unshift for a plain stream,
 * socketWithPrefix for TLS). Rejects on a bad or missing header, or after `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, h?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(h!);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.kind === "incomplete") {
        if (buf.length > PROXY_HEADER_MAX_BYTES) done(new ProxyHeaderError("PROXY header too long"));
        return;
      }
      if (r.kind === "error") return done(new ProxyHeaderError(r.reason));
      done(undefined, { source: r.source, rest: buf.subarray(r.consumed) });
    };
    const onClose = (): void => done(new ProxyHeaderError("connection closed before the PROXY header"));
    const timer = setTimeout(() => done(new ProxyHeaderError("no PROXY header in time")), timeoutMs);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

/**
 * A duplex over `socket` that first yields `prefix`. Needed to start server-side TLS on bytes
 * already read: a TLSSocket wrapping a net.Socket reads from its handle and would never see
 * data put back with unshift() (measured: the handshake then stalls).
 */
export function socketWithPrefix(socket: Socket, prefix: Buffer): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  if (prefix.length > 0) d.push(prefix);
  socket.on("data", (c: Buffer) => {
    if (!d.push(c)) socket.pause();
  });
  socket.on("end", () => d.push(null));
  socket.on("close", () => d.destroy());
  socket.on("error", (e) => d.destroy(e));
  return d;
}

/**
 * --proxy-protocol-from: whether a connecting address is one of the trusted load balancers. Uses
 * Node's net.BlockList, which also matches IPv4-mapped IPv6 addresses ("::ffff:10.0.0.5", what a
 * dual-stack listener reports) against IPv4 blocks and the other way round. An unknown address
 * (a socket already closed) is never trusted.
 */
export function sourceFilter(cidrs: readonly Cidr[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.address, c.prefix, c.family);
  return (address) => {
    const family = address === undefined ? 0 : isIP(address);
    return family !== 0 && list.check(address!, family === 4 ? "ipv4" : "ipv6");
  };
}
