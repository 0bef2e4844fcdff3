import type { CredentialKeeper } from "./credentials/keeper.js";
import type { SaslOffer } from "./downstream/sasl-offer.js";
import type { Logger } from "./log.js";
import type { Config } from "./config.js";
import type { CertStore } from "../tls/cert-store.js";
import type { UpstreamTarget } from "./upstream/connect.js";
import type { AccountRegistry } from "./account/registry.js";
import type { BufferBudget } from "../core/buffer-budget.js";
import type { Resumption } from "./downstream/resumption.js";
import type { BoundSession } from "./downstream/bound-session.js";
import type { Forwarder } from "./cluster/forwarder.js";

/** A client connection's output as the proxy-wide budget sees it (--max-buffered-bytes). */
export interface OutputHolder {
  /** Bytes written to the client and not handed to the OS yet. */
  readonly pendingOutput: number;
  /** Cut: the proxy as a whole holds too much unread output and this client holds the most. */
  cutForBuffers(queued: number, total: number): void;
}

/** The long-lived things every connection needs; built once by the server. */
export interface ProxyContext {
  readonly config: Config;
  readonly log: Logger;
  readonly certs: CertStore;
  /** Whether this proxy serves `domain` (compared lower-case). */
  serves(domain: string): boolean;
  upstreamTarget(domain: string): UpstreamTarget;
  nextConnId(): string;
  /** Accounts with sessions or rooms: the account-level MUC layer. */
  readonly accounts: AccountRegistry;
  /** Unread output of all clients together (--max-buffered-bytes). */
  readonly buffers: BufferBudget<OutputHolder>;
  /** XEP-0198 resumption ids and hibernating sessions (docs/architecture.md §8.4). */
  readonly resumption: Resumption<BoundSession>;
  /** The client leg's SCRAM records (docs/architecture.md §3.5). */
  readonly credentials: CredentialKeeper;
  /** The SASL mechanisms offered to clients (--client-sasl). */
  readonly saslOffer: SaslOffer;
  /** A cluster member with forwarding (docs/architecture.md §8.7): sessions whose account another node owns go there. */
  readonly forward?: Forwarder | undefined;
}
