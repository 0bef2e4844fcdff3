/**
 * Folding a server's records (an import, issue 12 §3) into what the store already has for an account.
 * Records the proxy made itself come from a password; whether that password is still the server's is
 * known only through a server record: if one the store already had comes back unchanged (same salt,
 * count and keys), the password did not change and the proxy's records stay; otherwise they might let
 * an old password in, and only the server's records are kept.
 */
import { SCRAM_HASHES, type ScramHash } from "../sasl/scram-primitives.js";
import type { ScramVerifierRecord } from "../sasl/scram-server.js";
import { validateAccountCredentials, type AccountCredentials, type CredentialSource, type ScramCredential } from "./record.js";

/**
 * - new: no record before;
 * - unchanged: the store already had exactly these server records;
 * - updated: a server record the store had is unchanged, the others were added or replaced;
 * - replaced: the server's records differ from everything the store had (a password change): only
 *   the server's are kept.
 */
export type ImportChange = "new" | "unchanged" | "updated" | "replaced";

export interface ImportedAccount {
  /** Normalised bare JID. */
  account: string;
  records: Partial<Record<ScramHash, ScramVerifierRecord>>;
}

function same(a: ScramVerifierRecord, b: ScramVerifierRecord): boolean {
  return a.iterations === b.iterations && a.salt.equals(b.salt) && a.storedKey.equals(b.storedKey) && a.serverKey.equals(b.serverKey);
}

function asServer(r: ScramVerifierRecord): ScramCredential {
  return { origin: "server", salt: Buffer.from(r.salt), iterations: r.iterations, storedKey: Buffer.from(r.storedKey), serverKey: Buffer.from(r.serverKey) };
}

export function mergeImported(
  existing: AccountCredentials | undefined,
  imported: ImportedAccount,
  source: CredentialSource,
  updatedAt: string,
): { credentials: AccountCredentials; change: ImportChange } {
  const hashes = SCRAM_HASHES.filter((h) => imported.records[h] !== undefined);
  const fresh = (): AccountCredentials => {
    const scram: Partial<Record<ScramHash, ScramCredential>> = {};
    for (const h of hashes) scram[h] = asServer(imported.records[h] as ScramVerifierRecord);
    const c: AccountCredentials = { account: imported.account, scram, source, updatedAt };
    validateAccountCredentials(c);
    return c;
  };
  if (existing === undefined) return { credentials: fresh(), change: "new" };

  const matches = hashes.filter((h) => {
    const e = existing.scram[h];
    return e !== undefined && same(e, imported.records[h] as ScramVerifierRecord);
  });
  if (matches.length === hashes.length) return { credentials: existing, change: "unchanged" };
  // An unchanged server record proves the password is the same: keep the rest, take the server's new ones.
  if (matches.some((h) => existing.scram[h]?.origin === "server")) {
    const scram = { ...existing.scram };
    for (const h of hashes) if (!matches.includes(h)) scram[h] = asServer(imported.records[h] as ScramVerifierRecord);
    const c: AccountCredentials = { ...existing, scram, source, updatedAt };
    validateAccountCredentials(c);
    return { credentials: c, change: "updated" };
  }
  return { credentials: fresh(), change: "replaced" };
}
