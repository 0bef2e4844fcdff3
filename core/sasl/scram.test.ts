import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SaslError } from "./errors.js";
import { ScramClient, pickMechanism, scramHashOf, type ScramHash } from "./scram.js";

// RFC 5802 §5 (SCRAM-SHA-1), user "user", password "pencil".
const SHA1 = {
  nonce: "fyko+d2lbbFgONRv9qkxdawL",
  clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
  serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};
// RFC 7677 §3 (SCRAM-SHA-256), user "user", password "pencil".
const SHA256 = {
  nonce: "rOprNGfwEbeRWgbNEkqO",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function expectSasl(fn: () => unknown, code: string, condition?: string): SaslError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SaslError);
    const e = err as SaslError;
    expect(e.code).toBe(code);
    if (condition !== undefined) expect(e.condition).toBe(condition);
    return e;
  }
  throw new Error(`expected SaslError ${code}`);
}

/** A minimal SCRAM server side (RFC 5802 §3) to produce valid/invalid server messages in tests. */
function fakeServer(hash: ScramHash, password: string, salt: Buffer, iterations: number) {
  const digest = hash === "SHA-256" ? "sha256" : "sha1";
  const len = hash === "SHA-256" ? 32 : 20;
  const salted = pbkdf2Sync(password, salt, iterations, len, digest);
  const hmac = (k: Buffer, d: string) => createHmac(digest, k).update(d).digest();
  return {
    first(clientFirst: string, snonce = "SERVERNONCE"): string {
      const cnonce = /r=([^,]+)/.exec(clientFirst)?.[1] ?? "";
      return `r=${cnonce}${snonce},s=${salt.toString("base64")},i=${iterations}`;
    },
    final(clientFirst: string, serverFirst: string, clientFinal: string): string {
      const bare = clientFirst.slice(3);
      const withoutProof = clientFinal.replace(/,p=[^,]*$/, "");
      const auth = `${bare},${serverFirst},${withoutProof}`;
      // check the client proof like a server would
      const proof = Buffer.from(/,p=([^,]*)$/.exec(clientFinal)?.[1] ?? "", "base64");
      const storedKey = createHash(digest).update(hmac(salted, "Client Key")).digest();
      const sig = hmac(storedKey, auth);
      const clientKey = Buffer.from(proof.map((b, i) => b ^ (sig[i] ?? 0)));
      const ok = timingSafeEqual(createHash(digest).update(clientKey).digest(), storedKey);
      if (!ok) return "e=invalid-proof";
      return `v=${hmac(hmac(salted, "Server Key"), auth).toString("base64")}`;
    },
  };
}

describe("ScramClient RFC test vectors", () => {
  it("RFC 5802 §5 SCRAM-SHA-1 user/pencil", () => {
    const c = new ScramClient("SHA-1", "user", { password: "pencil" }, SHA1.nonce);
    expect(c.mechanism).toBe("SCRAM-SHA-1");
    expect(c.clientFirst()).toBe(SHA1.clientFirst);
    expect(c.clientFinal(SHA1.serverFirst)).toBe(SHA1.clientFinal);
    expect(() => c.verifyServerFinal(SHA1.serverFinal)).not.toThrow();
    expect(c.keys.iterations).toBe(4096);
    expect(c.keys.salt.toString("base64")).toBe("QSXCR+Q6sek8bf92");
    expect(c.keys.saltedPassword).toHaveLength(20);
  });

  it("RFC 7677 §3 SCRAM-SHA-256 user/pencil", () => {
    const c = new ScramClient("SHA-256", "user", { password: "pencil" }, SHA256.nonce);
    expect(c.mechanism).toBe("SCRAM-SHA-256");
    expect(c.clientFirst()).toBe(SHA256.clientFirst);
    expect(c.clientFinal(SHA256.serverFirst)).toBe(SHA256.clientFinal);
    expect(() => c.verifyServerFinal(SHA256.serverFinal)).not.toThrow();
    expect(c.keys.saltedPassword).toHaveLength(32);
  });

  it("clientFinalAsync gives the same result", async () => {
    const c = new ScramClient("SHA-256", "user", { password: "pencil" }, SHA256.nonce);
    c.clientFirst();
    await expect(c.clientFinalAsync(SHA256.serverFirst)).resolves.toBe(SHA256.clientFinal);
    c.verifyServerFinal(SHA256.serverFinal);
  });

  it("server-final extensions after v= are ignored", () => {
    const c = new ScramClient("SHA-1", "user", { password: "pencil" }, SHA1.nonce);
    c.clientFirst();
    c.clientFinal(SHA1.serverFirst);
    expect(() => c.verifyServerFinal(`${SHA1.serverFinal},x=ext`)).not.toThrow();
  });
});

describe("salted password reuse", () => {
  for (const [hash, v] of [["SHA-1", SHA1], ["SHA-256", SHA256]] as const) {
    it(`${hash}: cached keys produce the same proof as the password path`, () => {
      const a = new ScramClient(hash, "user", { password: "pencil" }, v.nonce);
      a.clientFirst();
      a.clientFinal(v.serverFirst);
      a.verifyServerFinal(v.serverFinal);
      const keys = a.keys;

      const b = new ScramClient(hash, "user", keys, v.nonce);
      expect(b.keys.iterations).toBe(4096); // known from construction
      expect(b.clientFirst()).toBe(v.clientFirst);
      expect(b.clientFinal(v.serverFirst)).toBe(v.clientFinal);
      b.verifyServerFinal(v.serverFinal);
    });
  }

  it(`a secret supplied later ("later", supply): the client-first goes out first, the proof is the same`, () => {
    const a = new ScramClient("SHA-1", "user", { password: "pencil" }, SHA1.nonce);
    a.clientFirst();
    a.clientFinal(SHA1.serverFirst);
    const b = new ScramClient("SHA-1", "user", "later", SHA1.nonce);
    expect(b.clientFirst()).toBe(SHA1.clientFirst);
    b.supply(a.clientKeys);
    expect(() => b.supply(a.clientKeys)).toThrow(SaslError);
    expect(b.clientFinal(SHA1.serverFirst)).toBe(SHA1.clientFinal);
    b.verifyServerFinal(SHA1.serverFinal);
    // nothing supplied: clientFinal cannot run
    const c = new ScramClient("SHA-1", "user", "later", SHA1.nonce);
    c.clientFirst();
    expect(() => c.clientFinal(SHA1.serverFirst)).toThrow(SaslError);
  });

  it("refuses when the server's salt changed", () => {
    const a = new ScramClient("SHA-256", "user", { password: "pencil" }, SHA256.nonce);
    a.clientFirst();
    a.clientFinal(SHA256.serverFirst);
    const b = new ScramClient("SHA-256", "user", a.keys, SHA256.nonce);
    b.clientFirst();
    const e = expectSasl(
      () => b.clientFinal(SHA256.serverFirst.replace("s=W22ZaJ0SNY7soEsUEjb6gQ==", "s=QSXCR+Q6sek8bf92")),
      "SASL_NEEDS_PASSWORD",
      "credentials-expired",
    );
    expect(e.message).not.toContain("QSXCR");
  });

  it("refuses when the server's iteration count changed", () => {
    const a = new ScramClient("SHA-256", "user", { password: "pencil" }, SHA256.nonce);
    a.clientFirst();
    a.clientFinal(SHA256.serverFirst);
    const b = new ScramClient("SHA-256", "user", a.keys, SHA256.nonce);
    b.clientFirst();
    expectSasl(() => b.clientFinal(SHA256.serverFirst.replace("i=4096", "i=8192")), "SASL_NEEDS_PASSWORD");
  });

  it("rejects a cached salted password of the wrong length", () => {
    expectSasl(
      () => new ScramClient("SHA-256", "user", { saltedPassword: Buffer.alloc(20), salt: Buffer.from("x"), iterations: 4096 }),
      "SASL_MALFORMED",
    );
  });

  it("keys getter returns copies and throws before clientFinal with a password", () => {
    const c = new ScramClient("SHA-1", "user", { password: "pencil" }, SHA1.nonce);
    expectSasl(() => c.keys, "SASL_STATE");
    c.clientFirst();
    c.clientFinal(SHA1.serverFirst);
    const k = c.keys;
    k.saltedPassword.fill(0);
    expect(c.keys.saltedPassword.equals(k.saltedPassword)).toBe(false);
  });

  it("works against a server with another salt and iteration count", () => {
    const srv = fakeServer("SHA-256", "s3cret", Buffer.from("0123456789abcdef"), 5000);
    const c = new ScramClient("SHA-256", "alice", { password: "s3cret" });
    const cf = c.clientFirst();
    expect(cf).toMatch(/^n,,n=alice,r=[A-Za-z0-9+/]{24}$/);
    const sf = srv.first(cf);
    const cfin = c.clientFinal(sf);
    c.verifyServerFinal(srv.final(cf, sf, cfin));
    expect(c.keys.iterations).toBe(5000);

    // second login from the cache, fresh nonce
    const d = new ScramClient("SHA-256", "alice", c.keys);
    const cf2 = d.clientFirst();
    const sf2 = srv.first(cf2, "OTHER");
    const cfin2 = d.clientFinal(sf2);
    d.verifyServerFinal(srv.final(cf2, sf2, cfin2));
  });

  it("a wrong password is reported by the server as e=invalid-proof", () => {
    const srv = fakeServer("SHA-1", "right", Buffer.from("saltsalt"), 4096);
    const c = new ScramClient("SHA-1", "bob", { password: "wrong" });
    const cf = c.clientFirst();
    const sf = srv.first(cf);
    const fin = c.clientFinal(sf);
    const e = expectSasl(() => c.verifyServerFinal(srv.final(cf, sf, fin)), "SASL_SERVER_ERROR", "not-authorized");
    expect(e.serverError).toBe("invalid-proof");
    expect(e.message).not.toContain("wrong");
  });
});

describe("ScramClient rejects a misbehaving server", () => {
  function started(v = SHA256): ScramClient {
    const c = new ScramClient("SHA-256", "user", { password: "pencil" }, v.nonce);
    c.clientFirst();
    return c;
  }

  it("tampered server signature", () => {
    const c = started();
    c.clientFinal(SHA256.serverFirst);
    const sig = Buffer.from(SHA256.serverFinal.slice(2), "base64");
    sig[0] = (sig[0] ?? 0) ^ 1;
    expectSasl(() => c.verifyServerFinal(`v=${sig.toString("base64")}`), "SASL_SERVER_SIGNATURE", "not-authorized");
  });

  it("server signature of the wrong length", () => {
    const c = started();
    c.clientFinal(SHA256.serverFirst);
    expectSasl(() => c.verifyServerFinal(SHA1.serverFinal), "SASL_SERVER_SIGNATURE");
  });

  it("server-final without v= or e=", () => {
    const c = started();
    c.clientFinal(SHA256.serverFirst);
    expectSasl(() => c.verifyServerFinal("x=1"), "SASL_MALFORMED");
  });

  it("server-final with bad base64", () => {
    const c = started();
    c.clientFinal(SHA256.serverFirst);
    expectSasl(() => c.verifyServerFinal("v=!!!!"), "SASL_INCORRECT_ENCODING");
  });

  it("nonce not starting with the client nonce", () => {
    const c = started();
    expectSasl(() => c.clientFinal(SHA256.serverFirst.replace("r=rOpr", "r=XOpr")), "SASL_NONCE_MISMATCH", "not-authorized");
  });

  it("nonce that merely echoes the client nonce", () => {
    const c = started();
    expectSasl(() => c.clientFinal(`r=${SHA256.nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`), "SASL_NONCE_MISMATCH");
  });

  it("nonce with a non-printable character", () => {
    const c = started();
    expectSasl(() => c.clientFinal(`r=${SHA256.nonce}ab\u00e9,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`), "SASL_MALFORMED");
  });

  it("iteration count below 4096", () => {
    const c = started();
    expectSasl(() => c.clientFinal(SHA256.serverFirst.replace("i=4096", "i=4095")), "SASL_ITERATIONS", "mechanism-too-weak");
  });

  it("iteration count above 1_000_000", () => {
    const c = started();
    expectSasl(() => c.clientFinal(SHA256.serverFirst.replace("i=4096", "i=1000001")), "SASL_ITERATIONS");
  });

  it.each(["i=0", "i=-4096", "i=04096", "i=4096.0", "i=", "i=99999999999999999999"])("iteration count %s", (iv) => {
    const c = started();
    expectSasl(() => c.clientFinal(SHA256.serverFirst.replace("i=4096", iv)), "SASL_MALFORMED");
  });

  it("mandatory extension m=", () => {
    const c = started();
    expectSasl(() => c.clientFinal(`m=foo,${SHA256.serverFirst}`), "SASL_MALFORMED");
  });

  it.each([
    ["missing salt", "r=rOprNGfwEbeRWgbNEkqOxx,i=4096"],
    ["wrong order", "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxx,i=4096"],
    ["empty salt", "r=rOprNGfwEbeRWgbNEkqOxx,s=,i=4096"],
    ["bad extension", "r=rOprNGfwEbeRWgbNEkqOxx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,garbage"],
    ["empty", ""],
  ])("malformed server-first (%s)", (_name, msg) => {
    const c = started();
    expectSasl(() => c.clientFinal(msg), "SASL_MALFORMED");
  });

  it("salt that is not base64", () => {
    const c = started();
    expectSasl(() => c.clientFinal("r=rOprNGfwEbeRWgbNEkqOxx,s=%%%,i=4096"), "SASL_INCORRECT_ENCODING");
  });

  it("extensions after i= are accepted", () => {
    const c = started();
    expect(c.clientFinal(`${SHA256.serverFirst},x=1`)).toMatch(/^c=biws,r=.*,p=/);
  });

  it("is unusable after a failure", () => {
    const c = started();
    expect(() => c.clientFinal("garbage")).toThrow(SaslError);
    expectSasl(() => c.clientFinal(SHA256.serverFirst), "SASL_STATE");
  });

  it("enforces call order", () => {
    const c = new ScramClient("SHA-256", "user", { password: "pencil" }, SHA256.nonce);
    expectSasl(() => c.clientFinal(SHA256.serverFirst), "SASL_STATE");
    expectSasl(() => c.verifyServerFinal(SHA256.serverFinal), "SASL_STATE");
    c.clientFirst();
    expectSasl(() => c.clientFirst(), "SASL_STATE");
    c.clientFinal(SHA256.serverFirst);
    c.verifyServerFinal(SHA256.serverFinal);
    expectSasl(() => c.verifyServerFinal(SHA256.serverFinal), "SASL_STATE");
  });
});

describe("ScramClient input preparation", () => {
  it("escapes = and , in the username (RFC 5802 §5.1)", () => {
    const c = new ScramClient("SHA-1", "a=b,c", { password: "p" }, "nonce");
    expect(c.clientFirst()).toBe("n,,n=a=3Db=2Cc,r=nonce");
  });

  it("SASLprep maps non-ASCII spaces and soft hyphens, NFKC-normalises", () => {
    const c = new ScramClient("SHA-1", "us\u00ADer\u00A0x\u2168", { password: "p" }, "n");
    expect(c.clientFirst()).toBe("n,,n=user xIX,r=n");
  });

  it("SASLprep'd password gives the same proof as its prepared form", () => {
    const a = new ScramClient("SHA-256", "user", { password: "pen\u00ADcil" }, SHA256.nonce);
    a.clientFirst();
    expect(a.clientFinal(SHA256.serverFirst)).toBe(SHA256.clientFinal);
  });

  it("rejects prohibited characters without echoing them", () => {
    const e = expectSasl(() => new ScramClient("SHA-1", "user", { password: "secret\u0007pw" }), "SASL_MALFORMED");
    expect(e.message).not.toContain("secret");
    expectSasl(() => new ScramClient("SHA-1", "us\u0000er", { password: "p" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "\uE000", { password: "p" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "a\uD800", { password: "p" }), "SASL_MALFORMED");
  });

  it("rejects empty username/password and bad fixed nonces", () => {
    expectSasl(() => new ScramClient("SHA-1", "", { password: "p" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "\u00AD", { password: "p" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "p" }, "a,b"), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "p" }, ""), "SASL_MALFORMED");
  });

  it("random nonces differ", () => {
    const a = new ScramClient("SHA-1", "u", { password: "p" }).clientFirst();
    const b = new ScramClient("SHA-1", "u", { password: "p" }).clientFirst();
    expect(a).not.toBe(b);
  });

  it("does not expose the password via inspection or JSON", async () => {
    const { inspect } = await import("node:util");
    const c = new ScramClient("SHA-1", "u", { password: "hunter2" });
    expect(inspect(c, { showHidden: true, depth: 5 })).not.toContain("hunter2");
    expect(JSON.stringify(c)).not.toContain("hunter2");
  });
});

describe("pickMechanism", () => {
  it("prefers SHA-256 > SHA-1 > PLAIN", () => {
    expect(pickMechanism(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"])).toBe("SCRAM-SHA-256");
    expect(pickMechanism(["PLAIN", "SCRAM-SHA-1"])).toBe("SCRAM-SHA-1");
    expect(pickMechanism(["PLAIN", "X-OAUTH2"])).toBe("PLAIN");
  });
  it("never picks -PLUS", () => {
    expect(pickMechanism(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])).toBeNull();
    expect(pickMechanism(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"])).toBe("SCRAM-SHA-1");
  });
  it("tolerates whitespace and case; null for nothing usable", () => {
    expect(pickMechanism([" scram-sha-256\n"])).toBe("SCRAM-SHA-256");
    expect(pickMechanism([])).toBeNull();
    expect(pickMechanism(["DIGEST-MD5", "ANONYMOUS", "EXTERNAL"])).toBeNull();
  });
  it("scramHashOf", () => {
    expect(scramHashOf("SCRAM-SHA-256")).toBe("SHA-256");
    expect(scramHashOf("SCRAM-SHA-1")).toBe("SHA-1");
  });
});

describe("ScramClient options and ClientKey secrets", () => {
  it("mechanism names follow the hash and channel binding", () => {
    expect(new ScramClient("SHA-512", "u", { password: "p" }).mechanism).toBe("SCRAM-SHA-512");
    expect(new ScramClient("SHA-1", "u", { password: "p" }, { gs2: { type: "tls-exporter", data: Buffer.alloc(32) } }).mechanism).toBe("SCRAM-SHA-1-PLUS");
    expect(new ScramClient("SHA-256", "u", { password: "p" }, { gs2: "y" }).mechanism).toBe("SCRAM-SHA-256");
  });

  it("writes the GS2 header: y, p=type, a=authzid escaped", () => {
    expect(new ScramClient("SHA-1", "u", { password: "p" }, { nonce: "n", gs2: "y" }).clientFirst()).toBe("y,,n=u,r=n");
    expect(new ScramClient("SHA-1", "u", { password: "p" }, { nonce: "n", authzid: "a,b=c@x" }).clientFirst()).toBe("n,a=a=2Cb=3Dc@x,n=u,r=n");
  });

  it("refuses a channel-binding type that is not a cb-name, and an unusable authzid", () => {
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "p" }, { gs2: { type: "tls unique", data: Buffer.alloc(1) } }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "p" }, { authzid: "" }), "SASL_MALFORMED");
    expectSasl(() => new ScramClient("SHA-1", "u", { password: "p" }, { authzid: "a\u0007" }), "SASL_MALFORMED");
  });

  it("refuses ClientKey/ServerKey of the wrong length and refuses them for another salt", () => {
    expectSasl(() => new ScramClient("SHA-256", "u", { clientKey: Buffer.alloc(20), serverKey: Buffer.alloc(32), salt: Buffer.from("s"), iterations: 4096 }), "SASL_MALFORMED");
    const c = new ScramClient("SHA-1", "user", { clientKey: Buffer.alloc(20), serverKey: Buffer.alloc(20), salt: Buffer.from("other"), iterations: 4096 }, SHA1.nonce);
    c.clientFirst();
    expectSasl(() => c.clientFinal(SHA1.serverFirst), "SASL_NEEDS_PASSWORD");
  });

  it("ClientKey/ServerKey from a password exchange reproduce the RFC 5802 proof", () => {
    const a = new ScramClient("SHA-1", "user", { password: "pencil" }, SHA1.nonce);
    a.clientFirst();
    a.clientFinal(SHA1.serverFirst);
    const b = new ScramClient("SHA-1", "user", a.clientKeys, SHA1.nonce);
    b.clientFirst();
    expect(b.clientFinal(SHA1.serverFirst)).toBe(SHA1.clientFinal);
    b.verifyServerFinal(SHA1.serverFinal);
  });
});
