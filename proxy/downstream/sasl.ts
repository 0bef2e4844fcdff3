import type { Element } from "ltx";
import type { FramingError, StreamErrorCondition } from "../../core/xml/errors.js";
import { escapeXML, parseStanza } from "../../core/xml/element.js";
import { NS_SASL } from "../../core/xml/ns.js";
import { parsePlainResponse } from "../../core/sasl/plain.js";
import { SaslError } from "../../core/sasl/errors.js";
import type { Logger } from "../log.js";
import type { ProxyContext } from "../context.js";
import { openUpstream, type AuthenticatedUpstream, type UpstreamSecret } from "../upstream/connect.js";
import { UpstreamError } from "../upstream/errors.js";
import { metrics } from "../metrics.js";

/** RFC 6120 §6.5 SASL conditions; anything else from upstream becomes not-authorized. */
const SASL_CONDITIONS = new Set([
  "aborted", "account-disabled", "credentials-expired", "encryption-required", "incorrect-encoding",
  "invalid-authzid", "invalid-mechanism", "malformed-request", "mechanism-too-weak", "not-authorized",
  "temporary-auth-failure",
]);
const MAX_AUTH_ATTEMPTS = 3;

/** What a SASL exchange needs from the client stream it runs on. */
export interface SaslHost {
  readonly ctx: ProxyContext;
  readonly log: Logger;
  /** The domain the client's stream header named. */
  readonly domain: string;
  write(xml: string): void;
  fail(condition: StreamErrorCondition, text?: string): void;
  onFramingError(err: FramingError): void;
  /** Credentials parsed: the stream waits for the upstream's verdict. */
  authenticating(username: string): void;
  /** Whether the stream still waits for that verdict (it may have closed meanwhile). */
  readonly waiting: boolean;
  /** The upstream refused the credentials: the client may try again. */
  refused(): void;
  /** The upstream accepted them: `up` is logged in as the user, `secret` is what may be kept (§3.3). */
  authenticated(up: AuthenticatedUpstream, secret: UpstreamSecret): void;
}

/**
 * The server side of SASL PLAIN (docs/architecture.md §3.1): the proxy checks the credentials by
 * logging in upstream with them, and answers <success/> only after the upstream did.
 */
export class PlainSaslServer {
  private attempts = 0;
  private awaitingResponse = false;

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
      this.awaitingResponse = false;
      return this.failure("aborted");
    }
    if (name === "response" && this.awaitingResponse) {
      this.awaitingResponse = false;
      return this.authenticate(el.getText());
    }
    if (name !== "auth") return this.failure("malformed-request");
    if (el.attrs.mechanism !== "PLAIN") return this.failure("invalid-mechanism");
    const initial = el.getText().trim();
    if (initial === "") {
      // RFC 6120 §6.4.2 / RFC 4616: no initial response, so ask for it with an empty challenge
      this.awaitingResponse = true;
      this.host.write(`<challenge xmlns='${NS_SASL}'/>`);
      return;
    }
    this.authenticate(initial);
  }

  private authenticate(b64: string): void {
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
    host.authenticating(authcid);
    const log = host.log.child({ user: `${authcid}@${domain}` });
    openUpstream(host.ctx.upstreamTarget(domain), authcid, { password: creds.password }).then(
      (up) => {
        if (!host.waiting) {
          up.conn.end();
          return;
        }
        // keep SCRAM's SaltedPassword, not the password (unless upstream only offered PLAIN): docs/architecture.md §3.3
        host.authenticated(up, up.scram ?? { password: creds.password });
        log.info({ mechanism: up.mechanism, upstreamMs: up.connectMs }, "authenticated");
        metrics.authSucceeded(up.connectMs);
      },
      (err: unknown) => {
        if (!host.waiting) return;
        if (err instanceof UpstreamError && err.code === "UPSTREAM_AUTH") {
          host.refused();
          log.info({ condition: err.condition }, "authentication failed upstream");
          return this.failure(SASL_CONDITIONS.has(err.condition) ? err.condition : "not-authorized", err.text);
        }
        const ue = err instanceof UpstreamError ? err : undefined;
        log.warn({ code: ue?.code ?? "INTERNAL", reason: (err as Error).message }, "upstream unavailable");
        metrics.upstreamFailed("session", ue?.code);
        host.fail(ue?.streamCondition ?? "remote-connection-failed",
          ue?.condition === "host-unknown" ? "the server does not serve this domain" : "the proxy could not reach the server");
      },
    );
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
