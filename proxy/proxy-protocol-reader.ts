import type { Socket } from "node:net";
import { PROXY_HEADER_MAX_BYTES, parseProxyHeader, type ProxiedAddress } from "../core/proxy-protocol.js";

export class ProxyHeaderError extends Error {
  readonly code = "PROXY_HEADER_INVALID";
}

/**
 * Reads a PROXY protocol header (v1 or v2) from the start of `socket` before anything else
 * touches it, then puts back whatever followed it (unshift) so the XMPP or TLS layer sees the
 * stream exactly as the client sent it. Rejects on a bad or missing header, or after `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedAddress | undefined> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, source?: ProxiedAddress): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve(source);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.kind === "incomplete") {
        if (buf.length > PROXY_HEADER_MAX_BYTES) done(new ProxyHeaderError("PROXY header too long"));
        return;
      }
      socket.pause();
      if (r.kind === "error") return done(new ProxyHeaderError(r.reason));
      const rest = buf.subarray(r.consumed);
      done(undefined, r.source);
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = (): void => done(new ProxyHeaderError("connection closed before the PROXY header"));
    const timer = setTimeout(() => done(new ProxyHeaderError("no PROXY header in time")), timeoutMs);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}
