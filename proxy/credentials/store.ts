/**
 * Where the client-leg credential records live (issue 12 §4). The interface is asynchronous and keyed
 * by account only, so a shared store for several nodes (Redis, a later issue) can implement it: get /
 * put / delete of one account's whole record set (core/credentials/record.ts, stored in its JSON form),
 * last writer wins. The embedded default is file-store.ts under --state-dir.
 *
 * Callers must expect every method to reject with a CredentialStoreError at run time (a disk or a
 * network fails), and turn it into a temporary-auth-failure for the one login, never a crash.
 */
import { type AccountCredentials, encodeAccountCredentials } from "../../core/credentials/record.js";

export interface CredentialStore {
  /** The record set of a normalised bare JID, or undefined when there is none. */
  get(account: string): Promise<AccountCredentials | undefined>;
  /** Replaces the account's whole record set (validated before it is written). */
  put(credentials: AccountCredentials): Promise<void>;
  /** Removes the account's records; false when there were none. */
  delete(account: string): Promise<boolean>;
  /** Every account with records, in no particular order. */
  list(): Promise<string[]>;
  /** Where the records are, for logs and `check` ("file:/var/lib/minimix-proxy/credentials"). */
  readonly description: string;
}

export type CredentialStoreErrorCode =
  /** The store's directory or a record cannot be read or created (missing permission, I/O error). */
  | "CREDENTIAL_STORE_UNREADABLE"
  /** A record in the store is damaged or not ours (CredentialError CREDENTIAL_FORMAT inside). */
  | "CREDENTIAL_STORE_CORRUPT"
  /** The store or a record is readable by other users than the proxy's. */
  | "CREDENTIAL_STORE_PERMISSIONS"
  /** A record could not be written. */
  | "CREDENTIAL_STORE_WRITE";

/** A store problem. The message names the file and the problem, never a record's content. */
export class CredentialStoreError extends Error {
  override readonly name = "CredentialStoreError";
  readonly code: CredentialStoreErrorCode;
  /** The file or directory concerned, when there is one. */
  readonly path: string | undefined;
  constructor(code: CredentialStoreErrorCode, message: string, path?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.path = path;
  }
}

/** The stored JSON form of a record set, for any store; one that does not validate is a CREDENTIAL_STORE_WRITE error. */
export function encodeForStore(credentials: AccountCredentials): string {
  try {
    return encodeAccountCredentials(credentials);
  } catch (cause) {
    throw new CredentialStoreError("CREDENTIAL_STORE_WRITE", `credential record not written: ${(cause as Error).message}`, undefined, { cause });
  }
}
