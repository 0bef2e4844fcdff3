/**
 * The client leg's use of the credential store (docs/architecture.md §3.5): records made or refreshed
 * after a PLAIN login the server accepted, looked up for a SCRAM login, turned into the secret that
 * logs the session's upstream leg and the account session in, and dropped when the server no longer
 * takes them. Every store failure is logged here with its code and reported to the caller as a value
 * or a rejection, never thrown into a socket handler.
 */
import { credentialsFromPassword } from "../../core/credentials/derive.js";
import { openUpstreamSecret } from "../../core/credentials/seal.js";
import type { AccountCredentials, ScramCredential } from "../../core/credentials/record.js";
import { equalBytes, keysFromSaltedPassword, type ScramHash } from "../../core/sasl/scram-primitives.js";
import type { Logger } from "../log.js";
import type { SaltedPasswordSecret, ScramSecret } from "../upstream/connect.js";
import type { CredentialStore } from "./store.js";

/**
 * The proxy's own PBKDF2 iteration count for the hashes the server does not use (RFC 5802 §5.1 asks
 * for at least 4096; Prosody 0.12 and ejabberd use 4096). Clients cache SaltedPassword per salt and
 * count, so this costs a client one PBKDF2 per record, the proxy one per record at creation only.
 */
export const PROXY_SCRAM_ITERATIONS = 10_000;

export interface CredentialKeeperOptions {
  log: Logger;
  iterations?: number;
}

/** The store failed: a SCRAM login then fails with temporary-auth-failure (RFC 6120 §6.5.11). */
export class StoreUnavailable extends Error {
  override readonly name = "StoreUnavailable";
}

export class CredentialKeeper {
  /** Refreshes under way per account: two logins at once derive once. */
  readonly #refreshing = new Map<string, Promise<void>>();

  constructor(readonly store: CredentialStore, private readonly opts: CredentialKeeperOptions) {}

  /** The account's records; StoreUnavailable when the store cannot be read. */
  async lookup(account: string): Promise<AccountCredentials | undefined> {
    try {
      return await this.store.get(account);
    } catch (err) {
      this.opts.log.error({ account, code: (err as { code?: string }).code, reason: (err as Error).message }, "credential store unreadable: SCRAM login refused for now");
      throw new StoreUnavailable("credential store unavailable");
    }
  }

  /**
   * After a PLAIN login the server accepted (issue 12 §2): makes or replaces the account's records
   * unless they already hold this password (the record for the server's hash has the server's current
   * salt, count and StoredKey). Without an upstream SCRAM exchange (a server offering PLAIN only)
   * nothing is kept: a record could verify a client but never log it in upstream. Resolves when done;
   * failures are logged, never thrown. `hashes`: those of the SCRAM mechanisms offered to clients.
   */
  afterPasswordLogin(account: string, password: string, upstream: SaltedPasswordSecret | undefined, hashes: readonly ScramHash[]): Promise<void> {
    if (upstream === undefined) return Promise.resolve();
    const running = this.#refreshing.get(account);
    if (running) return running;
    const p = this.#refresh(account, password, upstream, hashes).finally(() => this.#refreshing.delete(account));
    this.#refreshing.set(account, p);
    return p;
  }

  async #refresh(account: string, password: string, upstream: SaltedPasswordSecret, hashes: readonly ScramHash[]): Promise<void> {
    const log = this.opts.log.child({ account });
    try {
      const existing = await this.store.get(account);
      if (existing !== undefined && holdsPassword(existing, upstream, hashes)) return;
      const fresh = await credentialsFromPassword(account, password, upstream, {
        hashes: hashes.includes(upstream.hash) ? hashes : [...hashes, upstream.hash],
        iterations: this.opts.iterations ?? PROXY_SCRAM_ITERATIONS,
        updatedAt: new Date().toISOString(),
      });
      await this.store.put(fresh);
      log.info({ hashes: Object.keys(fresh.scram), replaced: existing !== undefined }, existing ? "SCRAM records replaced after a password login" : "SCRAM records created after a password login");
    } catch (err) {
      log.warn({ code: (err as { code?: string }).code, reason: (err as Error).message }, "could not keep SCRAM records for the account");
    }
  }

  /**
   * The server no longer accepts what a record logs in with (the password was changed there): the
   * account's records go, so the next SCRAM login is relayed or refused and the next PLAIN login
   * makes new ones (issue 12 §2). Failures are logged.
   */
  async forget(account: string, why: string): Promise<void> {
    try {
      if (await this.store.delete(account)) this.opts.log.info({ account, reason: why }, "SCRAM records dropped");
    } catch (err) {
      this.opts.log.warn({ account, code: (err as { code?: string }).code, reason: (err as Error).message }, "could not drop stale SCRAM records");
    }
  }
}

/** Whether the records already stand for the password behind `upstream` and cover every wanted hash. */
function holdsPassword(c: AccountCredentials, upstream: SaltedPasswordSecret, hashes: readonly ScramHash[]): boolean {
  const rec = c.scram[upstream.hash];
  if (rec === undefined || rec.origin !== "server" || rec.iterations !== upstream.iterations || !rec.salt.equals(upstream.salt)) return false;
  if (!equalBytes(rec.storedKey, keysFromSaltedPassword(upstream.hash, upstream.saltedPassword).storedKey)) return false;
  return hashes.every((h) => c.scram[h] !== undefined);
}

/**
 * What logs in upstream after a client proved `clientKey` for `hash` (§3.5): a record with the
 * server's salt gives ClientKey + ServerKey as they are; one with the proxy's salt opens its sealed
 * secret with the ClientKey. Undefined when the record has neither (made while the server offered
 * PLAIN only). Throws CredentialError(CREDENTIAL_UNSEAL) when the sealed secret does not open.
 */
export function upstreamSecretFor(account: string, hash: ScramHash, cred: ScramCredential, clientKey: Buffer): ScramSecret | undefined {
  if (cred.origin === "server") {
    return { hash, salt: Buffer.from(cred.salt), iterations: cred.iterations, clientKey: Buffer.from(clientKey), serverKey: Buffer.from(cred.serverKey) };
  }
  if (cred.upstream === undefined) return undefined;
  const s = openUpstreamSecret({ account, clientHash: hash, clientSalt: cred.salt, clientKey }, cred.upstream);
  const base = { hash: s.hash, salt: s.salt, iterations: s.iterations };
  return s.kind === "salted-password" ? { ...base, saltedPassword: s.saltedPassword } : { ...base, clientKey: s.clientKey, serverKey: s.serverKey };
}
