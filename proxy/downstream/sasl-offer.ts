/**
 * Which SASL mechanisms a client stream is offered (docs/architecture.md §3.5): --client-sasl as
 * configured, or with "auto" what the server itself offers (learnt from every upstream connection's
 * SASL features, and from a probe at start-up), then without -PLUS where this connection has no
 * channel-binding data.
 */
import {
  mirrorServerMechanisms,
  offeredMechanisms,
  scramHashesOf,
  type ClientSaslMechanism,
} from "../../core/sasl/mechanisms.js";
import type { ScramHash } from "../../core/sasl/scram-primitives.js";

export class SaslOffer {
  /** The server's SASL mechanisms per domain (lower-case), as last seen. */
  readonly #server = new Map<string, readonly string[]>();

  constructor(private readonly configured: readonly ClientSaslMechanism[] | "auto") {}

  /** What the server offered on an upstream connection for `domain` (RFC 6120 §6.4.1). */
  learn(domain: string, mechanisms: readonly string[]): void {
    if (mechanisms.length > 0) this.#server.set(domain.toLowerCase(), [...mechanisms]);
  }

  /** The mechanisms for `domain` before the per-connection channel-binding filter. */
  mechanisms(domain: string): ClientSaslMechanism[] {
    if (this.configured !== "auto") return [...this.configured];
    return mirrorServerMechanisms(this.#server.get(domain.toLowerCase()));
  }

  /** What one stream advertises, given the channel-binding types its TLS connection has. */
  forStream(domain: string, channelBindingTypes: readonly string[]): ClientSaslMechanism[] {
    return offeredMechanisms(this.mechanisms(domain), channelBindingTypes);
  }

  /** The hashes records are kept for after a password login (those clients may use). */
  hashes(domain: string): ScramHash[] {
    return scramHashesOf(this.mechanisms(domain));
  }
}
