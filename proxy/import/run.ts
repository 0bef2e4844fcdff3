/**
 * `minimix-proxy import-credentials`: reads the server's SCRAM records (never modifying anything of
 * the server's) and folds them into the credential store (core/credentials/merge.ts). Output names
 * accounts and counts; no salt, key or file content ever reaches it.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CredentialError } from "../../core/credentials/errors.js";
import { ejabberdAccounts } from "../../core/credentials/import-ejabberd.js";
import { decodeProsodyName, encodeProsodyName, prosodyAccount } from "../../core/credentials/import-prosody.js";
import { xep0227Accounts, type Xep0227Skip } from "../../core/credentials/import-xep0227.js";
import { mergeImported, type ImportChange, type ImportedAccount } from "../../core/credentials/merge.js";
import type { CredentialSource } from "../../core/credentials/record.js";
import { CredentialStoreError, type CredentialStore } from "../credentials/store.js";
import type { ImportFlags } from "./args.js";

export interface ImportReport {
  counts: Record<ImportChange, number>;
  skipped: number;
  errors: number;
}

/** Largest account file or SQL export read; a real one is far below. */
const MAX_ACCOUNT_FILE = 64 * 1024;
const MAX_SQL_FILE = 1024 * 1024 * 1024;
/** A XEP-0227 file is parsed whole (it also holds rosters, vCards, offline messages). */
const MAX_XEP0227_FILE = 512 * 1024 * 1024;

const SKIP_TEXT: Record<Xep0227Skip["reason"], string> = {
  "plain-password": "plain-text password on the server, no SCRAM record",
  "no-credentials": "no credentials in the export",
  "not-a-served-host": "not a domain this proxy serves",
};

function why(err: unknown): string {
  if (err instanceof CredentialError || err instanceof CredentialStoreError) return err.message;
  const code = err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
  return code ?? "error";
}

export async function runImport(
  flags: ImportFlags,
  domains: readonly string[],
  store: CredentialStore,
  print: (line: string) => void,
  now: () => string = () => new Date().toISOString(),
): Promise<ImportReport> {
  const report: ImportReport = { counts: { new: 0, updated: 0, replaced: 0, unchanged: 0 }, skipped: 0, errors: 0 };

  const fold = async (imported: ImportedAccount, source: CredentialSource): Promise<void> => {
    try {
      const existing = await store.get(imported.account);
      const { credentials, change } = mergeImported(existing, imported, source, now());
      if (change !== "unchanged" && !flags.dryRun) await store.put(credentials);
      report.counts[change]++;
      const hashes = Object.keys(imported.records).map((h) => `SCRAM-${h}`).join(" ");
      print(`${change.padEnd(9)} ${imported.account} (${hashes})`);
    } catch (err) {
      report.errors++;
      print(`error     ${imported.account}: ${why(err)}`);
    }
  };

  if (flags.prosodyData !== undefined) {
    for (const domain of domains) {
      const dir = join(flags.prosodyData, encodeProsodyName(domain), "accounts");
      let names: string[];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith(".dat")).sort();
      } catch (err) {
        report.errors++;
        print(`error     prosody ${domain}: cannot list ${dir} (${why(err)}); is --prosody-data Prosody's data_path, and may this user read it?`);
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        const user = decodeProsodyName(name.slice(0, -".dat".length));
        if (user === null) {
          report.errors++;
          print(`error     prosody ${path}: not a datamanager file name`);
          continue;
        }
        let result;
        try {
          const bytes = await readFile(path, { flag: "r" });
          if (bytes.length > MAX_ACCOUNT_FILE) throw new CredentialError("CREDENTIAL_FORMAT", "file too large for an account file");
          result = prosodyAccount(bytes, user, domain);
        } catch (err) {
          report.errors++;
          print(`error     prosody ${path}: ${why(err)}`);
          continue;
        }
        if ("skip" in result) {
          report.skipped++;
          print(`skipped   ${user}@${domain}: ${result.skip === "plain-password" ? "plain-text password on the server (internal_plain), no SCRAM record" : "no credentials in the file"}`);
          continue;
        }
        await fold(result, "import-prosody");
      }
    }
  }

  if (flags.xep0227 !== undefined) {
    // the main file, then the files it includes (same directory only; one level, as ejabberd writes them)
    const queue: { path: string; depth: number }[] = [{ path: flags.xep0227, depth: 0 }];
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      try {
        const bytes = await readFile(item.path, { flag: "r" });
        if (bytes.length > MAX_XEP0227_FILE) throw new CredentialError("CREDENTIAL_FORMAT", "file too large");
        const r = xep0227Accounts(bytes.toString("utf8"), domains);
        for (const href of r.includes) {
          if (basename(href) !== href || href.startsWith(".") || item.depth >= 1) {
            throw new CredentialError("CREDENTIAL_FORMAT", "xi:include outside the export's directory or nested");
          }
          queue.push({ path: join(dirname(item.path), href), depth: item.depth + 1 });
        }
        for (const s of r.skipped) {
          report.skipped++;
          print(`skipped   ${s.user}@${s.host}: ${SKIP_TEXT[s.reason]}`);
        }
        for (const a of r.accounts) await fold(a, "import-xep0227");
      } catch (err) {
        report.errors++;
        print(`error     xep0227 ${item.path}: ${why(err)}`);
      }
    }
  }

  if (flags.ejabberdSql !== undefined) {
    const host = flags.ejabberdHost ?? (domains.length === 1 ? domains[0] : undefined);
    try {
      const bytes = await readFile(flags.ejabberdSql, { flag: "r" });
      if (bytes.length > MAX_SQL_FILE) throw new CredentialError("CREDENTIAL_FORMAT", "file too large");
      const r = ejabberdAccounts(bytes.toString("utf8"), host, domains);
      for (const s of r.skipped) {
        report.skipped++;
        print(`skipped   ${s.user}@${s.host}: ${s.reason === "plain-password" ? "plain-text password on the server (auth_password_format: plain), no SCRAM record" : "not a domain this proxy serves"}`);
      }
      for (const a of r.accounts) await fold(a, "import-ejabberd");
    } catch (err) {
      report.errors++;
      const hint = err instanceof CredentialError && /server_host/.test(err.message) ? " (give --ejabberd-host)" : "";
      print(`error     ejabberd ${flags.ejabberdSql}: ${why(err)}${hint}`);
    }
  }

  const c = report.counts;
  print(
    `${flags.dryRun ? "dry run, nothing written: " : ""}${store.description}: ${c.new} new, ${c.updated} updated, ${c.replaced} replaced (the server's credentials changed), ` +
      `${c.unchanged} unchanged; ${report.skipped} skipped; ${report.errors} errors`,
  );
  return report;
}
