import type { Element } from "ltx";
import type { FramingError, StreamErrorCondition } from "../../core/xml/errors.js";
import { escapeXML, parseStanza } from "../../core/xml/element.js";
import { NS_SASL } from "../../core/xml/ns.js";
import { parsePlainResponse } from "../../core/sasl/plain.js";
import { SaslError } from "../../core/sasl/errors.js";
import { selectMechanism, type ClientSaslMechanism } from "../../core/sasl/mechanisms.js";
import { parseScramMechanism } from "../../core/sasl/scram-primitives.js";
import { normalizeAccount } from "../../core/credentials/record.js";
import type { Logger } from "../log.js";
import type { ProxyContext } from "../context.js";
import { loginOn, type AuthenticatedUpstream, type PreAuthUpstream, type UpstreamSecret } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { metrics } from "../metrics.js";
import { ScramLogin } from "./scram-login.js";

/** RFC 6120 §6.5 SASL conditions; anything else from upstream becomes not-authorized. */
export const SASL_CONDITIONS = new Set([
  "aborted", "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding",
  "invalid-authzid", "invalid-mechanism", "malformed-request", "mechanism-too-weak", "not-authorized",
  "temporary-auth-failure",
]);
const MAX_AUTH_ATTEMPTS = 3;

/** How a login ended well (docs/architecture.md §3.5). */
export interface LoginOutcome {
  mechanism: ClientSaslMechanism;
  /**
   * What logs the account session in; undefined for a relayed login (nothing was learnt): the
   * session's MUC traffic then passes through (BoundSession.mucPassThrough).
   */
  secret: UpstreamSecret | undefined;
  /** RFC 6120 §6.4.6 additional data with success (SCRAM's server-final-message), base64. */
  additionalData?: string;
}

/** What a SASL exchange needs from the client stream it runs on. */
export interface SaslHost {
  readonly ctx: ProxyContext;
  readonly log: Logger;
  /** The domain the client's stream header named. */
  readonly domain: string;
  /** The mechanisms this stream advertised. */
  readonly offered: readonly ClientSaslMechanism[];
  /** Channel-binding data of this connection by type (proxy/channel-binding.ts). */
  channelBindings(): ReadonlyMap<string, Buffer>;
  /** The session's upstream connection, TLS done, before SASL (early-upstream.ts); the caller owns it. */
  upstream(): Promise<PreAuthUpstream>;
  write(xml: string): void;
  fail(condition: StreamErrorCondition, text?: string): void;
  onFramingError(err: FramingError): void;
  /** An asynchronous step runs (store, upstream): nothing may come from the client meanwhile. */
  busy(username: string): void;
  /** Whether the stream still waits for that step (it may have closed meanwhile). */
  readonly waiting: boolean;
  /** The step is over without a login: the client may send its next SASL element. */
  ready(): void;
  /**
   * The login succeeded: <success/> goes out now. `up` is logged in as the user, or will be (a SCRAM
   * login the proxy verified itself, §3.5): its rejection then ends the stream with a stream error.
   */
  authenticated(up: AuthenticatedUpstream | Promise<AuthenticatedUpstream>, outcome: LoginOutcome): void;
}

/** The exchange in progress on this stream. */
export interface SaslExchange {
  /** The client's <response/> data (base64). */
  respond(data: string): void;
  /** <abort/>, a failure, or the stream went away: give back what the exchange holds. */
  close(): void;
}

/**
 * The server side of SASL on the client leg (docs/architecture.md §3.5): picks the client's mechanism
 * from what this stream offered, runs PLAIN here (checked by logging in upstream) and SCRAM in
 * ScramLogin (verified against the account's records, or relayed), answers every failure with the
 * RFC 6120 §6.5 condition and counts them (three end the stream).
 */
export class SaslServer {
  private attempts = 0;
  private exchange: SaslExchange | undefined;
  /** PLAIN without an initial response: its empty challenge was sent. */
  private plainPending = false;

  constructor(private readonly host: SaslHost) {}

  /** A top-level element sent while the stream is encrypted and not authenticated. */
  onElement(name: string, bytes: Buffer): void {
    let el: Element;
    try {
      el = parseStanza(bytes);
    } catch (err) {
      return this.host.onFramingError(err as FramingError);
    }
    if (el.attrs.xmlns !== NS_SASL) return this.host.fail("not-authorized", "authenticate first");
    if (name === "abort") {
      this.close();
      return this.failure("aborted");
    }
    if (name === "response") {
      if (this.plainPending) {
        this.plainPending = false;
        return this.plain(el.getText());
      }
      if (this.exchange) return this.exchange.respond(el.getText().trim());
      return this.failure("malformed-request");
    }
    if (name !== "auth" || this.exchange || this.plainPending) return this.failure("malformed-request");
    let mechanism: ClientSaslMechanism;
    try {
      mechanism = selectMechanism(el.attrs.mechanism ?? "", this.host.offered);
    } catch (err) {
      if (err instanceof SaslError) return this.failure(err.condition);
      throw err;
    }
    const initial = el.getText().trim();
    if (mechanism === "PLAIN") {
      if (initial === "") {
        // RFC 6120 §6.4.2 / RFC 4616: no initial response, so ask for it with an empty challenge
        this.plainPending = true;
        this.host.write(`<challenge xmlns='${NS_SASL}'/>`);
        return;
      }
      return this.plain(initial);
    }
    const scram = parseScramMechanism(mechanism)!;
    const exchange = new ScramLogin(this.host, { mechanism, ...scram }, {
      failure: (condition, text) => {
        this.exchange = undefined;
        this.failure(condition, text);
      },
      upstreamFailed: (err, log) => {
        this.exchange = undefined;
        this.upstreamFailed(err, log);
      },
      done: () => {
        this.exchange = undefined;
      },
    });
    // held before its first step, which may fail at once: the client may then try another mechanism
    this.exchange = exchange;
    exchange.start(initial);
  }

  /** The stream closed: an exchange in progress lets go of its upstream connection. */
  close(): void {
    this.plainPending = false;
    const x = this.exchange;
    this.exchange = undefined;
    x?.close();
  }

  private plain(b64: string): void {
    const host = this.host;
    let creds: { authzid: string; authcid: string; password: string };
    try {
      creds = parsePlainResponse(b64.trim());
    } catch (err) {
      if (err instanceof SaslError) return this.failure(err.condition);
      throw err;
    }
    const domain = host.domain;
    const authcid = creds.authcid;
    if (creds.authzid && creds.authzid.toLowerCase() !== `${authcid}@${domain}`.toLowerCase()) {
      return this.failure("invalid-authzid");
    }
    host.busy(authcid);
    const log = host.log.child({ user: `${authcid}@${domain}` });
    const target = host.ctx.upstreamTarget(domain);
    host.upstream().then((pre) => loginOn(pre, target, authcid, { password: creds.password })).then(
      (up) => {
        host.ctx.saslOffer.learn(domain, up.saslMechanisms);
        if (!host.waiting) {
          up.conn.end();
          return;
        }
        // keep SCRAM's SaltedPassword, not the password (unless upstream only offered PLAIN): docs/architecture.md §3.3
        host.authenticated(up, { mechanism: "PLAIN", secret: up.scram ?? { password: creds.password } });
        log.info({ mechanism: "PLAIN", upstreamMechanism: up.mechanism, upstreamMs: up.connectMs }, "authenticated");
        metrics.authSucceeded(up.connectMs);
        // the records SCRAM logins are verified with (§3.5): made or refreshed after the server said yes
        const account = normalizeAccount(`${authcid}@${domain}`);
        if (account !== null) void host.ctx.credentials.afterPasswordLogin(account, creds.password, up.scram, host.ctx.saslOffer.hashes(domain));
      },
      (err: unknown) => {
        if (!host.waiting) return;
        this.upstreamFailed(err, log);
      },
    );
  }

  /** The upstream login failed: a SASL failure the client may retry after, or the stream ends. */
  private upstreamFailed(err: unknown, log: Logger): void {
    if (err instanceof UpstreamError && err.code === "UPSTREAM_AUTH") {
      this.host.ready();
      log.info({ condition: err.condition }, "authentication failed upstream");
      return this.failure(SASL_CONDITIONS.has(err.condition) ? err.condition : "not-authorized", err.text);
    }
    const ue = err instanceof UpstreamError ? err : undefined;
    log.warn({ code: ue?.code ?? "INTERNAL", reason: (err as Error).message }, "upstream unavailable");
    metrics.upstreamFailed("session", ue?.code);
    this.host.fail(ue?.streamCondition ?? "remote-connection-failed",
      ue?.condition === "host-unknown" ? "the server does not serve this domain" : "the proxy could not reach the server");
  }

  private failure(condition: string, text?: string): void {
    const t = text ? `<text xml:lang='en'>${escapeXML(text)}</text>` : "";
    this.host.write(`<failure xmlns='${NS_SASL}'><${condition}/>${t}</failure>`);
    metrics.authFailed(condition);
    if (condition !== "aborted" && ++this.attempts >= MAX_AUTH_ATTEMPTS) {
      // RFC 6120 §6.4.5: the server may limit retries and then close the stream
      metrics.limitBreach("client", "AUTH_ATTEMPTS");
      this.host.fail("policy-violation", "too many failed authentication attempts");
    }
  }
}
