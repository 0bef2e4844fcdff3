/**
 * SCRAM verifier (the server side of RFC 5802, with RFC 7677 SHA-256 and SHA-512) for the client leg:
 * SCRAM-SHA-1, -SHA-256, -SHA-512 and their -PLUS variants (RFC 5802 §6 channel binding; the data
 * comes from the proxy's own TLS, see channel-binding.ts). It needs the verifier record, not the
 * password, and gives back the ClientKey a successful proof reveals (docs/architecture.md §3).
 *
 *   const s = new ScramServer({ mechanism, channelBindings, plusAdvertised });
 *   const { username } = s.clientFirst(clientFirstMessage);   // then look the account up (async)
 *   send(s.serverFirst(record));                              // r=<cnonce+snonce>,s=<salt>,i=<n>
 *   const ok = s.clientFinal(clientFinalMessage);             // throws SaslError unless the proof verifies
 *   send(ok.serverFinal);                                     // v=<ServerSignature>, in <success/>
 *
 * Messages are the decoded SCRAM strings (decodeScramMessage turns an XMPP payload into one). Every
 * failure is a SaslError whose `condition` goes into the XMPP <failure/> (RFC 6120 §6.5) and whose
 * `serverError` is the RFC 5802 §7 server-error-value a server-final "e=" would carry
 * (scramServerError). Like Prosody's verifier, protocol violations are malformed-request and a wrong
 * proof is not-authorized. Nothing from a message ever goes into an error message.
 */
import { parseJid } from "../jid.js";
import { decodeSaslBase64, decodeUtf8Strict } from "./base64.js";
import { SaslError, type SaslCondition, type SaslErrorCode } from "./errors.js";
import { saslprep } from "./saslprep.js";
import {
  PRINTABLE_NONCE,
  decodeSaslName,
  equalBytes,
  hashLength,
  parseScramMechanism,
  randomNonce,
  scramH,
  scramHmac,
  splitAttributes,
  xorBytes,
  type ScramHash,
  type ScramMechanism,
} from "./scram-primitives.js";

/** What a SCRAM server stores per account and hash (RFC 5802 §3): enough to verify, not to log in. */
export interface ScramVerifierRecord {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface ScramServerOptions {
  /** The mechanism the client chose (already checked against this stream's offer, mechanisms.ts). */
  mechanism: ScramMechanism;
  /**
   * Channel-binding data of this connection by type name ("tls-exporter", "tls-server-end-point",
   * "tls-unique"): what a -PLUS client may bind to. Not consulted for the non-PLUS mechanisms.
   */
  channelBindings?: ReadonlyMap<string, Buffer>;
  /**
   * Whether this stream advertised any -PLUS mechanism. A client that sends "y" (it could bind but
   * believes we cannot) is then the victim of a stripped mechanism list and fails (RFC 5802 §6).
   */
  plusAdvertised: boolean;
  /** Fixed server nonce part, for tests only; by default 18 random octets in base64. */
  nonce?: string;
}

export interface ScramClientFirst {
  /** The authentication identity: the saslname decoded and SASLprep'd (RFC 5802 §5.1 "n"). */
  username: string;
  /** The authorization identity ("a=", a JID in XMPP), decoded; "" when the client sent none. */
  authzid: string;
  /** The channel-binding type the client binds to; null for "n" and "y". */
  channelBinding: string | null;
}

export interface ScramServerSuccess {
  /** server-final-message "v=<ServerSignature>" (RFC 5802 §7), for the additional data of <success/>. */
  serverFinal: string;
  /** ClientProof XOR HMAC(StoredKey, AuthMessage), checked against StoredKey (RFC 5802 §3). A copy. */
  clientKey: Buffer;
  mechanism: ScramMechanism;
  username: string;
  authzid: string;
  channelBinding: string | null;
}

/**
 * Bound on a client message, checked before parsing: an authzid (a bare JID, up to 3071 octets) and
 * a username (up to 1023) escaped 3× at worst, plus the rest, stay well under it.
 */
export const MAX_SCRAM_CLIENT_MESSAGE = 16_384;
/** RFC 5802 §7 cb-name. */
const CB_NAME = /^[A-Za-z0-9.-]+$/;
/** A client nonce longer than this is not a nonce but a payload. */
const MAX_CLIENT_NONCE = 1024;

type State = "initial" | "first-received" | "first-sent" | "done" | "failed";

function fail(condition: SaslCondition, detail: string, code: SaslErrorCode, serverError: string): SaslError {
  return new SaslError(condition, detail, code, serverError);
}
const malformed = (detail: string, serverError = "other-error"): SaslError => fail("malformed-request", detail, "SASL_MALFORMED", serverError);

/**
 * An XMPP SASL payload (the base64 text of <auth/> or <response/>, RFC 6120 §6.4.2) as a SCRAM
 * message: strict base64, bounded, strict UTF-8. Throws SaslError (incorrect-encoding, malformed-request).
 */
export function decodeScramMessage(base64: string): string {
  const bytes = decodeSaslBase64(base64, Math.ceil(MAX_SCRAM_CLIENT_MESSAGE / 3) * 4);
  if (bytes.length === 0) throw malformed("empty SCRAM message");
  return decodeUtf8Strict(bytes);
}

/** The server-final-message for a failure: "e=<server-error-value>" (RFC 5802 §7); "e=other-error" when there is none. */
export function scramServerError(err: SaslError): string {
  return `e=${err.serverError ?? "other-error"}`;
}

export class ScramServer {
  readonly mechanism: ScramMechanism;
  readonly hash: ScramHash;
  readonly #plus: boolean;
  readonly #channelBindings: ReadonlyMap<string, Buffer>;
  readonly #plusAdvertised: boolean;
  readonly #serverNonce: string;
  #state: State = "initial";
  // from client-first; private fields: inspecting or logging the object shows none of them
  #first: ScramClientFirst | undefined;
  #clientFirstBare = "";
  #clientNonce = "";
  /** The "c=" a correct client-final carries, decoded: gs2-header [+ cbind-data]. */
  #expectedCbind: Buffer = Buffer.alloc(0);
  #gs2Header = "";
  // from serverFirst
  #serverFirst = "";
  #record: ScramVerifierRecord | undefined;

  /** Throws SaslError(invalid-mechanism) for a name that is not SCRAM-SHA-{1,256,512}[-PLUS]. */
  constructor(options: ScramServerOptions) {
    const m = parseScramMechanism(options.mechanism);
    if (m === null) throw new SaslError("invalid-mechanism", "not a SCRAM mechanism");
    this.mechanism = options.mechanism;
    this.hash = m.hash;
    this.#plus = m.plus;
    this.#channelBindings = options.channelBindings ?? new Map();
    this.#plusAdvertised = options.plusAdvertised;
    const nonce = options.nonce ?? randomNonce();
    if (!PRINTABLE_NONCE.test(nonce)) throw malformed("server nonce must be printable ASCII without ','");
    this.#serverNonce = nonce;
  }

  /**
   * Parses client-first-message (RFC 5802 §7):
   *   gs2-header = gs2-cbind-flag "," [ authzid ] ","   with gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
   *   client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
   * and checks the channel-binding flag against the mechanism (RFC 5802 §6). Whether the username and
   * authzid may log in is the caller's decision, before serverFirst.
   */
  clientFirst(message: string): ScramClientFirst {
    this.#expect("initial");
    this.#state = "failed"; // until parsed; any throw below leaves it failed
    if (message.length > MAX_SCRAM_CLIENT_MESSAGE) throw malformed("client-first-message too long");

    // gs2-cbind-flag
    const c1 = message.indexOf(",");
    if (c1 < 0) throw malformed("client-first-message lacks a GS2 header");
    const flag = message.slice(0, c1);
    let cbName: string | null = null;
    if (flag.startsWith("p=")) {
      cbName = flag.slice(2);
      if (!CB_NAME.test(cbName)) throw malformed("channel-binding name is not a cb-name");
    } else if (flag !== "n" && flag !== "y") {
      throw malformed("GS2 channel-binding flag must be n, y or p=");
    }
    // [ authzid ] ","
    const c2 = message.indexOf(",", c1 + 1);
    if (c2 < 0) throw malformed("client-first-message lacks a GS2 header");
    const authzidAttr = message.slice(c1 + 1, c2);
    let authzid = "";
    if (authzidAttr !== "") {
      if (!authzidAttr.startsWith("a=")) throw malformed("GS2 authzid must be a=");
      const decoded = decodeSaslName(authzidAttr.slice(2));
      const prepped = decoded === null ? null : saslprep(decoded);
      // In XMPP the authzid is a bare JID (RFC 6120 §6.3.8); whether it may be used is the caller's policy.
      if (prepped === null || prepped === "" || parseJid(prepped) === null) {
        throw fail("invalid-authzid", "authzid is not a valid JID", "SASL_INVALID_AUTHZID", "other-error");
      }
      authzid = prepped;
    }
    const gs2Header = message.slice(0, c2 + 1);
    const bare = message.slice(c2 + 1);

    const attrs = splitAttributes(bare);
    if (attrs === null) throw malformed("client-first-message-bare is not a list of attributes");
    // RFC 5802 §5.1 "m": reserved for mandatory extensions; the receiver MUST fail the exchange.
    if (attrs.some((a) => a.name === "m")) {
      throw fail("malformed-request", "mandatory extension not supported", "SASL_SCRAM_EXTENSION", "extensions-not-supported");
    }
    const [n, r] = attrs;
    if (n?.name !== "n" || r?.name !== "r") throw malformed("client-first-message-bare must start n=...,r=...");
    const decodedName = decodeSaslName(n.value);
    const username = decodedName === null ? null : saslprep(decodedName);
    if (username === null || username === "") {
      throw fail("malformed-request", "username is not a valid saslname", "SASL_USERNAME_ENCODING", "invalid-username-encoding");
    }
    if (!PRINTABLE_NONCE.test(r.value) || r.value.length > MAX_CLIENT_NONCE) throw malformed("client nonce is not printable");

    // RFC 5802 §6: the flag must fit the mechanism and what this connection can bind to.
    let cbData: Buffer = Buffer.alloc(0);
    if (this.#plus) {
      if (cbName === null) throw malformed("a -PLUS mechanism needs channel binding (p=)");
      const data = this.#channelBindings.get(cbName);
      if (data === undefined) {
        throw fail("malformed-request", "channel-binding type not available", "SASL_CB_UNSUPPORTED", "unsupported-channel-binding-type");
      }
      cbData = data;
    } else if (cbName !== null) {
      throw fail("malformed-request", "channel binding requested with a non-PLUS mechanism", "SASL_CB_UNSUPPORTED", "channel-binding-not-supported");
    } else if (flag === "y" && this.#plusAdvertised) {
      // The client supports channel binding and thinks we do not, yet we advertised -PLUS: someone
      // removed it from the list on the way (RFC 5802 §6, XEP-0440 §3).
      throw fail("malformed-request", "client believes the server cannot bind the channel, but it advertised -PLUS", "SASL_CB_DOWNGRADE", "server-does-support-channel-binding");
    }

    this.#gs2Header = gs2Header;
    this.#expectedCbind = Buffer.concat([Buffer.from(gs2Header, "utf8"), cbData]);
    this.#clientFirstBare = bare;
    this.#clientNonce = r.value;
    this.#first = { username, authzid, channelBinding: cbName };
    this.#state = "first-received";
    return { ...this.#first };
  }

  /**
   * server-first-message (RFC 5802 §7): r=<client nonce + server nonce>,s=<base64 salt>,i=<count>, from
   * the account's verifier record for this mechanism's hash. Throws SaslError(temporary-auth-failure)
   * for a record that does not fit the hash (a store problem, not the client's).
   */
  serverFirst(record: ScramVerifierRecord): string {
    this.#expect("first-received");
    const len = hashLength(this.hash);
    if (record.storedKey.length !== len || record.serverKey.length !== len || record.salt.length === 0 ||
      !Number.isSafeInteger(record.iterations) || record.iterations < 1) {
      this.#state = "failed";
      throw fail("temporary-auth-failure", `verifier record does not fit SCRAM-${this.hash}`, "SASL_TEMPORARY", "other-error");
    }
    this.#record = {
      salt: Buffer.from(record.salt),
      iterations: record.iterations,
      storedKey: Buffer.from(record.storedKey),
      serverKey: Buffer.from(record.serverKey),
    };
    this.#serverFirst = `r=${this.#clientNonce}${this.#serverNonce},s=${record.salt.toString("base64")},i=${record.iterations}`;
    this.#state = "first-sent";
    return this.#serverFirst;
  }

  /**
   * Verifies client-final-message (RFC 5802 §7):
   *   client-final-message-without-proof = channel-binding "," nonce ["," extensions]
   *   client-final-message = client-final-message-without-proof "," proof
   * "c=" must be base64(gs2-header + cbind-data) of this exchange, "r=" our combined nonce, and the
   * proof must turn into a ClientKey whose hash is StoredKey (RFC 5802 §3; constant-time compares).
   */
  clientFinal(message: string): ScramServerSuccess {
    this.#expect("first-sent");
    this.#state = "failed";
    const record = this.#record;
    const first = this.#first;
    if (record === undefined || first === undefined) throw new SaslError("temporary-auth-failure", "no exchange in progress", "SASL_STATE");
    if (message.length > MAX_SCRAM_CLIENT_MESSAGE) throw malformed("client-final-message too long");

    const attrs = splitAttributes(message);
    if (attrs === null) throw malformed("client-final-message is not a list of attributes");
    if (attrs.some((a) => a.name === "m")) {
      throw fail("malformed-request", "mandatory extension not supported", "SASL_SCRAM_EXTENSION", "extensions-not-supported");
    }
    const c = attrs[0];
    const r = attrs[1];
    const p = attrs[attrs.length - 1];
    if (attrs.length < 3 || c?.name !== "c" || r?.name !== "r" || p?.name !== "p" || attrs.filter((a) => a.name === "p").length !== 1) {
      throw malformed("client-final-message must be c=...,r=...[,ext],p=...");
    }
    const withoutProof = message.slice(0, message.lastIndexOf(",p="));

    const cbind = decodeAttr(c.value, "channel-binding attribute");
    // The header part tells a confused client from a channel that is not ours.
    const header = Buffer.from(this.#gs2Header, "utf8");
    if (cbind.length < header.length || !cbind.subarray(0, header.length).equals(header)) {
      throw fail("malformed-request", "channel-binding attribute does not repeat the GS2 header", "SASL_CB_MISMATCH", "channel-bindings-dont-match");
    }
    if (!equalBytes(cbind, this.#expectedCbind)) {
      throw fail("not-authorized", "channel-binding data does not match this connection", "SASL_CB_MISMATCH", "channel-bindings-dont-match");
    }
    if (!equalBytes(Buffer.from(r.value, "utf8"), Buffer.from(this.#clientNonce + this.#serverNonce, "utf8"))) {
      throw fail("malformed-request", "nonce does not match this exchange", "SASL_NONCE_MISMATCH", "other-error");
    }
    const proof = decodeAttr(p.value, "proof");
    if (proof.length !== hashLength(this.hash)) throw malformed("proof has the wrong length");

    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xorBytes(proof, scramHmac(this.hash, record.storedKey, authMessage));
    if (!equalBytes(scramH(this.hash, clientKey), record.storedKey)) {
      throw fail("not-authorized", "client proof does not verify", "SASL_INVALID_PROOF", "invalid-proof");
    }
    const serverSignature = scramHmac(this.hash, record.serverKey, authMessage);
    this.#state = "done";
    return {
      serverFinal: `v=${serverSignature.toString("base64")}`,
      clientKey,
      mechanism: this.mechanism,
      username: first.username,
      authzid: first.authzid,
      channelBinding: first.channelBinding,
    };
  }

  #expect(want: State): void {
    if (this.#state !== want) {
      throw new SaslError("temporary-auth-failure", `SCRAM verifier called in state ${this.#state}, expected ${want}`, "SASL_STATE");
    }
  }
}

/** A base64 attribute value inside a SCRAM message; bad base64 keeps RFC 6120's incorrect-encoding, with e=invalid-encoding. */
function decodeAttr(value: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/=]*$/.test(value)) {
    throw new SaslError("incorrect-encoding", `${what} is not valid base64`, "SASL_INCORRECT_ENCODING", "invalid-encoding");
  }
  try {
    const b = decodeSaslBase64(value);
    if (b.length === 0) throw malformed(`empty ${what}`);
    return b;
  } catch (err) {
    if (err instanceof SaslError && err.code === "SASL_INCORRECT_ENCODING") {
      throw new SaslError("incorrect-encoding", `${what} is not valid base64`, "SASL_INCORRECT_ENCODING", "invalid-encoding");
    }
    throw err;
  }
}
