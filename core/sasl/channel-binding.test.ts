import { X509Certificate, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { acceptedChannelBindingTypesFor, advertisedChannelBindingTypes, channelBindingTypesFor, serverEndPointHash, tlsServerEndPoint, tlsUniqueFinished } from "./channel-binding.js";

/** core/sasl/testdata/end-point-certs.pem: certificates made with OpenSSL, each headed "## name | signature | expected". */
function fixtures(): { name: string; signature: string; expected: string; der: Buffer }[] {
  const text = readFileSync(new URL("./testdata/end-point-certs.pem", import.meta.url), "utf8");
  const out = [];
  for (const block of text.split(/^## /m).slice(1)) {
    const [head, ...rest] = block.split("\n");
    const [name, signature, expected] = (head ?? "").split(" | ").map((s) => s.trim());
    const der = new X509Certificate(rest.join("\n")).raw;
    out.push({ name: name!, signature: signature!, expected: expected!, der });
  }
  return out;
}

describe("tls-server-end-point (RFC 5929 §4.1)", () => {
  const certs = fixtures();

  it("reads all eight fixtures", () => {
    expect(certs).toHaveLength(8);
  });

  it.each(certs.map((c) => [c.name, c.signature, c.expected, c] as const))("%s (%s) → %s", (_n, _s, expected, c) => {
    expect(serverEndPointHash(c.der)).toBe(expected === "none" ? null : expected);
    const data = tlsServerEndPoint(c.der);
    if (expected === "none") expect(data).toBeNull();
    else expect(data?.equals(createHash(expected).update(c.der).digest())).toBe(true);
  });

  it("null for what is not a certificate", () => {
    const der = certs[0]!.der;
    expect(serverEndPointHash(Buffer.alloc(0))).toBeNull();
    expect(serverEndPointHash(Buffer.from("not DER at all"))).toBeNull();
    expect(serverEndPointHash(der.subarray(0, der.length - 10))).toBeNull(); // truncated
    expect(serverEndPointHash(Buffer.concat([der, Buffer.from([0])]))).toBeNull(); // trailing data
    expect(tlsServerEndPoint(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]))).toBeNull();
  });
});

describe("tls-unique: which Finished (RFC 5929 §3.1)", () => {
  it("is the client's in a full handshake and the server's in a resumed one", () => {
    expect(tlsUniqueFinished("server", false)).toBe("peer");
    expect(tlsUniqueFinished("client", false)).toBe("own");
    expect(tlsUniqueFinished("server", true)).toBe("own");
    expect(tlsUniqueFinished("client", true)).toBe("peer");
  });
});

describe("channel-binding types per TLS version", () => {
  it("TLS 1.3: tls-exporter and tls-server-end-point; TLS 1.2: tls-server-end-point and tls-unique; else none", () => {
    expect(channelBindingTypesFor("TLSv1.3", true)).toEqual(["tls-exporter", "tls-server-end-point"]);
    expect(channelBindingTypesFor("TLSv1.3", false)).toEqual(["tls-exporter"]);
    expect(channelBindingTypesFor("TLSv1.2", true)).toEqual(["tls-server-end-point", "tls-unique"]);
    expect(channelBindingTypesFor("TLSv1.1", true)).toEqual([]);
    expect(channelBindingTypesFor(null, true)).toEqual([]);
  });

  it("accepted: also tls-unique on TLS 1.3 (clients that bind with it anyway); advertised: not there", () => {
    expect(acceptedChannelBindingTypesFor("TLSv1.3", true)).toEqual(["tls-exporter", "tls-server-end-point", "tls-unique"]);
    expect(acceptedChannelBindingTypesFor("TLSv1.3", false)).toEqual(["tls-exporter", "tls-unique"]);
    expect(acceptedChannelBindingTypesFor("TLSv1.2", true)).toEqual(["tls-server-end-point", "tls-unique"]);
    expect(acceptedChannelBindingTypesFor("TLSv1.1", true)).toEqual([]);
    expect(acceptedChannelBindingTypesFor(null, false)).toEqual([]);
    for (const [v, ep] of [["TLSv1.3", true], ["TLSv1.3", false], ["TLSv1.2", true], ["TLSv1.2", false]] as const) {
      expect(advertisedChannelBindingTypes(acceptedChannelBindingTypesFor(v, ep))).toEqual(channelBindingTypesFor(v, ep));
    }
  });
});
