/**
 * Command line of `minimix-proxy import-credentials` (issue 12 §3):
 *
 *   minimix-proxy import-credentials [--config FILE] [flags] (--prosody-data DIR | --xep0227 FILE |
 *     --ejabberd-sql FILE [--ejabberd-host DOMAIN]) [--dry-run]
 *
 * Its own flags are taken out here; everything else is the proxy's configuration as usual
 * (cli-args.ts: --config, --domain, --state-dir, ...), which says where the store is and which
 * domains are served. Same syntax and one-line errors as cli-args.ts.
 */
import { ConfigError, fail, parseDomain, quote, type Source } from "../cli-args.js";

export interface ImportFlags {
  /** Prosody's data_path (e.g. /var/lib/prosody). */
  prosodyData?: string;
  /** `ejabberdctl export2sql HOST FILE` output, or a column-named SQL dump of ejabberd's users table. */
  ejabberdSql?: string;
  /** The host of ejabberd rows without server_host. */
  ejabberdHost?: string;
  /** A XEP-0227 export (ejabberdctl export_piefxis): the main file, or one host's. */
  xep0227?: string;
  dryRun: boolean;
}

interface ImportOption {
  name: string;
  metavar?: string;
  help: string;
}

export const IMPORT_OPTIONS: readonly ImportOption[] = [
  { name: "prosody-data", metavar: "DIR", help: "Prosody's data directory (data_path, e.g. /var/lib/prosody): reads DIR/<domain>/accounts/*.dat of every served domain (internal_hashed)" },
  { name: "xep0227", metavar: "FILE", help: "a XEP-0227 export with SCRAM credentials: ejabberd's `ejabberdctl export_piefxis DIR` (give the main .xml file in DIR; its xi:includes are read from there) or `export_piefxis_host DIR DOMAIN`" },
  { name: "ejabberd-sql", metavar: "FILE", help: "ejabberd's SCRAM passwords as SQL: the output of `ejabberdctl export2sql DOMAIN FILE`, or a dump of its SQL users table with column names" },
  { name: "ejabberd-host", metavar: "DOMAIN", help: "the domain of --ejabberd-sql rows without a server_host column (default: the only --domain)" },
  { name: "dry-run", help: "read and compare, write nothing" },
];

export type ImportArgs = { kind: "help" } | { kind: "run"; flags: ImportFlags; rest: string[] };

/**
 * Splits argv (after "import-credentials") into the import flags and the rest. Throws ConfigError
 * for a missing or repeated value; unknown flags are left in `rest` for the configuration parser.
 */
export function parseImportArgs(argv: string[]): ImportArgs {
  const end = argv.indexOf("--");
  const scanned = end === -1 ? argv : argv.slice(0, end);
  if (scanned.includes("--help") || scanned.includes("-h")) return { kind: "help" };
  const cli: Source = { kind: "cli" };
  const flags: ImportFlags = { dryRun: false };
  const seen = new Set<string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (i === end) {
      rest.push(...argv.slice(i));
      break;
    }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(word);
    const spec = m === null ? undefined : IMPORT_OPTIONS.find((o) => o.name === m[1]);
    if (m === null || spec === undefined) {
      rest.push(word);
      continue;
    }
    const name = spec.name;
    if (seen.has(name)) throw fail(cli, name, "given more than once");
    seen.add(name);
    if (spec.metavar === undefined) {
      if (m[2] !== undefined && m[2] !== "true" && m[2] !== "false") throw fail(cli, name, `expected true or false, got ${quote(m[2])}`);
      flags.dryRun = m[2] !== "false";
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) throw fail(cli, name, `missing value (expected ${spec.metavar})`);
      value = next;
      i++;
    }
    if (value === "" || value.includes("\0")) throw fail(cli, name, `expected ${spec.metavar}, got ${quote(value)}`);
    if (name === "prosody-data") flags.prosodyData = value;
    else if (name === "xep0227") flags.xep0227 = value;
    else if (name === "ejabberd-sql") flags.ejabberdSql = value;
    else {
      const d = parseDomain(value);
      if (typeof d !== "string") throw fail(cli, name, d.error);
      flags.ejabberdHost = d;
    }
  }
  if (flags.prosodyData === undefined && flags.ejabberdSql === undefined && flags.xep0227 === undefined) {
    throw new ConfigError("argv", "config: import-credentials: give --prosody-data DIR, --xep0227 FILE or --ejabberd-sql FILE");
  }
  if (flags.ejabberdHost !== undefined && flags.ejabberdSql === undefined) {
    throw fail(cli, "ejabberd-host", "only means something with --ejabberd-sql");
  }
  return { kind: "run", flags, rest };
}

/** `minimix-proxy import-credentials --help`. */
export function importHelpText(): string {
  const lines = [
    "Usage: minimix-proxy import-credentials [--config FILE] [flags] (--prosody-data DIR | --xep0227 FILE | --ejabberd-sql FILE) [--dry-run]",
    "",
    "Copies the server's stored SCRAM credentials (salt, iteration count, StoredKey, ServerKey; never a",
    "password) into the proxy's credential store (--state-dir/credentials; with --cluster-redis URL, the",
    "cluster's Redis store that every node reads), so that clients which pinned SCRAM can log in through",
    "the proxy at first contact. The server's files are only read. Run it as the",
    "user the proxy runs as, or as root (records are then given to the store directory's owner). A",
    "running proxy sees the records at the next login. Accounts with plain-text passwords on the server",
    "are reported and skipped. Prints counts and account names, never a key or salt.",
    "",
    "Flags (besides the proxy's own, which say where the store is and which domains are served):",
  ];
  for (const o of IMPORT_OPTIONS) {
    const left = `  --${o.name}${o.metavar ? ` ${o.metavar}` : ""}`;
    lines.push(left.length < 26 ? `${left.padEnd(26)}${o.help}` : `${left}\n${" ".repeat(26)}${o.help}`);
  }
  lines.push("", "Exit status: 0 when everything read was imported or skipped, 1 on a read or store error, 2 on a configuration error.");
  return `${lines.join("\n")}\n`;
}
