/**
 * One SCRAM login on the client leg (docs/architecture.md §3.5, issue 12):
 *
 * - the account has a record for the hash: the proxy is the verifier (core/sasl/scram-server.ts;
 *   -PLUS binds to the proxy's own TLS), and the ClientKey the proof reveals logs the session's
 *   upstream leg in (directly with the server's salt, or through the sealed secret of a record with
 *   the proxy's salt). The upstream login begins while the client computes its proof (TCP, TLS, the
 *   first SCRAM round trip); <success/> with the proxy's server-final message goes out as soon as the
 *   proof verifies, and the upstream leg finishes meanwhile: the client's post-authentication
 *   features wait for it, and a server that refuses it ends the stream with not-authorized.
 * - no record, plain SCRAM: the exchange is relayed to the server on the session's own upstream leg;
 *   the session works, with nothing kept (its MUC traffic passes through, §3.5).
 * - no record, -PLUS: cannot be verified (the server's channel is not the client's) and fails with a
 *   text that says what to do.
 *
 * Failures are SASL failures with RFC 6120 §6.5 conditions; nothing from a SASL message, key or salt
 * is ever logged.
 */
import { decodeScramMessage, ScramServer } from "../../core/sasl/scram-server.js";
import { SaslError } from "../../core/sasl/errors.js";
import { isPlusMechanism } from "../../core/sasl/mechanisms.js";
import type { ScramHash, ScramMechanism } from "../../core/sasl/scram-primitives.js";
import { CredentialError } from "../../core/credentials/errors.js";
import { normalizeAccount, type ScramCredential } from "../../core/credentials/record.js";
import type { Logger } from "../log.js";
import { beginScram, type PendingScram, type ScramSecret } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { UpstreamSaslRelay, type RelayAnswer } from "../upstream/sasl-relay.js";
import { upstreamSecretFor } from "../credentials/keeper.js";
import { NS_SASL } from "../../core/xml/ns.js";
import { metrics } from "../metrics.js";
import type { SaslExchange, SaslHost } from "./sasl.js";

/** The SASL failure text of a -PLUS login the proxy cannot verify (README "Logging in"). */
export const NO_RECORD_PLUS_TEXT =
  "This proxy has no SCRAM record for this account yet, so it cannot check channel binding (-PLUS). " +
  "Log in once with the password over PLAIN or SCRAM without -PLUS, or ask the operator to run minimix-proxy import-credentials.";
/** The failure text when the server refused what a record logs in with (the password was changed there). */
export const STALE_RECORD_TEXT = "The server no longer accepts this account's stored credentials (was the password changed?): log in again with the password.";

export interface ScramLoginEvents {
  /** A SASL failure for the client (the exchange is over). */
  failure(condition: string, text?: string): void;
  /** The server could not be used (the exchange is over): SaslServer.upstreamFailed. */
  upstreamFailed(err: unknown, log: Logger): void;
  /** The login succeeded (the exchange is over). */
  done(): void;
}

type State = "first" | "verify" | "relay" | "busy" | "over";

export class ScramLogin implements SaslExchange {
  readonly #host: SaslHost;
  readonly #mechanism: ScramMechanism;
  readonly #hash: ScramHash;
  readonly #plus: boolean;
  readonly #events: ScramLoginEvents;
  readonly #server: ScramServer;
  #state: State = "first";
  #log: Logger;
  #username = "";
  #account = "";
  #cred: ScramCredential | undefined;
  /** The upstream login begun ahead of the proof (verify path): connected, client-first sent, server-first read. */
  #pending: Promise<PendingScram> | undefined;
  #relay: UpstreamSaslRelay | undefined;

  constructor(host: SaslHost, mech: { mechanism: ScramMechanism; hash: ScramHash; plus: boolean }, events: ScramLoginEvents) {
    this.#host = host;
    this.#mechanism = mech.mechanism;
    this.#hash = mech.hash;
    this.#plus = mech.plus;
    this.#events = events;
    this.#log = host.log;
    this.#server = new ScramServer({
      mechanism: mech.mechanism,
      channelBindings: mech.plus ? host.channelBindings() : undefined,
      plusAdvertised: host.offered.some(isPlusMechanism),
    });
  }

  /**
   * The <auth/> element's initial response. Separate from the constructor: its first step may end the
   * exchange at once (a malformed client-first, a channel binding this connection lacks), and the
   * owner must hold the exchange before its failure event says it is over.
   */
  start(initial: string): void {
    if (initial === "" || initial === "=") {
      // RFC 6120 §6.4.2: no initial response: an empty challenge asks for client-first-message
      this.#host.write(`<challenge xmlns='${NS_SASL}'/>`);
      return;
    }
    void this.#clientFirst(initial);
  }

  respond(data: string): void {
    switch (this.#state) {
      case "first":
        return void this.#clientFirst(data);
      case "verify":
        return void this.#clientFinal(data);
      case "relay":
        return void this.#relayStep(() => this.#relay!.respond(data));
      default:
        return this.#fail("malformed-request");
    }
  }

  close(): void {
    if (this.#over()) return;
    this.#state = "over";
    this.#relay?.close();
    this.#pending?.then((p) => p.abort(), () => undefined);
    this.#pending = undefined;
  }

  // ------------------------------------------------------------------ steps

  async #clientFirst(data: string): Promise<void> {
    const host = this.#host;
    let first;
    try {
      first = this.#server.clientFirst(decodeScramMessage(data));
    } catch (err) {
      if (err instanceof SaslError) return this.#fail(err.condition);
      throw err;
    }
    const account = normalizeAccount(`${first.username}@${host.domain}`);
    if (account === null) return this.#fail("not-authorized");
    // RFC 6120 §6.4.6 authzid: only the account itself (as with PLAIN)
    if (first.authzid !== "" && normalizeAccount(first.authzid) !== account) return this.#fail("invalid-authzid");
    this.#username = first.username;
    this.#account = account;
    this.#log = host.log.child({ user: account });
    this.#state = "busy";
    host.busy(first.username);
    let cred: ScramCredential | undefined;
    try {
      cred = (await host.ctx.credentials.lookup(account))?.scram[this.#hash];
    } catch {
      if (this.#resume()) this.#fail("temporary-auth-failure", "the proxy cannot read its credential store");
      return;
    }
    if (!this.#resume()) return;
    if (cred !== undefined) {
      this.#cred = cred;
      // begun now, finished once the proof is in: TCP, TLS and the first SCRAM round trip upstream
      // overlap the client's computing its proof (the hash is the record's, or its sealed secret's)
      const upstreamHash = cred.origin === "server" ? this.#hash : cred.upstream?.hash;
      if (upstreamHash !== undefined) {
        const t = host.ctx.upstreamTarget(host.domain);
        this.#pending = host.upstream().then((pre) => beginScram(pre, t, first.username, upstreamHash));
        this.#pending.catch(() => undefined);
      }
      this.#state = "verify";
      return this.#challenge(Buffer.from(this.#server.serverFirst(cred), "utf8").toString("base64"));
    }
    if (this.#plus) {
      this.#log.info({ mechanism: this.#mechanism }, "SCRAM -PLUS login refused: no record for the account");
      return this.#fail("not-authorized", NO_RECORD_PLUS_TEXT);
    }
    this.#log.info({ mechanism: this.#mechanism }, "no SCRAM record for the account: relaying the login to the server");
    this.#state = "busy";
    host.busy(first.username);
    await this.#relayStep(async () => {
      const relay = UpstreamSaslRelay.on(await host.upstream(), host.ctx.upstreamTarget(host.domain));
      this.#relay = relay;
      host.ctx.saslOffer.learn(host.domain, relay.mechanisms);
      if (!relay.mechanisms.includes(this.#mechanism)) {
        throw new UpstreamError("UPSTREAM_AUTH", "invalid-mechanism", `the server does not offer ${this.#mechanism}`,
          `The server does not offer ${this.#mechanism} and this proxy has no record to check it itself: use another mechanism, or log in once with the password over PLAIN.`);
      }
      return relay.auth(this.#mechanism, data);
    });
  }

  async #clientFinal(data: string): Promise<void> {
    const host = this.#host;
    this.#state = "busy";
    host.busy(this.#username);
    let ok;
    try {
      ok = this.#server.clientFinal(decodeScramMessage(data));
    } catch (err) {
      if (!(err instanceof SaslError)) throw err;
      this.#log.info({ mechanism: this.#mechanism, condition: err.condition }, "SCRAM proof refused");
      if (this.#resume()) this.#fail(err.condition);
      return;
    }
    let secret: ScramSecret | undefined;
    try {
      secret = upstreamSecretFor(this.#account, this.#hash, this.#cred!, ok.clientKey);
    } catch (err) {
      if (!(err instanceof CredentialError)) throw err;
      this.#log.warn({ code: err.code, reason: err.message }, "the account's record does not open with a verified proof: the record is damaged");
    } finally {
      ok.clientKey.fill(0);
    }
    const pending = this.#pending;
    this.#pending = undefined;
    if (secret === undefined || pending === undefined) {
      pending?.then((p) => p.abort(), () => undefined);
      if (this.#resume()) this.#fail("temporary-auth-failure", "the proxy holds no usable credentials for this account");
      return;
    }
    if (this.#over() || !host.waiting) {
      pending.then((p) => p.abort(), () => undefined);
      return;
    }
    // Verified here: <success/> goes out now, while the upstream leg finishes its login (one round
    // trip and the stream restart); the client's features wait for it, and a refusal by the server
    // ends the stream (ClientStream.upstreamFailedAfterSuccess). A login through the proxy then costs
    // what a direct one does, not the two in a row (bench m8).
    const started = Date.now();
    const account = this.#account;
    const log = this.#log;
    const mechanism = this.#mechanism;
    const up = (async () => {
      try {
        const u = await (await pending).finish(secret);
        host.ctx.saslOffer.learn(host.domain, u.saslMechanisms);
        log.info({ mechanism, upstreamMechanism: u.mechanism, upstreamMs: u.connectMs }, "authenticated");
        metrics.authSucceeded(Date.now() - started);
        return u;
      } catch (err) {
        if (err instanceof UpstreamError && err.code === "UPSTREAM_AUTH" && err.condition !== "temporary-auth-failure") {
          // the server refused a ClientKey the record vouched for: its password changed since (§3.5)
          void host.ctx.credentials.forget(account, err.stale ? "the server's salt changed" : `the server answered ${err.condition}`);
          throw new UpstreamError("UPSTREAM_AUTH", "not-authorized", err.message, STALE_RECORD_TEXT);
        }
        throw err;
      }
    })();
    up.catch(() => undefined);
    this.#state = "over";
    this.#events.done();
    host.authenticated(up, { mechanism, secret, additionalData: Buffer.from(ok.serverFinal, "utf8").toString("base64") });
  }

  /** A relay step: forward the server's challenge, or finish on its success. */
  async #relayStep(step: () => Promise<RelayAnswer>): Promise<void> {
    const host = this.#host;
    this.#state = "busy";
    host.busy(this.#username);
    try {
      const answer = await step();
      if (this.#over() || !host.waiting) return this.close();
      if (answer.kind === "challenge") {
        this.#state = "relay";
        host.ready();
        host.write(answer.data === "" ? `<challenge xmlns='${NS_SASL}'/>` : `<challenge xmlns='${NS_SASL}'>${answer.data}</challenge>`);
        return;
      }
      const up = await this.#relay!.finish();
      if (this.#over() || !host.waiting) return void up.conn.end();
      this.#state = "over";
      this.#events.done();
      host.authenticated(up, { mechanism: this.#mechanism, secret: undefined, additionalData: answer.data });
      this.#log.info({ mechanism: this.#mechanism, upstreamMs: up.connectMs }, "authenticated (relayed to the server: no record, MUC traffic passes through)");
      metrics.authSucceeded(up.connectMs);
    } catch (err) {
      this.#relay?.close();
      if (this.#over() || !host.waiting) return;
      this.#state = "over";
      this.#events.upstreamFailed(err, this.#log);
    }
  }

  /** Whether the exchange ended (a method, so TypeScript does not narrow #state across awaits). */
  #over(): boolean {
    return this.#state === "over";
  }

  #challenge(b64: string): void {
    this.#host.write(`<challenge xmlns='${NS_SASL}'>${b64}</challenge>`);
  }

  /** After an asynchronous step: false when the stream went away meanwhile; otherwise it may take the next SASL element. */
  #resume(): boolean {
    if (this.#over() || !this.#host.waiting) {
      this.close();
      return false;
    }
    this.#host.ready();
    return true;
  }

  #fail(condition: string, text?: string): void {
    this.close();
    this.#events.failure(condition, text);
  }
}
