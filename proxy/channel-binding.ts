/**
 * The channel-binding data of one live TLS connection, for SCRAM-*-PLUS (the rules and the pure
 * computations are in core/sasl/channel-binding.ts). Call it when the client's <auth/> arrives, after
 * the handshake: tls-unique changes with every handshake, so it is never cached per connection.
 */
import type { TLSSocket } from "node:tls";
import {
  TLS_EXPORTER_LABEL,
  TLS_EXPORTER_LENGTH,
  acceptedChannelBindingTypesFor,
  tlsServerEndPoint,
  tlsUniqueFinished,
  type ChannelBindingType,
} from "../core/sasl/channel-binding.js";

/**
 * Channel-binding data by type, strongest first (every type the connection accepts; what it
 * advertises is `advertisedChannelBindingTypes` of these), for `role` — "server" for the proxy's client leg
 * (tls-server-end-point is then the proxy's own certificate, the one it presented on this
 * connection), "client" for a test client (the peer's certificate). Empty when the connection is not
 * TLS 1.2/1.3 or the handshake is not done.
 */
export function channelBindings(socket: TLSSocket, role: "server" | "client"): Map<ChannelBindingType, Buffer> {
  const out = new Map<ChannelBindingType, Buffer>();
  const version = socket.getProtocol();
  const cert = role === "server" ? socket.getCertificate() : socket.getPeerCertificate();
  const raw = cert !== null && "raw" in cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
  const endPoint = raw === undefined ? null : tlsServerEndPoint(raw);
  for (const type of acceptedChannelBindingTypesFor(version, endPoint !== null)) {
    if (type === "tls-exporter") {
      // RFC 9266 §2: label "EXPORTER-Channel-Binding", empty context, 32 octets (TLS 1.3: same as no context).
      out.set(type, socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0)));
    } else if (type === "tls-server-end-point" && endPoint !== null) {
      out.set(type, endPoint);
    } else if (type === "tls-unique") {
      const which = tlsUniqueFinished(role, socket.isSessionReused());
      const finished = which === "own" ? socket.getFinished() : socket.getPeerFinished();
      if (finished !== undefined && finished.length > 0) out.set(type, finished);
    }
  }
  return out;
}
