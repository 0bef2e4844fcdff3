import { describe, expect, it } from "vitest";
import { ScramClient } from "../sasl/scram.js";
import { ScramServer, type ScramVerifierRecord } from "../sasl/scram-server.js";
import { CredentialError } from "./errors.js";
import { ejabberdAccounts, parseSqlInserts } from "./import-ejabberd.js";
import { decodeProsodyName, encodeProsodyName, parseLuaTable, prosodyAccount } from "./import-prosody.js";
import { xep0227Accounts } from "./import-xep0227.js";

/** A SCRAM-SHA-1 login with `password` against `rec` succeeds (the record really is that password's). */
function verifies(rec: ScramVerifierRecord, password: string, user = "alice"): boolean {
  const c = new ScramClient("SHA-1", user, { password });
  const s = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
  s.clientFirst(c.clientFirst());
  try {
    c.verifyServerFinal(s.clientFinal(c.clientFinal(s.serverFirst(rec))).serverFinal);
    return true;
  } catch {
    return false;
  }
}

function formatError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CredentialError);
    expect((e as CredentialError).code).toBe("CREDENTIAL_FORMAT");
    return (e as Error).message;
  }
  throw new Error("expected a CredentialError");
}

/** Written by a real Prosody 0.12.3 (test/support/prosody.sh, user alice, password alicepass). */
const PROSODY_ALICE = `return {
\t["server_key"] = "01f14f1558677db6c1315c7558eef9587efc9349";
\t["stored_key"] = "5712e571ad1d640c3c55ca60d944f758e54807ce";
\t["iteration_count"] = 4096;
\t["salt"] = "89ace65f-03d5-4fdc-aa18-04c15ecf31fd";
};
`;

describe("Prosody internal_hashed account files", () => {
  it("reads a real 0.12 file: SCRAM-SHA-1 with the UUID salt as its bytes", () => {
    const a = prosodyAccount(Buffer.from(PROSODY_ALICE), "alice", "localhost");
    if ("skip" in a) throw new Error("skipped");
    expect(a.account).toBe("alice@localhost");
    const rec = a.records["SHA-1"]!;
    expect(rec.salt.toString()).toBe("89ace65f-03d5-4fdc-aa18-04c15ecf31fd");
    expect(rec.iterations).toBe(4096);
    expect(verifies(rec, "alicepass")).toBe(true);
    expect(verifies(rec, "wrong")).toBe(false);
  });

  it("recognises the hash by the key length", () => {
    const f = `return { stored_key = "${"ab".repeat(32)}", server_key = "${"cd".repeat(32)}", salt = "s", iteration_count = 10000 }`;
    const a = prosodyAccount(Buffer.from(f), "bob", "example.org");
    expect("records" in a && Object.keys(a.records)).toEqual(["SHA-256"]);
  });

  it("skips plain passwords (internal_plain) and files without credentials", () => {
    expect(prosodyAccount(Buffer.from(`return { ["password"] = "secret" };`), "u", "localhost")).toEqual({ skip: "plain-password" });
    expect(prosodyAccount(Buffer.from(`return {};`), "u", "localhost")).toEqual({ skip: "no-credentials" });
  });

  it.each([
    ["a missing server_key", `return { stored_key = "${"ab".repeat(20)}", salt = "s", iteration_count = 4096 }`],
    ["a key that is not hex", `return { stored_key = "zz${"ab".repeat(19)}", server_key = "${"ab".repeat(20)}", salt = "s", iteration_count = 4096 }`],
    ["keys of a length no hash has", `return { stored_key = "${"ab".repeat(16)}", server_key = "${"ab".repeat(16)}", salt = "s", iteration_count = 4096 }`],
    ["keys of different lengths", `return { stored_key = "${"ab".repeat(20)}", server_key = "${"ab".repeat(32)}", salt = "s", iteration_count = 4096 }`],
    ["no salt", `return { stored_key = "${"ab".repeat(20)}", server_key = "${"ab".repeat(20)}", iteration_count = 4096 }`],
    ["an empty salt", `return { stored_key = "${"ab".repeat(20)}", server_key = "${"ab".repeat(20)}", salt = "", iteration_count = 4096 }`],
    ["an iteration count as a string", `return { stored_key = "${"ab".repeat(20)}", server_key = "${"ab".repeat(20)}", salt = "s", iteration_count = "4096" }`],
    ["a fractional iteration count", `return { stored_key = "${"ab".repeat(20)}", server_key = "${"ab".repeat(20)}", salt = "s", iteration_count = 40.5 }`],
  ])("refuses %s", (_what, f) => {
    const msg = formatError(() => prosodyAccount(Buffer.from(f), "u", "localhost"));
    expect(msg).not.toContain("abab");
  });

  it("refuses a user and host that make no JID", () => {
    formatError(() => prosodyAccount(Buffer.from(PROSODY_ALICE), "a b", "localhost"));
  });
});

describe("the Lua subset datamanager writes", () => {
  it("reads string escapes as bytes, numbers, booleans, both key forms, both separators and comments", () => {
    const t = parseLuaTable(Buffer.from(
      `-- written by Prosody\nreturn {\n\t["a"] = "q\\"uo\\\\te\\n\\9\\x41\\u{e9}\\065\\z   end";\n\tb = 'single';\n\t["n"] = -12.5e1, flag = true; off = false\n};\n`,
      "latin1",
    ));
    expect((t.get("a") as Buffer).toString("latin1")).toBe('q"uo\\te\n\tA\u00c3\u00a9Aend');
    expect((t.get("b") as Buffer).toString()).toBe("single");
    expect(t.get("n")).toBe(-125);
    expect(t.get("flag")).toBe(true);
    expect(t.get("off")).toBe(false);
  });

  it("keeps bytes that are not UTF-8 (Lua strings are byte strings)", () => {
    const t = parseLuaTable(Buffer.from([...Buffer.from('return { salt = "'), 0xff, 0x00, ...Buffer.from('" };')]));
    expect(t.get("salt")).toEqual(Buffer.from([0xff, 0x00]));
  });

  it("a backslash-newline is a newline (string.format %q)", () => {
    expect((parseLuaTable(Buffer.from('return { s = "a\\\nb" }')).get("s") as Buffer).toString()).toBe("a\nb");
  });

  it.each([
    ["no return", "{ a = 1 }"],
    ["a nested table", "return { a = { 1 } }"],
    ["an unterminated string", 'return { a = "x }'],
    ["a raw newline in a string", 'return { a = "x\ny" }'],
    ["a bad escape", 'return { a = "\\q" }'],
    ["a decimal escape over 255", 'return { a = "\\300" }'],
    ["a duplicate key", "return { a = 1; a = 2 }"],
    ["a missing separator", "return { a = 1 b = 2 }"],
    ["text after the table", "return { a = 1 }; os.exit()"],
    ["a function call", 'return { a = os.getenv("HOME") }'],
    ["an empty file", ""],
  ])("refuses %s", (_what, src) => {
    formatError(() => parseLuaTable(Buffer.from(src)));
  });
});

describe("datamanager path encoding", () => {
  it("encodes every non-alphanumeric byte as %xx and back", () => {
    expect(encodeProsodyName("localhost")).toBe("localhost");
    expect(encodeProsodyName("example.org")).toBe("example%2eorg");
    expect(encodeProsodyName("w.x")).toBe("w%2ex");
    expect(encodeProsodyName("j\u00fcrgen")).toBe("j%c3%bcrgen");
    for (const s of ["localhost", "example.org", "w.x", "j\u00fcrgen", "a-b_c"]) expect(decodeProsodyName(encodeProsodyName(s))).toBe(s);
    expect(decodeProsodyName("w%2Ex")).toBe("w.x");
  });
  it("refuses what is not such a name", () => {
    expect(decodeProsodyName("w.x")).toBeNull();
    expect(decodeProsodyName("a%2")).toBeNull();
    expect(decodeProsodyName("%ff")).toBeNull(); // not UTF-8
    expect(decodeProsodyName("")).toBeNull();
  });
});

/** `ejabberdctl export2sql localhost FILE` on the test ejabberd 23.01 (test/support/ejabberd.sh; alice/alicepass, bob/bobpass). */
const EJABBERD_EXPORT = `--
-- Mnesia table: passwd
--
delete from users where username='bob' and 0=0;
INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('bob', '4+RqJ73Q4CjkmSQI3x+krFUXhqM=', 'n4qOrFfO6/oDgkCzdgRRHPn3p9k=', 'siUyjE0/8wvOah+cbfLLFA==', 4096);
delete from users where username='alice' and 0=0;
INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('alice', 'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'ilxQs39jdBKvib+iOFPEaQ==', 4096);
--
-- Mnesia table: last_activity
--
delete from last where username='bob' and 0=0;
INSERT INTO last(username, seconds, state) VALUES ('bob', '1796120420', 'Registered but didn''t login');
`;

describe("ejabberd SQL exports", () => {
  it("reads a real export2sql file: SCRAM-SHA-1 records that verify the passwords", () => {
    const r = ejabberdAccounts(EJABBERD_EXPORT, "localhost", ["localhost"]);
    expect(r.skipped).toEqual([]);
    expect(r.accounts.map((a) => a.account)).toEqual(["bob@localhost", "alice@localhost"]);
    const alice = r.accounts[1]!.records["SHA-1"]!;
    expect(alice.iterations).toBe(4096);
    expect(verifies(alice, "alicepass")).toBe(true);
    expect(verifies(r.accounts[0]!.records["SHA-1"]!, "bobpass", "bob")).toBe(true);
  });

  it("needs the host when rows have no server_host, and skips hosts the proxy does not serve", () => {
    expect(formatError(() => ejabberdAccounts(EJABBERD_EXPORT, undefined, ["localhost"]))).toContain("server_host");
    const r = ejabberdAccounts(EJABBERD_EXPORT, "other.example", ["localhost"]);
    expect(r.accounts).toEqual([]);
    expect(r.skipped.map((s) => s.reason)).toEqual(["not-a-served-host", "not-a-served-host"]);
  });

  it("reads the multi-host schema (server_host), several rows per INSERT, quoted names, and skips plain passwords", () => {
    const sql = `/* pg_dump */ INSERT INTO public."users" ("username", "server_host", "type", "password", "serverkey", "salt", "iterationcount", "created_at") VALUES
      ('alice', 'Example.ORG', 1, 'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'ilxQs39jdBKvib+iOFPEaQ==', 4096, '2024-01-01'),
      ('carol', 'example.org', 0, 'plain''pass\\\\word', '', '', 0, NULL),
      ('dave', 'elsewhere.org', 1, 'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'ilxQs39jdBKvib+iOFPEaQ==', 4096, NULL);`;
    const r = ejabberdAccounts(sql, undefined, ["example.org"]);
    expect(r.accounts.map((a) => a.account)).toEqual(["alice@example.org"]);
    expect(r.skipped).toEqual([
      { user: "carol", host: "example.org", reason: "plain-password" },
      { user: "dave", host: "elsewhere.org", reason: "not-a-served-host" },
    ]);
  });

  it("reads iterationcount written as a string", () => {
    const sql = EJABBERD_EXPORT.replace(", 4096);", ", '4096');");
    expect(ejabberdAccounts(sql, "localhost", ["localhost"]).accounts).toHaveLength(2);
  });

  it("parses SQL string escapes", () => {
    const [ins] = parseSqlInserts(`INSERT INTO t(a, b, c) VALUES ('it''s', 'back\\\\slash \\'q\\' \\n', E'x');`);
    expect(ins?.rows[0]).toEqual(["it's", "back\\slash 'q' \n", "x"]);
  });

  it.each([
    ["an INSERT without column names (mysqldump without --complete-insert)", "INSERT INTO users VALUES ('a','b');"],
    ["a row with too few values", "INSERT INTO users(username, password) VALUES ('a');"],
    ["an unterminated string", "INSERT INTO users(username, password) VALUES ('a, 'b);"],
    ["an unterminated comment", "/* INSERT"],
    ["a StoredKey that is not base64", "INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('a', 'not base64', 'AAAA', 'AAAA', 4096);"],
    ["keys of no hash's length", "INSERT INTO users(username, password, serverkey, salt, iterationcount) VALUES ('a', 'AAAA', 'AAAA', 'AAAA', 4096);"],
    ["a missing iteration count", "INSERT INTO users(username, password, serverkey, salt) VALUES ('a', 'oxIo9HAgtujwyTMz+vtlAVTS4XU=', '1ovmeAiNmRV6dWRP1I2P8MNttZc=', 'AAAA');"],
    ["a row without a username", "INSERT INTO users(username, password) VALUES (NULL, 'x');"],
    ["a table without a password column", "INSERT INTO users(username) VALUES ('a');"],
  ])("refuses %s", (_what, sql) => {
    const msg = formatError(() => ejabberdAccounts(sql, "localhost", ["localhost"]));
    expect(msg).not.toContain("oxIo9");
  });
});

/** `ejabberdctl export_piefxis_host DIR localhost` on the test ejabberd 23.01 (alice/alicepass, bob/bobpass). */
const PIEFXIS_MAIN = `<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='20261201-102227_localhost.xml'/></server-data>`;
const PIEFXIS_HOST = `<?xml version='1.0' encoding='UTF-8'?><host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'><user name='alice'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>aWx4UXMzOWpkQkt2aWIraU9GUEVhUT09</salt><server-key>MW92bWVBaU5tUlY2ZFdSUDFJMlA4TU50dFpjPQ==</server-key><stored-key>b3hJbzlIQWd0dWp3eVRNeit2dGxBVlRTNFhVPQ==</stored-key></scram-credentials></user><user name='bob'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>c2lVeWpFMC84d3ZPYWgrY2JmTExGQT09</salt><server-key>bjRxT3JGZk82L29EZ2tDemRnUlJIUG4zcDlrPQ==</server-key><stored-key>NCtScUo3M1E0Q2prbVNRSTN4K2tyRlVYaHFNPQ==</stored-key></scram-credentials></user></host>`;

describe("XEP-0227 exports", () => {
  it("the main file names its includes", () => {
    expect(xep0227Accounts(PIEFXIS_MAIN, ["localhost"])).toEqual({ accounts: [], skipped: [], includes: ["20261201-102227_localhost.xml"] });
  });

  it("reads ejabberd 23.01's host file (base64 of base64): records that verify the passwords", () => {
    const r = xep0227Accounts(PIEFXIS_HOST, ["localhost"]);
    expect(r.accounts.map((a) => a.account)).toEqual(["alice@localhost", "bob@localhost"]);
    const alice = r.accounts[0]!.records["SHA-1"]!;
    expect(alice.salt.toString("base64")).toBe("ilxQs39jdBKvib+iOFPEaQ==");
    expect(verifies(alice, "alicepass")).toBe(true);
    expect(verifies(r.accounts[1]!.records["SHA-1"]!, "bobpass", "bob")).toBe(true);
  });

  it("reads the plain encoding other exporters write (base64 of the bytes), inline hosts, several mechanisms", () => {
    const once = PIEFXIS_HOST
      .replace("aWx4UXMzOWpkQkt2aWIraU9GUEVhUT09", "ilxQs39jdBKvib+iOFPEaQ==")
      .replace("MW92bWVBaU5tUlY2ZFdSUDFJMlA4TU50dFpjPQ==", "1ovmeAiNmRV6dWRP1I2P8MNttZc=")
      .replace("b3hJbzlIQWd0dWp3eVRNeit2dGxBVlRTNFhVPQ==", "oxIo9HAgtujwyTMz+vtlAVTS4XU=")
      .replace("<?xml version='1.0' encoding='UTF-8'?>", "");
    const sha256 = `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>5000</iter-count><salt>c2FsdA==</salt><server-key>${Buffer.alloc(32, 1).toString("base64")}</server-key><stored-key>${Buffer.alloc(32, 2).toString("base64")}</stored-key></scram-credentials>`;
    const doc = `<server-data xmlns='urn:xmpp:pie:0'>${once.replace("</scram-credentials></user><user name='bob'>", `</scram-credentials>${sha256}</user><user name='bob'>`)}</server-data>`;
    const r = xep0227Accounts(doc, ["localhost"]);
    expect(Object.keys(r.accounts[0]!.records)).toEqual(["SHA-1", "SHA-256"]);
    expect(verifies(r.accounts[0]!.records["SHA-1"]!, "alicepass")).toBe(true);
    expect(r.accounts[0]!.records["SHA-256"]!.iterations).toBe(5000);
  });

  it("skips plain passwords, users without credentials, hosts not served; ignores -PLUS entries", () => {
    const doc = `<host xmlns='urn:xmpp:pie:0' jid='LocalHost'><user name='carol' password='carolpass'/><user name='dave'/><user name='erin'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1-PLUS'/></user></host>`;
    expect(xep0227Accounts(doc, ["localhost"]).skipped).toEqual([
      { user: "carol", host: "localhost", reason: "plain-password" },
      { user: "dave", host: "localhost", reason: "no-credentials" },
      { user: "erin", host: "localhost", reason: "no-credentials" },
    ]);
    expect(xep0227Accounts(PIEFXIS_HOST, ["example.org"]).skipped.map((s) => s.reason)).toEqual(["not-a-served-host", "not-a-served-host"]);
  });

  it.each([
    ["not XML", "<host"],
    ["another document", "<html/>"],
    ["a DTD (no entity expansion, ever)", `<!DOCTYPE host [<!ENTITY x "y">]><host xmlns='urn:xmpp:pie:0' jid='localhost'/>`],
    ["a host without jid", "<host xmlns='urn:xmpp:pie:0'><user name='a'/></host>"],
    ["a user without name", "<host xmlns='urn:xmpp:pie:0' jid='localhost'><user/></host>"],
    ["a bad iter-count", PIEFXIS_HOST.replace("<iter-count>4096", "<iter-count>-1")],
    ["a missing salt", PIEFXIS_HOST.replace(/<salt>[^<]*<\/salt>/, "")],
    ["a key of the wrong length", PIEFXIS_HOST.replace("b3hJbzlIQWd0dWp3eVRNeit2dGxBVlRTNFhVPQ==", "AAAA")],
    ["a key that is not base64", PIEFXIS_HOST.replace("b3hJbzlIQWd0dWp3eVRNeit2dGxBVlRTNFhVPQ==", "!!!!")],
    ["an include without href", "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include/></server-data>"],
  ])("refuses %s", (_what, xml) => {
    const msg = formatError(() => xep0227Accounts(xml, ["localhost"]));
    expect(msg).not.toContain("b3hJ");
  });
});
