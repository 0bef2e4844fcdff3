import { describe, expect, it } from "vitest";
import { SaslError } from "./errors.js";
import {
  CLIENT_SASL_MECHANISMS,
  isPlusMechanism,
  mechanismStrength,
  mirrorServerMechanisms,
  offeredMechanisms,
  parseClientSaslMechanism,
  scramHashesOf,
  selectMechanism,
} from "./mechanisms.js";

function condition(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SaslError);
    return (e as SaslError).condition;
  }
  throw new Error("expected a SaslError");
}

describe("client-leg mechanisms", () => {
  it("ranks every -PLUS above every plain SCRAM, by hash, PLAIN last (Conversations' priorities)", () => {
    const priority = { PLAIN: 10, "SCRAM-SHA-1": 20, "SCRAM-SHA-256": 25, "SCRAM-SHA-512": 30, "SCRAM-SHA-1-PLUS": 35, "SCRAM-SHA-256-PLUS": 40, "SCRAM-SHA-512-PLUS": 45 };
    const byConversations = [...CLIENT_SASL_MECHANISMS].sort((a, b) => priority[b] - priority[a]);
    expect(CLIENT_SASL_MECHANISMS).toEqual(byConversations);
    expect(mechanismStrength("SCRAM-SHA-1-PLUS")).toBeGreaterThan(mechanismStrength("SCRAM-SHA-512"));
    expect(isPlusMechanism("SCRAM-SHA-1-PLUS")).toBe(true);
    expect(isPlusMechanism("SCRAM-SHA-1")).toBe(false);
    expect(isPlusMechanism("PLAIN")).toBe(false);
  });

  it("parses exact names only", () => {
    expect(parseClientSaslMechanism("SCRAM-SHA-256-PLUS")).toBe("SCRAM-SHA-256-PLUS");
    expect(parseClientSaslMechanism("scram-sha-256")).toBeNull();
    expect(parseClientSaslMechanism(" PLAIN")).toBeNull();
    expect(parseClientSaslMechanism("DIGEST-MD5")).toBeNull();
  });

  it("offers -PLUS only where the connection has a channel-binding type, strongest first", () => {
    expect(offeredMechanisms(CLIENT_SASL_MECHANISMS, ["tls-exporter"])).toEqual(CLIENT_SASL_MECHANISMS);
    expect(offeredMechanisms(CLIENT_SASL_MECHANISMS, [])).toEqual(["SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    expect(offeredMechanisms(["PLAIN", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], ["tls-server-end-point"])).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"]);
    expect(offeredMechanisms(["SCRAM-SHA-1-PLUS"], [])).toEqual([]);
  });

  it("selects an offered mechanism", () => {
    const offered = offeredMechanisms(CLIENT_SASL_MECHANISMS, ["tls-exporter"]);
    for (const m of offered) expect(selectMechanism(m, offered)).toBe(m);
  });

  it("invalid-mechanism for unknown names, wrong case, and -PLUS without channel binding (RFC 6120 §6.5.5)", () => {
    const noCb = offeredMechanisms(CLIENT_SASL_MECHANISMS, []);
    expect(condition(() => selectMechanism("DIGEST-MD5", noCb))).toBe("invalid-mechanism");
    expect(condition(() => selectMechanism("scram-sha-1", noCb))).toBe("invalid-mechanism");
    expect(condition(() => selectMechanism("SCRAM-SHA-1-PLUS", noCb))).toBe("invalid-mechanism");
    expect(condition(() => selectMechanism("PLAIN", []))).toBe("invalid-mechanism");
  });

  it("mechanism-too-weak for a known mechanism left out for being weaker than all offered (RFC 6120 §6.5.9)", () => {
    const strong = offeredMechanisms(["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"], ["tls-exporter"]);
    expect(condition(() => selectMechanism("PLAIN", strong))).toBe("mechanism-too-weak");
    expect(condition(() => selectMechanism("SCRAM-SHA-1", strong))).toBe("mechanism-too-weak");
    // stronger than something offered, but not offered: not "too weak"
    expect(condition(() => selectMechanism("SCRAM-SHA-512", strong))).toBe("invalid-mechanism");
    expect(condition(() => selectMechanism("SCRAM-SHA-1", ["SCRAM-SHA-256", "PLAIN"]))).toBe("invalid-mechanism");
  });
});

describe("--client-sasl auto", () => {
  it("mirrors the server's SCRAM hashes, each with and without -PLUS, and keeps PLAIN", () => {
    expect(mirrorServerMechanisms(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"])).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"]);
    // a server offering only the -PLUS form of a hash, or SHA-256 beside SHA-1, in any order
    expect(mirrorServerMechanisms(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"])).toEqual(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]);
    // unknown names and a server with no SCRAM: PLAIN only
    expect(mirrorServerMechanisms(["X-OAUTH2", "PLAIN", "scram-sha-1"])).toEqual(["PLAIN"]);
    expect(mirrorServerMechanisms([])).toEqual(["PLAIN"]);
  });

  it("offers everything while the server's mechanisms are not known", () => {
    expect(mirrorServerMechanisms(undefined)).toEqual([...CLIENT_SASL_MECHANISMS]);
  });

  it("scramHashesOf: the hashes of a mechanism list, strongest first, once each", () => {
    expect(scramHashesOf(CLIENT_SASL_MECHANISMS)).toEqual(["SHA-512", "SHA-256", "SHA-1"]);
    expect(scramHashesOf(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"])).toEqual(["SHA-1"]);
    expect(scramHashesOf(["PLAIN"])).toEqual([]);
  });
});
