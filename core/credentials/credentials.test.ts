import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ScramClient } from "../sasl/scram.js";
import { ScramServer } from "../sasl/scram-server.js";
import { credentialsFromPassword } from "./derive.js";
import { CredentialError } from "./errors.js";
import { mergeImported } from "./merge.js";
import {
  decodeAccountCredentials,
  encodeAccountCredentials,
  normalizeAccount,
  validateAccountCredentials,
  type AccountCredentials,
  type ScramCredential,
} from "./record.js";
import { openUpstreamSecret, sealUpstreamSecret, type SealingContext } from "./seal.js";

const NOW = "2026-12-01T10:00:00.000Z";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CredentialError);
    return (e as CredentialError).code;
  }
  throw new Error("expected a CredentialError");
}

/** SHA-1 keys as a server (Prosody) stores them, made with Node's crypto directly. */
function serverSha1(password: string, salt: Buffer, iterations = 4096) {
  const salted = pbkdf2Sync(password, salt, iterations, 20, "sha1");
  const clientKey = createHmac("sha1", salted).update("Client Key").digest();
  return {
    salted,
    clientKey,
    record: { salt, iterations, storedKey: createHash("sha1").update(clientKey).digest(), serverKey: createHmac("sha1", salted).update("Server Key").digest() },
  };
}

/** Logs in with `password` through a verifier holding `rec`; returns the ClientKey it recovered. */
function login(hash: "SHA-1" | "SHA-256" | "SHA-512", rec: ScramCredential, password: string): Buffer {
  const c = new ScramClient(hash, "alice", { password });
  const s = new ScramServer({ mechanism: `SCRAM-${hash}`, plusAdvertised: false });
  s.clientFirst(c.clientFirst());
  const ok = s.clientFinal(c.clientFinal(s.serverFirst(rec)));
  c.verifyServerFinal(ok.serverFinal);
  return ok.clientKey;
}

describe("normalizeAccount", () => {
  it("normalises bare JIDs and refuses the rest", () => {
    expect(normalizeAccount("Alice@LocalHost")).toBe("alice@localhost");
    expect(normalizeAccount("alice@localhost/phone")).toBeNull();
    expect(normalizeAccount("localhost")).toBeNull();
    expect(normalizeAccount("a b@localhost")).toBeNull();
  });
});

describe("sealed upstream secret (AES-256-GCM under a key from the client-leg ClientKey)", () => {
  const ctx: SealingContext = { account: "alice@localhost", clientHash: "SHA-256", clientSalt: Buffer.from("client-salt"), clientKey: Buffer.alloc(32, 1) };
  const secret = { kind: "salted-password" as const, hash: "SHA-1" as const, salt: Buffer.from("server-salt"), iterations: 4096, saltedPassword: Buffer.alloc(20, 9) };

  it("round-trips SaltedPassword and ClientKey/ServerKey", () => {
    const opened = openUpstreamSecret(ctx, sealUpstreamSecret(ctx, secret));
    expect(opened).toEqual(secret);
    const ck = { kind: "client-key" as const, hash: "SHA-512" as const, salt: Buffer.from("s"), iterations: 5000, clientKey: Buffer.alloc(64, 2), serverKey: Buffer.alloc(64, 3) };
    expect(openUpstreamSecret(ctx, sealUpstreamSecret(ctx, ck))).toEqual(ck);
  });

  it("a fresh nonce each time: the same secret never seals the same way twice", () => {
    const a = sealUpstreamSecret(ctx, secret);
    const b = sealUpstreamSecret(ctx, secret);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.ciphertext.equals(secret.saltedPassword)).toBe(false);
  });

  it.each([
    ["a wrong ClientKey", { ...ctx, clientKey: Buffer.alloc(32, 2) }],
    ["another account", { ...ctx, account: "mallory@localhost" }],
    ["another record's hash (same key length)", { ...ctx, clientHash: "SHA-256" as const, clientSalt: Buffer.from("other-salt") }],
  ])("does not open with %s", (_what, other) => {
    expect(code(() => openUpstreamSecret(other, sealUpstreamSecret(ctx, secret)))).toBe("CREDENTIAL_UNSEAL");
  });

  it.each([
    ["the ciphertext", (s: ReturnType<typeof sealUpstreamSecret>) => ({ ...s, ciphertext: Buffer.from(s.ciphertext.map((b, i) => (i === 0 ? b ^ 1 : b))) })],
    ["the tag", (s: ReturnType<typeof sealUpstreamSecret>) => ({ ...s, tag: Buffer.from(s.tag.map((b, i) => (i === 3 ? b ^ 1 : b))) })],
    ["the clear salt", (s: ReturnType<typeof sealUpstreamSecret>) => ({ ...s, salt: Buffer.from("server-salu") })],
    ["the clear iteration count", (s: ReturnType<typeof sealUpstreamSecret>) => ({ ...s, iterations: 4097 })],
  ])("does not open when %s was changed", (_what, edit) => {
    expect(code(() => openUpstreamSecret(ctx, edit(sealUpstreamSecret(ctx, secret))))).toBe("CREDENTIAL_UNSEAL");
  });

  it("refuses lengths that cannot be right", () => {
    expect(code(() => sealUpstreamSecret({ ...ctx, clientKey: Buffer.alloc(20) }, secret))).toBe("CREDENTIAL_FORMAT");
    expect(code(() => sealUpstreamSecret(ctx, { ...secret, saltedPassword: Buffer.alloc(32) }))).toBe("CREDENTIAL_FORMAT");
    expect(code(() => sealUpstreamSecret(ctx, { kind: "client-key", hash: "SHA-1", salt: Buffer.from("s"), iterations: 1, clientKey: Buffer.alloc(20), serverKey: Buffer.alloc(19) }))).toBe("CREDENTIAL_FORMAT");
    expect(code(() => sealUpstreamSecret(ctx, secret, Buffer.alloc(8)))).toBe("CREDENTIAL_FORMAT");
    const s = sealUpstreamSecret(ctx, secret);
    expect(code(() => openUpstreamSecret(ctx, { ...s, ciphertext: s.ciphertext.subarray(1) }))).toBe("CREDENTIAL_FORMAT");
  });
});

describe("records from a PLAIN login (issue 12 §2)", () => {
  const serverSalt = Buffer.from("89ace65f-03d5-4fdc-aa18-04c15ecf31fd");
  const server = serverSha1("alicepass", serverSalt);
  const upstream = { hash: "SHA-1" as const, saltedPassword: server.salted, salt: serverSalt, iterations: 4096 };

  it("mirrors the server's salt for its hash and uses the proxy's own for the others", async () => {
    let n = 0;
    const c = await credentialsFromPassword("alice@localhost", "alicepass", upstream, {
      hashes: ["SHA-1", "SHA-256", "SHA-512"], iterations: 4096, updatedAt: NOW, randomSalt: () => Buffer.alloc(16, ++n),
    });
    expect(c.scram["SHA-1"]).toMatchObject({ origin: "server", salt: serverSalt, iterations: 4096 });
    expect(c.scram["SHA-1"]?.storedKey.equals(server.record.storedKey)).toBe(true);
    expect(c.scram["SHA-1"]?.serverKey.equals(server.record.serverKey)).toBe(true);
    expect(c.scram["SHA-1"]?.upstream).toBeUndefined();
    expect(c.scram["SHA-256"]).toMatchObject({ origin: "proxy", salt: Buffer.alloc(16, 1) });
    expect(c.scram["SHA-512"]).toMatchObject({ origin: "proxy", salt: Buffer.alloc(16, 2) });
    // every record verifies the password
    for (const h of ["SHA-1", "SHA-256", "SHA-512"] as const) expect(login(h, c.scram[h]!, "alicepass")).toHaveLength({ "SHA-1": 20, "SHA-256": 32, "SHA-512": 64 }[h]);
  });

  it("a client login with another hash unlocks the server's SaltedPassword; the store alone does not", async () => {
    const c = await credentialsFromPassword("alice@localhost", "alicepass", upstream, { hashes: ["SHA-1", "SHA-256"], iterations: 4096, updatedAt: NOW });
    const rec = c.scram["SHA-256"]!;
    const clientKey = login("SHA-256", rec, "alicepass");
    const opened = openUpstreamSecret({ account: c.account, clientHash: "SHA-256", clientSalt: rec.salt, clientKey }, rec.upstream!);
    expect(opened.kind).toBe("salted-password");
    if (opened.kind === "salted-password") expect(opened.saltedPassword.equals(server.salted)).toBe(true);
    // what the store holds (StoredKey, ServerKey) is not a key for it
    for (const wrong of [rec.storedKey, rec.serverKey]) {
      expect(code(() => openUpstreamSecret({ account: c.account, clientHash: "SHA-256", clientSalt: rec.salt, clientKey: wrong }, rec.upstream!))).toBe("CREDENTIAL_UNSEAL");
    }
  });

  it("without a SCRAM upstream login, records carry no upstream secret", async () => {
    const c = await credentialsFromPassword("alice@localhost", "pw", undefined, { hashes: ["SHA-256"], iterations: 4096, updatedAt: NOW });
    expect(c.scram["SHA-256"]?.upstream).toBeUndefined();
    expect(c.scram["SHA-256"]?.origin).toBe("proxy");
  });

  it("refuses a password SASLprep cannot prepare", async () => {
    await expect(credentialsFromPassword("alice@localhost", "a\u0007", undefined, { hashes: ["SHA-1"], iterations: 4096, updatedAt: NOW })).rejects.toThrow(CredentialError);
  });
});

describe("the JSON form", () => {
  async function sample(): Promise<AccountCredentials> {
    const serverSalt = Buffer.from("salt-of-the-server");
    const s = serverSha1("pw", serverSalt);
    return credentialsFromPassword("alice@localhost", "pw", { hash: "SHA-1", saltedPassword: s.salted, salt: serverSalt, iterations: 4096 }, {
      hashes: ["SHA-1", "SHA-256", "SHA-512"], iterations: 4096, updatedAt: NOW,
    });
  }

  it("round-trips", async () => {
    const c = await sample();
    const text = encodeAccountCredentials(c);
    expect(decodeAccountCredentials(text)).toEqual(c);
    expect(decodeAccountCredentials(text, "alice@localhost").account).toBe("alice@localhost");
    expect(JSON.parse(text)).toMatchObject({ version: 1, account: "alice@localhost", source: "login" });
  });

  type Doc = Record<string, unknown>;
  const rec = (d: Doc, h: string): Doc => (d["scram"] as Record<string, Doc>)[h] as Doc;
  const scram = (d: Doc): Record<string, unknown> => d["scram"] as Record<string, unknown>;
  const b64 = (n: number): string => Buffer.alloc(n).toString("base64");
  const edits: [string, (d: Doc) => void][] = [
    ["not JSON", () => undefined],
    ["another version", (d) => (d["version"] = 2)],
    ["an unknown top-level field", (d) => (d["extra"] = 1)],
    ["an account that is not normalised", (d) => (d["account"] = "Alice@localhost")],
    ["an account with a resource", (d) => (d["account"] = "alice@localhost/x")],
    ["an unknown source", (d) => (d["source"] = "magic")],
    ["a bad time", (d) => (d["updatedAt"] = "yesterday")],
    ["no records", (d) => (d["scram"] = {})],
    ["an unknown hash", (d) => (scram(d)["MD5"] = rec(d, "SHA-1"))],
    ["an unknown record field", (d) => (rec(d, "SHA-1")["password"] = "x")],
    ["an unknown origin", (d) => (rec(d, "SHA-1")["origin"] = "elsewhere")],
    ["a StoredKey of the wrong length", (d) => (rec(d, "SHA-256")["storedKey"] = b64(20))],
    ["a salt that is not base64", (d) => (rec(d, "SHA-1")["salt"] = "not base64!")],
    ["non-canonical base64", (d) => (rec(d, "SHA-1")["salt"] = "QR==")],
    ["an empty salt", (d) => (rec(d, "SHA-1")["salt"] = "")],
    ["an iteration count of 0", (d) => (rec(d, "SHA-1")["iterations"] = 0)],
    ["a fractional iteration count", (d) => (rec(d, "SHA-1")["iterations"] = 4096.5)],
    ["an iteration count as a string", (d) => (rec(d, "SHA-1")["iterations"] = "4096")],
    ["a sealed secret on a server record", (d) => (rec(d, "SHA-1")["upstream"] = rec(d, "SHA-256")["upstream"])],
    ["a sealed secret of an unknown kind", (d) => ((rec(d, "SHA-256")["upstream"] as Doc)["kind"] = "password")],
    ["a sealed secret with a short tag", (d) => ((rec(d, "SHA-256")["upstream"] as Doc)["tag"] = b64(8))],
    ["a sealed secret of the wrong length", (d) => ((rec(d, "SHA-256")["upstream"] as Doc)["ciphertext"] = b64(32))],
    ["a record that is an array", (d) => (scram(d)["SHA-1"] = [])],
  ];
  it.each(edits)("refuses %s as CREDENTIAL_FORMAT without echoing values", async (_what, edit) => {
    const c = await sample();
    const doc = JSON.parse(encodeAccountCredentials(c)) as Doc;
    edit(doc);
    const text = _what === "not JSON" ? "{ broken" : JSON.stringify(doc);
    try {
      decodeAccountCredentials(text);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(CredentialError);
      expect((e as CredentialError).code).toBe("CREDENTIAL_FORMAT");
      for (const h of ["SHA-1", "SHA-256"] as const) {
        expect((e as Error).message).not.toContain(c.scram[h]!.salt.toString("base64"));
        expect((e as Error).message).not.toContain(c.scram[h]!.storedKey.toString("base64"));
      }
    }
  });

  it("refuses a record for another account than the one asked for", async () => {
    const text = encodeAccountCredentials(await sample());
    expect(code(() => decodeAccountCredentials(text, "bob@localhost"))).toBe("CREDENTIAL_FORMAT");
  });

  it("a hash present with an undefined value counts as absent", async () => {
    const c = await sample();
    const only = { ...c, scram: { "SHA-1": c.scram["SHA-1"], "SHA-256": undefined } };
    expect(() => validateAccountCredentials(only)).not.toThrow();
    expect(Object.keys(JSON.parse(encodeAccountCredentials(only)).scram as object)).toEqual(["SHA-1"]);
    expect(code(() => validateAccountCredentials({ ...c, scram: { "SHA-1": undefined } }))).toBe("CREDENTIAL_FORMAT");
  });

  it("validateAccountCredentials refuses a key of the wrong length in memory", async () => {
    const c = await sample();
    c.scram["SHA-1"]!.serverKey = Buffer.alloc(32);
    expect(code(() => validateAccountCredentials(c))).toBe("CREDENTIAL_FORMAT");
  });
});

describe("mergeImported", () => {
  const salt = Buffer.from("salt-1");
  const a = serverSha1("old", salt).record;
  const b = serverSha1("new", Buffer.from("salt-2")).record;

  it("new, then unchanged", () => {
    const first = mergeImported(undefined, { account: "alice@localhost", records: { "SHA-1": a } }, "import-prosody", NOW);
    expect(first.change).toBe("new");
    expect(first.credentials.scram["SHA-1"]).toMatchObject({ origin: "server", iterations: 4096 });
    const again = mergeImported(first.credentials, { account: "alice@localhost", records: { "SHA-1": a } }, "import-prosody", "2026-12-02T00:00:00Z");
    expect(again.change).toBe("unchanged");
    expect(again.credentials).toBe(first.credentials);
  });

  it("keeps the proxy's own records while the server's record is unchanged", async () => {
    const login = await credentialsFromPassword("alice@localhost", "old", { hash: "SHA-1", saltedPassword: serverSha1("old", salt).salted, salt, iterations: 4096 }, {
      hashes: ["SHA-1", "SHA-256"], iterations: 4096, updatedAt: NOW,
    });
    const same = mergeImported(login, { account: "alice@localhost", records: { "SHA-1": a } }, "import-prosody", NOW);
    expect(same.change).toBe("unchanged");
    expect(same.credentials.scram["SHA-256"]).toBeDefined();
    // the server now also has a SHA-256 record: added, the rest kept
    const sha256 = { salt: Buffer.from("s256"), iterations: 4096, storedKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) };
    const more = mergeImported(login, { account: "alice@localhost", records: { "SHA-1": a, "SHA-256": sha256 } }, "import-prosody", NOW);
    expect(more.change).toBe("updated");
    expect(more.credentials.scram["SHA-256"]?.origin).toBe("server");
    expect(more.credentials.scram["SHA-1"]).toBe(login.scram["SHA-1"]);
  });

  it("a changed server record (password change) replaces everything: old proxy records would let the old password in", async () => {
    const login = await credentialsFromPassword("alice@localhost", "old", { hash: "SHA-1", saltedPassword: serverSha1("old", salt).salted, salt, iterations: 4096 }, {
      hashes: ["SHA-1", "SHA-256"], iterations: 4096, updatedAt: NOW,
    });
    const r = mergeImported(login, { account: "alice@localhost", records: { "SHA-1": b } }, "import-prosody", NOW);
    expect(r.change).toBe("replaced");
    expect(Object.keys(r.credentials.scram)).toEqual(["SHA-1"]);
    expect(r.credentials.scram["SHA-1"]?.salt.equals(b.salt)).toBe(true);
    expect(r.credentials.source).toBe("import-prosody");
  });
});
