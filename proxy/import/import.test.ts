import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "../cli-args.js";
import { FileCredentialStore } from "../credentials/file-store.js";
import { importHelpText, parseImportArgs } from "./args.js";
import { runImport } from "./run.js";

describe("import-credentials arguments", () => {
  it("takes its flags out and leaves the configuration", () => {
    expect(parseImportArgs(["--config", "c.toml", "--prosody-data", "/var/lib/prosody", "--state-dir=/s", "--dry-run"])).toEqual({
      kind: "run",
      flags: { prosodyData: "/var/lib/prosody", dryRun: true },
      rest: ["--config", "c.toml", "--state-dir=/s"],
    });
    expect(parseImportArgs(["--ejabberd-sql=/tmp/x.sql", "--ejabberd-host", "Example.ORG", "--domain", "example.org"])).toEqual({
      kind: "run",
      flags: { ejabberdSql: "/tmp/x.sql", ejabberdHost: "example.org", dryRun: false },
      rest: ["--domain", "example.org"],
    });
    expect(parseImportArgs(["--prosody-data", "d", "--dry-run=false"])).toMatchObject({ flags: { dryRun: false } });
    expect(parseImportArgs(["--xep0227", "/x/main.xml"])).toMatchObject({ flags: { xep0227: "/x/main.xml" }, rest: [] });
  });

  it("--help wins", () => {
    expect(parseImportArgs(["--prosody-data", "--help"])).toEqual({ kind: "help" });
    expect(importHelpText()).toContain("--prosody-data DIR");
    expect(importHelpText()).toContain("--ejabberd-sql FILE");
  });

  it.each([
    [[], /give --prosody-data DIR, --xep0227 FILE or --ejabberd-sql FILE/],
    [["--prosody-data"], /--prosody-data: missing value \(expected DIR\)/],
    [["--prosody-data", "--dry-run"], /--prosody-data: missing value/],
    [["--prosody-data", "a", "--prosody-data", "b"], /--prosody-data: given more than once/],
    [["--prosody-data="], /--prosody-data: expected DIR, got ""/],
    [["--ejabberd-sql", "f", "--ejabberd-host", "not a domain!"], /--ejabberd-host: expected a domain name/],
    [["--prosody-data", "d", "--ejabberd-host", "example.org"], /--ejabberd-host: only means something with --ejabberd-sql/],
    [["--prosody-data", "d", "--dry-run=maybe"], /--dry-run: expected true or false/],
  ])("%j: one-line ConfigError", (argv, re) => {
    let err: unknown;
    try {
      parseImportArgs(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain("\n");
  });
});

/** A Prosody account file as 0.12 writes it. */
function datFile(storedHex: string, serverHex: string, salt = "89ace65f-03d5-4fdc-aa18-04c15ecf31fd", iterations = 4096): string {
  return `return {\n\t["server_key"] = "${serverHex}";\n\t["stored_key"] = "${storedHex}";\n\t["iteration_count"] = ${iterations};\n\t["salt"] = "${salt}";\n};\n`;
}
const ALICE = datFile("5712e571ad1d640c3c55ca60d944f758e54807ce", "01f14f1558677db6c1315c7558eef9587efc9349");

describe("runImport", () => {
  let root: string;
  let data: string;
  let out: string[];
  const print = (l: string): void => void out.push(l);
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "minimix-import-"));
    data = join(root, "prosody");
    out = [];
    await mkdir(join(data, "localhost", "accounts"), { recursive: true });
    await writeFile(join(data, "localhost", "accounts", "alice.dat"), ALICE);
    await writeFile(join(data, "localhost", "accounts", "w%2ex.dat"), datFile("aa".repeat(20), "bb".repeat(20), "s2"));
    await writeFile(join(data, "localhost", "accounts", "plain.dat"), `return { ["password"] = "hunter2" };\n`);
    await writeFile(join(data, "localhost", "accounts", "broken.dat"), `return { stored_key = 5 }`);
    await writeFile(join(data, "localhost", "roster.txt"), "not an account");
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("imports SCRAM records, skips plain passwords, reports broken files; then nothing changes on a second run", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const r = await runImport({ prosodyData: data, dryRun: false }, ["localhost"], store, print, () => "2026-12-01T10:00:00.000Z");
    expect(r).toEqual({ counts: { new: 2, updated: 0, replaced: 0, unchanged: 0 }, skipped: 1, errors: 1 });
    expect(out).toContain("new       alice@localhost (SCRAM-SHA-1)");
    expect(out).toContain("new       w.x@localhost (SCRAM-SHA-1)");
    expect(out).toContainEqual(expect.stringMatching(/^skipped {3}plain@localhost: plain-text password on the server/));
    expect(out).toContainEqual(expect.stringMatching(/^error {5}prosody .*broken\.dat: .*stored_key/));
    expect(out.at(-1)).toMatch(/: 2 new, 0 updated, 0 replaced \(the server's credentials changed\), 0 unchanged; 1 skipped; 1 errors$/);
    const alice = await store.get("alice@localhost");
    expect(alice?.source).toBe("import-prosody");
    expect(alice?.scram["SHA-1"]?.salt.toString()).toBe("89ace65f-03d5-4fdc-aa18-04c15ecf31fd");
    // nothing secret in the output
    const text = out.join("\n");
    for (const s of ["5712e571", "01f14f15", "89ace65f", "hunter2", "aaaa", "bbbb"]) expect(text).not.toContain(s);

    out = [];
    const again = await runImport({ prosodyData: data, dryRun: false }, ["localhost"], store, print);
    expect(again.counts).toEqual({ new: 0, updated: 0, replaced: 0, unchanged: 2 });
  });

  it("a changed server record replaces the old one", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    await runImport({ prosodyData: data, dryRun: false }, ["localhost"], store, print);
    await writeFile(join(data, "localhost", "accounts", "alice.dat"), datFile("cc".repeat(20), "dd".repeat(20), "new-salt"));
    const r = await runImport({ prosodyData: data, dryRun: false }, ["localhost"], store, print);
    expect(r.counts).toMatchObject({ replaced: 1, unchanged: 1 });
    expect((await store.get("alice@localhost"))?.scram["SHA-1"]?.salt.toString()).toBe("new-salt");
  });

  it("--dry-run writes nothing", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const r = await runImport({ prosodyData: data, dryRun: true }, ["localhost"], store, print);
    expect(r.counts.new).toBe(2);
    expect(await readdir(store.dir)).toEqual([]);
    expect(out.at(-1)).toMatch(/^dry run, nothing written: /);
  });

  it("a served domain without an accounts directory is an error naming the directory", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const r = await runImport({ prosodyData: data, dryRun: false }, ["example.org"], store, print);
    expect(r.errors).toBe(1);
    expect(out[0]).toContain(join(data, "example%2eorg", "accounts"));
  });

  it("imports an ejabberd export2sql file; rows of other hosts and plain passwords are skipped", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const sql = join(root, "ej.sql");
    await writeFile(sql, [
      "INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('alice', 'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'ilxQs39jdBKvib+iOFPEaQ==', 4096);",
      "INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('carol', 'carolpass', '', '', 0);",
    ].join("\n"));
    const r = await runImport({ ejabberdSql: sql, dryRun: false }, ["localhost"], store, print);
    expect(r).toEqual({ counts: { new: 1, updated: 0, replaced: 0, unchanged: 0 }, skipped: 1, errors: 0 });
    expect((await store.get("alice@localhost"))?.source).toBe("import-ejabberd");
    expect(out.join("\n")).not.toContain("carolpass");
    // with two served domains the host must be given
    out = [];
    const two = await runImport({ ejabberdSql: sql, dryRun: false }, ["localhost", "example.org"], store, print);
    expect(two.errors).toBe(1);
    expect(out[0]).toMatch(/give --ejabberd-host/);
    const given = await runImport({ ejabberdSql: sql, ejabberdHost: "example.org", dryRun: false }, ["localhost", "example.org"], store, print);
    expect(given.counts.new).toBe(1);
  });

  it("imports a XEP-0227 export through its xi:include; includes may not leave the directory", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const dir = join(root, "pie");
    await mkdir(dir);
    await writeFile(join(dir, "main.xml"), "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='main_localhost.xml'/></server-data>");
    await writeFile(join(dir, "main_localhost.xml"), "<host xmlns='urn:xmpp:pie:0' jid='localhost'><user name='alice'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>" +
      "<iter-count>4096</iter-count><salt>aWx4UXMzOWpkQkt2aWIraU9GUEVhUT09</salt><server-key>MW92bWVBaU5tUlY2ZFdSUDFJMlA4TU50dFpjPQ==</server-key>" +
      "<stored-key>b3hJbzlIQWd0dWp3eVRNeit2dGxBVlRTNFhVPQ==</stored-key></scram-credentials></user><user name='carol' password='carolpass'/></host>");
    const r = await runImport({ xep0227: join(dir, "main.xml"), dryRun: false }, ["localhost"], store, print);
    expect(r).toEqual({ counts: { new: 1, updated: 0, replaced: 0, unchanged: 0 }, skipped: 1, errors: 0 });
    expect((await store.get("alice@localhost"))?.source).toBe("import-xep0227");
    expect(out.join("\n")).not.toContain("carolpass");

    out = [];
    await writeFile(join(dir, "evil.xml"), "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='../prosody/localhost/accounts/alice.dat'/></server-data>");
    const evil = await runImport({ xep0227: join(dir, "evil.xml"), dryRun: false }, ["localhost"], store, print);
    expect(evil.errors).toBe(1);
    expect(out[0]).toMatch(/xi:include outside the export's directory/);
  });

  it("an unreadable SQL file is an error, not a crash", async () => {
    const { store } = await FileCredentialStore.open(join(root, "state"));
    const r = await runImport({ ejabberdSql: join(root, "missing.sql"), dryRun: false }, ["localhost"], store, print);
    expect(r.errors).toBe(1);
    expect(out[0]).toMatch(/ENOENT/);
  });
});
