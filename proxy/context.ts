import type { Logger } from "./log.js";
import type { Config } from "./config.js";
import type { CertStore } from "../tls/cert-store.js";
import type { UpstreamTarget } from "./upstream/connect.js";
import type { AccountRegistry } from "./account/registry.js";

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
}
