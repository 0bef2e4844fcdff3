import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { SaslError } from "./errors.js";
import { ScramClient, type ScramClientOptions } from "./scram.js";
import { ScramServer, decodeScramMessage, scramServerError, type ScramServerOptions, type ScramVerifierRecord } from "./scram-server.js";
import { parseScramMechanism, type ScramHash, type ScramMechanism } from "./scram-primitives.js";

const DIGEST = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512" } as const;
const LEN = { "SHA-1": 20, "SHA-256": 32, "SHA-512": 64 } as const;

/** A verifier record made with Node's crypto directly (RFC 5802 §3), not with the code under test. */
function recordFor(hash: ScramHash, password: string, salt: Buffer, iterations: number): ScramVerifierRecord & { clientKey: Buffer } {
  const d = DIGEST[hash];
  const salted = pbkdf2Sync(password, salt, iterations, LEN[hash], d);
  const clientKey = createHmac(d, salted).update("Client Key").digest();
  return {
    salt,
    iterations,
    storedKey: createHash(d).update(clientKey).digest(),
    serverKey: createHmac(d, salted).update("Server Key").digest(),
    clientKey,
  };
}

function expectSasl(fn: () => unknown, code: string, condition?: string, serverError?: string): SaslError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SaslError);
    const e = err as SaslError;
    expect(e.code).toBe(code);
    if (condition !== undefined) expect(e.condition).toBe(condition);
    if (serverError !== undefined) expect(e.serverError).toBe(serverError);
    return e;
  }
  throw new Error(`expected SaslError ${code}`);
}

const b64 = (b: Buffer | string): string => Buffer.from(b).toString("base64");

describe("ScramServer against the RFC test vectors", () => {
  it("RFC 5802 §5 SCRAM-SHA-1 (user/pencil)", () => {
    const rec = recordFor("SHA-1", "pencil", Buffer.from("QSXCR+Q6sek8bf92", "base64"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false, nonce: "3rfcNHYJY1ZVvWVs7j" });
    expect(s.clientFirst("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")).toEqual({ username: "user", authzid: "", channelBinding: null });
    expect(s.serverFirst(rec)).toBe("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    const ok = s.clientFinal("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    expect(ok.serverFinal).toBe("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    expect(ok.clientKey.equals(rec.clientKey)).toBe(true);
    expect(ok).toMatchObject({ mechanism: "SCRAM-SHA-1", username: "user", authzid: "", channelBinding: null });
  });

  it("RFC 7677 §3 SCRAM-SHA-256 (user/pencil)", () => {
    const rec = recordFor("SHA-256", "pencil", Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-256", plusAdvertised: false, nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" });
    s.clientFirst("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    expect(s.serverFirst(rec)).toBe("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const ok = s.clientFinal(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    expect(ok.serverFinal).toBe("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    expect(ok.clientKey.equals(rec.clientKey)).toBe(true);
  });
});

/**
 * Vectors made by an independent implementation: core/sasl/testdata/gen-scram-vectors.py (Python 3.11
 * hashlib.pbkdf2_hmac + hmac, following RFC 5802 §3/§7 as written), run once on 2026-12-01; its output
 * is pasted here unchanged. They cover SHA-512, -PLUS with both channel-binding types, an authzid, a
 * username with "," and "=" (saslname escaping) and a non-ASCII password.
 */
const PY_VECTORS = [
  {
    mechanism: "SCRAM-SHA-512",
    username: "user",
    authzid: undefined,
    cbType: undefined,
    password: "pencil",
    cbData: "",
    salt: "W22ZaHqaRcKh+OXRwLmodw==",
    iterations: 4096,
    storedKey: "BNbknzdkY5NMC+ydgLnf0poM3/noE/FC1/QdC0dc8mxPdE0cXCVP6dzo4r6T1sh0Tfv8v+YqR8WJ7gcf4Owzjw==",
    serverKey: "hJTWMQgLHWEsEYbbFec5xD3b3G6CS+cWeU6DdwVoykeKy1GmQ5JNo+YIcAqWcHND2KNXj+fDNdVDPxYG87cGEQ==",
    clientKey: "PpoabDhYMWhHTo06f+hMD1cq4nN2mdUs9Z/H+Zuxg/0QcUUeqxO6lw6YESfp8qGQVzoYswf0dNFQNIutqArVkA==",
    cnonce: "rOprNGfwEbeRWgbNEkqO",
    snonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaHqaRcKh+OXRwLmodw==,i=4096",
    clientFinal:
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=crmFPYQmew71iK5E/cB4jUvLUEJtcGyfH6afkpVTAME1mAAOBZ/zMk14aA8nNKGqshf5ZaNqRuJA8eF5tKwS1g==",
    serverFinal: "v=u4y28UJ71pi+SOieaGrPkAYf1Dr1tJlPCzxTdYlW6LeWOfW9XwPbSjRwo1IIDy+KsXTeEAsmEjRy1wo7W7OiXw==",
  },
  {
    mechanism: "SCRAM-SHA-256-PLUS",
    username: "user",
    authzid: undefined,
    cbType: "tls-exporter",
    password: "pencil",
    cbData: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    salt: "QSXCR+Q6sek8bf92",
    iterations: 4096,
    storedKey: "FO+9jBb3MUukt6jJnzjPZOWc5ow/Pu6JtPyju0aqaE8=",
    serverKey: "qxJ1SbmSAi5EcS0J5Ck/cKAm/+Ixa+Kwp63f4OHDgzo=",
    clientKey: "SmcBhAwfyDAcNlLozwyKvSgghht9qugjq6emKUbktnA=",
    cnonce: "fyko+d2lbbFgONRv9qkxdawL",
    snonce: "3rfcNHYJY1ZVvWVs7j",
    clientFirst: "p=tls-exporter,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal:
      "c=cD10bHMtZXhwb3J0ZXIsLAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=D2/elnCpWN5vzfsupEyIK53QUqQZA7VoJLvCOkoiEBw=",
    serverFinal: "v=/x9512I1emNk+1VDcdC2VMj4vnhDWtaJHavjWnKxnkM=",
  },
  {
    mechanism: "SCRAM-SHA-512-PLUS",
    username: "jul,iet=x",
    authzid: "juliet@example.org",
    cbType: "tls-server-end-point",
    password: "p\u00e4ssw\u00f6rd",
    cbData: "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
    salt: "AP8Q7yDfMM9Av1CvYJ9wjw==",
    iterations: 5000,
    storedKey: "XB31szsKxeC2bBra+QJf/+QmSZlYFCMoMOcOSGSzySjx6u0XNnIAEOijnLypidaLAno97679kPb8US6b26/5cA==",
    serverKey: "zZiY5O+s1wXIVkl5Wk5YWPvo7aMdTe9EULhfhze7sec9cjJeQlF8RVmCzCKI4CbXsSKNyxgWIRv3s8jU4rjHWw==",
    clientKey: "iVv7weBiki1A0JtboNWrydwH+md1w2gXtl0HSGH5Fj7owVr59+Qg4uv7Jk3ssgHVIBkNLrp7kgbr+uQXkKKV2g==",
    cnonce: "Xq0gZQ6Mu1nvOQ3Sbe0dSA",
    snonce: "mK3i8tUeUq4Rk6bzl6m3",
    clientFirst: "p=tls-server-end-point,a=juliet@example.org,n=jul=2Ciet=3Dx,r=Xq0gZQ6Mu1nvOQ3Sbe0dSA",
    serverFirst: "r=Xq0gZQ6Mu1nvOQ3Sbe0dSAmK3i8tUeUq4Rk6bzl6m3,s=AP8Q7yDfMM9Av1CvYJ9wjw==,i=5000",
    clientFinal:
      "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCxhPWp1bGlldEBleGFtcGxlLm9yZyyrq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw==,r=Xq0gZQ6Mu1nvOQ3Sbe0dSAmK3i8tUeUq4Rk6bzl6m3,p=FdfF+8jpqfIgerbsmlVfR5JCcrVpkK9FfWVOd+VWuA8oudyk3N/SP7M1bFHHQjVfHQO/Me5XP/pbv2J4FFUgXw==",
    serverFinal: "v=c+GXam7yXjVl8yURi9D5lvHrlupoKBi5vByioHod/U/9A37sitw7L1cHzZxCFw/BLwc6Pqop4v/3Wz5XQ+WAMw==",
  },
] as const;

describe("ScramServer and ScramClient against vectors from an independent implementation (Python hashlib)", () => {
  for (const v of PY_VECTORS) {
    const record = (): ScramVerifierRecord => ({
      salt: Buffer.from(v.salt, "base64"),
      iterations: v.iterations,
      storedKey: Buffer.from(v.storedKey, "base64"),
      serverKey: Buffer.from(v.serverKey, "base64"),
    });
    const cb = v.cbType === undefined ? new Map<string, Buffer>() : new Map([[v.cbType, Buffer.from(v.cbData, "base64")]]);

    it(`${v.mechanism}: the verifier accepts the exchange and recovers the ClientKey`, () => {
      const s = new ScramServer({ mechanism: v.mechanism, channelBindings: cb, plusAdvertised: v.cbType !== undefined, nonce: v.snonce });
      expect(s.clientFirst(v.clientFirst)).toEqual({ username: v.username, authzid: v.authzid ?? "", channelBinding: v.cbType ?? null });
      expect(s.serverFirst(record())).toBe(v.serverFirst);
      const ok = s.clientFinal(v.clientFinal);
      expect(ok.serverFinal).toBe(v.serverFinal);
      expect(ok.clientKey.toString("base64")).toBe(v.clientKey);
    });

    it(`${v.mechanism}: the client produces the same messages`, () => {
      const hash = parseScramMechanism(v.mechanism)!.hash;
      const c = new ScramClient(hash, v.username, { password: v.password }, {
        nonce: v.cnonce,
        ...(v.cbType !== undefined ? { gs2: { type: v.cbType, data: Buffer.from(v.cbData, "base64") } } : {}),
        ...(v.authzid !== undefined ? { authzid: v.authzid } : {}),
      });
      expect(c.mechanism).toBe(v.mechanism);
      expect(c.clientFirst()).toBe(v.clientFirst);
      expect(c.clientFinal(v.serverFirst)).toBe(v.clientFinal);
      expect(() => c.verifyServerFinal(v.serverFinal)).not.toThrow();
      expect(c.clientKeys.clientKey.toString("base64")).toBe(v.clientKey);
      expect(c.clientKeys.serverKey.toString("base64")).toBe(v.serverKey);
    });
  }
});

const ALL: ScramMechanism[] = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS"];

/** Runs client against server; returns the outcome of clientFinal. */
function exchange(mechanism: ScramMechanism, opts: {
  serverPassword?: string;
  clientPassword?: string;
  cbServer?: Map<string, Buffer>;
  clientOptions?: ScramClientOptions;
  plusAdvertised?: boolean;
} = {}) {
  const { hash, plus } = parseScramMechanism(mechanism)!;
  const rec = recordFor(hash, opts.serverPassword ?? "s3cret", randomBytes(16), 4096);
  const exporter = randomBytes(32);
  const cbServer = opts.cbServer ?? new Map([["tls-exporter", exporter]]);
  const client = new ScramClient(hash, "alice", { password: opts.clientPassword ?? "s3cret" },
    opts.clientOptions ?? (plus ? { gs2: { type: "tls-exporter", data: exporter } } : {}));
  const server = new ScramServer({ mechanism, channelBindings: cbServer, plusAdvertised: opts.plusAdvertised ?? true });
  server.clientFirst(client.clientFirst());
  const sf = server.serverFirst(rec);
  const ok = server.clientFinal(client.clientFinal(sf));
  client.verifyServerFinal(ok.serverFinal);
  return { ok, rec, client };
}

describe("ScramServer round trips", () => {
  it.each(ALL)("%s with a random nonce: success, server signature verified by the client, ClientKey recovered", (mechanism) => {
    const { ok, rec } = exchange(mechanism);
    expect(ok.clientKey.equals(rec.clientKey)).toBe(true);
    expect(ok.serverFinal).toMatch(/^v=[A-Za-z0-9+/]+=*$/);
  });

  it.each(["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"] as const)(
    "%s: the recovered ClientKey with the record's ServerKey logs in elsewhere with the same salt (issue 12 §3)",
    (mechanism) => {
      const { ok, rec } = exchange(mechanism);
      const hash = parseScramMechanism(mechanism)!.hash;
      // the "upstream": a second verifier holding the same record
      const upstream = new ScramServer({ mechanism, plusAdvertised: false });
      const c = new ScramClient(hash, "alice", { clientKey: ok.clientKey, serverKey: rec.serverKey, salt: rec.salt, iterations: rec.iterations });
      upstream.clientFirst(c.clientFirst());
      const fin = upstream.clientFinal(c.clientFinal(upstream.serverFirst(rec)));
      expect(() => c.verifyServerFinal(fin.serverFinal)).not.toThrow();
      expect(() => c.keys).toThrow(SaslError); // no SaltedPassword here, only ClientKey/ServerKey
    },
  );

  it("a client sending y is fine while no -PLUS is advertised (RFC 5802 §6)", () => {
    const { ok } = exchange("SCRAM-SHA-256", { clientOptions: { gs2: "y" }, plusAdvertised: false });
    expect(ok.channelBinding).toBeNull();
  });

  it("binds to tls-server-end-point when the client picks it", () => {
    const endPoint = randomBytes(32);
    const cb = new Map([["tls-exporter", randomBytes(32)], ["tls-server-end-point", endPoint]]);
    const { ok } = exchange("SCRAM-SHA-1-PLUS", { cbServer: cb, clientOptions: { gs2: { type: "tls-server-end-point", data: endPoint } } });
    expect(ok.channelBinding).toBe("tls-server-end-point");
  });

  it("accepts extensions between r= and p= and covers them by the proof", () => {
    const rec = recordFor("SHA-256", "pencil", Buffer.from("salt-salt"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-256", plusAdvertised: false, nonce: "SNONCE" });
    s.clientFirst("n,,n=user,r=CNONCE,x=first-ext");
    const sf = s.serverFirst(rec);
    const without = "c=biws,r=CNONCESNONCE,y=ext";
    const auth = `n=user,r=CNONCE,x=first-ext,${sf},${without}`;
    const sig = createHmac("sha256", rec.storedKey).update(auth).digest();
    const proof = Buffer.from(rec.clientKey.map((b, i) => b ^ (sig[i] ?? 0)));
    expect(s.clientFinal(`${without},p=${b64(proof)}`).clientKey.equals(rec.clientKey)).toBe(true);
  });

  it("SASLprep's the username (RFC 5802 §5.1)", () => {
    const s = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
    expect(s.clientFirst("n,,n=us\u00ADer\u00A0x,r=abc").username).toBe("user x");
  });
});

describe("ScramServer failures", () => {
  const opts = (o: Partial<ScramServerOptions> = {}): ScramServerOptions => ({ mechanism: "SCRAM-SHA-256", plusAdvertised: true, ...o });
  const first = (msg: string, o: Partial<ScramServerOptions> = {}): (() => unknown) => () => new ScramServer(opts(o)).clientFirst(msg);

  it.each([
    ["no GS2 header", "n=user,r=abc"],
    ["unknown GS2 flag", "x,,n=user,r=abc"],
    ["GS2 header without the second comma", "n,n=user"],
    ["authzid that is not a=", "n,b=x,n=user,r=abc"],
    ["bare part that is not attributes", "n,,user,r=abc"],
    ["n= and r= swapped", "n,,r=abc,n=user"],
    ["no nonce", "n,,n=user"],
    ["a nonce with a non-printable character", "n,,n=user,r=ab\u00e9c"],
    ["a nonce over 1024 characters", `n,,n=user,r=${"a".repeat(1025)}`],
    ["an empty message", ""],
    ["a message over the bound", `n,,n=user,r=${"a".repeat(20_000)}`],
  ])("client-first with %s: malformed-request", (_what, msg) => {
    expectSasl(first(msg), "SASL_MALFORMED", "malformed-request", "other-error");
  });

  it("a channel-binding name that is not a cb-name: malformed-request", () => {
    expectSasl(first("p=tls unique,,n=user,r=abc", { mechanism: "SCRAM-SHA-256-PLUS" }), "SASL_MALFORMED", "malformed-request");
  });

  it.each([
    ["at the start (reserved-mext, RFC 5802 §5.1)", "n,,m=ext,n=user,r=abc"],
    ["among the extensions", "n,,n=user,r=abc,m=ext"],
  ])("a mandatory extension %s: extensions-not-supported", (_where, msg) => {
    expectSasl(first(msg), "SASL_SCRAM_EXTENSION", "malformed-request", "extensions-not-supported");
  });

  it.each([
    ["a = not followed by 2C or 3D", "n,,n=us=2er,r=abc"],
    ["a trailing =", "n,,n=user=,r=abc"],
    ["an empty username", "n,,n=,r=abc"],
    ["a username SASLprep refuses", "n,,n=us\u0007er,r=abc"],
    ["a username that maps to nothing", "n,,n=\u00AD,r=abc"],
  ])("%s: invalid-username-encoding", (_what, msg) => {
    expectSasl(first(msg), "SASL_USERNAME_ENCODING", "malformed-request", "invalid-username-encoding");
  });

  it.each([
    ["a bad saslname", "n,a=x=ZZ,n=user,r=abc"],
    ["not a JID", "n,a=@example.org,n=user,r=abc"],
    ["empty", "n,a=,n=user,r=abc"],
  ])("an authzid that is %s: invalid-authzid", (_what, msg) => {
    expectSasl(first(msg), "SASL_INVALID_AUTHZID", "invalid-authzid");
  });

  it("decodes the authzid saslname", () => {
    const s = new ScramServer(opts());
    expect(s.clientFirst("n,a=user@example.org,n=user,r=abc").authzid).toBe("user@example.org");
  });

  it("y while -PLUS is advertised is a downgrade: server-does-support-channel-binding", () => {
    expectSasl(first("y,,n=user,r=abc"), "SASL_CB_DOWNGRADE", "malformed-request", "server-does-support-channel-binding");
  });

  it("p= with a non-PLUS mechanism: channel-binding-not-supported", () => {
    expectSasl(first("p=tls-exporter,,n=user,r=abc", { channelBindings: new Map([["tls-exporter", Buffer.alloc(32)]]) }),
      "SASL_CB_UNSUPPORTED", "malformed-request", "channel-binding-not-supported");
  });

  it.each(["n", "y"])("a -PLUS mechanism with %s: malformed-request", (flag) => {
    expectSasl(first(`${flag},,n=user,r=abc`, { mechanism: "SCRAM-SHA-1-PLUS" }), "SASL_MALFORMED", "malformed-request");
  });

  it("a -PLUS mechanism with a type this connection does not have: unsupported-channel-binding-type", () => {
    const o = { mechanism: "SCRAM-SHA-512-PLUS" as const, channelBindings: new Map([["tls-server-end-point", Buffer.alloc(32)]]) };
    expectSasl(first("p=tls-unique,,n=user,r=abc", o), "SASL_CB_UNSUPPORTED", "malformed-request", "unsupported-channel-binding-type");
    expectSasl(first("p=tls-exporter,,n=user,r=abc", { mechanism: "SCRAM-SHA-512-PLUS" }), "SASL_CB_UNSUPPORTED");
  });

  it("a record that does not fit the hash: temporary-auth-failure", () => {
    const good = recordFor("SHA-256", "p", Buffer.from("salt"), 4096);
    for (const bad of [
      { ...good, storedKey: Buffer.alloc(20) },
      { ...good, serverKey: Buffer.alloc(64) },
      { ...good, salt: Buffer.alloc(0) },
      { ...good, iterations: 0 },
      { ...good, iterations: 1.5 },
    ]) {
      const s = new ScramServer(opts());
      s.clientFirst("n,,n=user,r=abc");
      expectSasl(() => s.serverFirst(bad), "SASL_TEMPORARY", "temporary-auth-failure");
    }
  });

  describe("client-final", () => {
    const rec = recordFor("SHA-256", "pencil", Buffer.from("some salt"), 4096);
    const exporter = Buffer.alloc(32, 7);
    /** A server after server-first, and the client-final a correct client would send. */
    function ready(o: { plus?: boolean; password?: string } = {}) {
      const plus = o.plus ?? false;
      const s = new ScramServer({
        mechanism: plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256",
        channelBindings: new Map([["tls-exporter", exporter]]),
        plusAdvertised: true,
        nonce: "SNONCE",
      });
      const c = new ScramClient("SHA-256", "user", { password: o.password ?? "pencil" }, { nonce: "CNONCE", ...(plus ? { gs2: { type: "tls-exporter", data: exporter } } : {}) });
      s.clientFirst(c.clientFirst());
      const final = c.clientFinal(s.serverFirst(rec));
      return { s, final };
    }
    const proofOf = (final: string): string => final.slice(final.lastIndexOf(",p=") + 3);

    it("a wrong password: not-authorized, invalid-proof", () => {
      const { s, final } = ready({ password: "wrong" });
      const e = expectSasl(() => s.clientFinal(final), "SASL_INVALID_PROOF", "not-authorized", "invalid-proof");
      expect(scramServerError(e)).toBe("e=invalid-proof");
    });

    it("a proof with one bit flipped: not-authorized", () => {
      const { s, final } = ready();
      const p = Buffer.from(proofOf(final), "base64");
      p[5] = (p[5] ?? 0) ^ 0x10;
      expectSasl(() => s.clientFinal(final.replace(proofOf(final), b64(p))), "SASL_INVALID_PROOF", "not-authorized");
    });

    it("channel-binding data of another connection: not-authorized, channel-bindings-dont-match", () => {
      const s = new ScramServer({ mechanism: "SCRAM-SHA-256-PLUS", channelBindings: new Map([["tls-exporter", exporter]]), plusAdvertised: true });
      const c = new ScramClient("SHA-256", "user", { password: "pencil" }, { gs2: { type: "tls-exporter", data: Buffer.alloc(32, 8) } });
      s.clientFirst(c.clientFirst());
      const final = c.clientFinal(s.serverFirst(rec));
      expectSasl(() => s.clientFinal(final), "SASL_CB_MISMATCH", "not-authorized", "channel-bindings-dont-match");
    });

    it("a c= that does not repeat the GS2 header: malformed-request, channel-bindings-dont-match", () => {
      const { s, final } = ready({ plus: true });
      const noCb = final.replace(/^c=[^,]*/, "c=biws");
      expectSasl(() => s.clientFinal(noCb), "SASL_CB_MISMATCH", "malformed-request", "channel-bindings-dont-match");
    });

    it("c= without the channel-binding data: malformed header check passes, data check fails", () => {
      const { s, final } = ready({ plus: true });
      const headerOnly = final.replace(/^c=[^,]*/, `c=${b64("p=tls-exporter,,")}`);
      expectSasl(() => s.clientFinal(headerOnly), "SASL_CB_MISMATCH", "not-authorized");
    });

    it("a nonce that is not this exchange's: malformed-request", () => {
      const { s, final } = ready();
      expectSasl(() => s.clientFinal(final.replace("r=CNONCESNONCE", "r=CNONCESNONCF")), "SASL_NONCE_MISMATCH", "malformed-request", "other-error");
    });

    it.each([
      ["c= not base64", (f: string) => f.replace(/^c=[^,]*/, "c=b!ws")],
      ["c= with whitespace", (f: string) => f.replace(/^c=[^,]*/, "c= biws")],
      ["p= not base64", (f: string) => f.replace(/,p=.*$/, ",p=%%%%")],
    ])("%s: incorrect-encoding, invalid-encoding", (_what, edit) => {
      const { s, final } = ready();
      expectSasl(() => s.clientFinal(edit(final)), "SASL_INCORRECT_ENCODING", "incorrect-encoding", "invalid-encoding");
    });

    it.each([
      ["a proof of the wrong length", (f: string) => f.replace(/,p=.*$/, `,p=${b64(Buffer.alloc(20))}`)],
      ["an empty proof", (f: string) => f.replace(/,p=.*$/, ",p=")],
      ["no proof", (f: string) => f.replace(/,p=.*$/, "")],
      ["the proof not last", (f: string) => `${f},x=1`],
      ["two proofs", (f: string) => f.replace(/,p=/, ",p=AAAA,p=")],
      ["no c=", (f: string) => f.replace(/^c=[^,]*,/, "")],
      ["not attributes", (f: string) => `${f},garbage`],
      ["r= before c=", (f: string) => f.replace(/^(c=[^,]*),(r=[^,]*)/, "$2,$1")],
      ["a message over the bound", (f: string) => f.replace(/,p=/, `,x=${"a".repeat(20_000)},p=`)],
    ])("%s: malformed-request", (_what, edit) => {
      const { s, final } = ready();
      expectSasl(() => s.clientFinal(edit(final)), "SASL_MALFORMED", "malformed-request");
    });

    it("a mandatory extension: extensions-not-supported", () => {
      const { s, final } = ready();
      expectSasl(() => s.clientFinal(final.replace(",p=", ",m=x,p=")), "SASL_SCRAM_EXTENSION", "malformed-request", "extensions-not-supported");
    });

    it("nothing from the messages in any error message", () => {
      const { s, final } = ready({ password: "wrong" });
      const e = expectSasl(() => s.clientFinal(final), "SASL_INVALID_PROOF");
      for (const part of ["CNONCE", "SNONCE", proofOf(final), "user", rec.storedKey.toString("base64")]) expect(e.message).not.toContain(part);
    });
  });

  it("enforces call order and is unusable after a failure", () => {
    const rec = recordFor("SHA-1", "p", Buffer.from("salt"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
    expectSasl(() => s.serverFirst(rec), "SASL_STATE");
    expectSasl(() => s.clientFinal("c=biws,r=x,p=AAAA"), "SASL_STATE");
    s.clientFirst("n,,n=user,r=abc");
    expectSasl(() => s.clientFirst("n,,n=user,r=abc"), "SASL_STATE");
    expectSasl(() => s.clientFinal("c=biws,r=x,p=AAAA"), "SASL_STATE");
    s.serverFirst(rec);
    expect(() => s.clientFinal("garbage")).toThrow(SaslError);
    expectSasl(() => s.clientFinal("c=biws,r=x,p=AAAA"), "SASL_STATE");

    const t = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
    expect(() => t.clientFirst("x")).toThrow(SaslError);
    expectSasl(() => t.clientFirst("n,,n=user,r=abc"), "SASL_STATE");
  });

  it("after success it accepts nothing more", () => {
    const rec = recordFor("SHA-1", "p", Buffer.from("salt"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false });
    const c = new ScramClient("SHA-1", "user", { password: "p" });
    s.clientFirst(c.clientFirst());
    const final = c.clientFinal(s.serverFirst(rec));
    s.clientFinal(final);
    expectSasl(() => s.clientFinal(final), "SASL_STATE");
  });

  it("refuses a mechanism that is not SCRAM, and a bad fixed nonce", () => {
    expect(() => new ScramServer({ mechanism: "PLAIN" as ScramMechanism, plusAdvertised: false })).toThrow(SaslError);
    expectSasl(() => new ScramServer({ mechanism: "SCRAM-SHA-1", plusAdvertised: false, nonce: "a,b" }), "SASL_MALFORMED");
  });

  it("keeps its secrets out of inspect() and JSON", () => {
    const rec = recordFor("SHA-256", "pencil", Buffer.from("salt"), 4096);
    const s = new ScramServer({ mechanism: "SCRAM-SHA-256", plusAdvertised: false });
    s.clientFirst("n,,n=user,r=abc");
    s.serverFirst(rec);
    const shown = inspect(s, { showHidden: true, depth: 5 }) + JSON.stringify(s);
    for (const secret of [rec.storedKey, rec.serverKey, rec.salt]) {
      expect(shown).not.toContain(secret.toString("base64"));
      expect(shown).not.toContain(secret.toString("hex"));
    }
    expect(shown).not.toContain("abc");
  });

  it("scramServerError: e=other-error without a value", () => {
    expect(scramServerError(new SaslError("not-authorized", "x"))).toBe("e=other-error");
  });
});

describe("decodeScramMessage", () => {
  it("decodes base64 and UTF-8", () => {
    expect(decodeScramMessage(b64("n,,n=j\u00fcrgen,r=abc"))).toBe("n,,n=j\u00fcrgen,r=abc");
  });
  it("refuses empty, bad base64, invalid UTF-8 and oversized payloads", () => {
    expectSasl(() => decodeScramMessage("="), "SASL_MALFORMED");
    expectSasl(() => decodeScramMessage("!!!!"), "SASL_INCORRECT_ENCODING");
    expectSasl(() => decodeScramMessage(Buffer.from([0x6e, 0x2c, 0xff]).toString("base64")), "SASL_MALFORMED");
    expectSasl(() => decodeScramMessage("A".repeat(30_000)), "SASL_MALFORMED");
  });
});
