/**
 * The server's side of a SASL exchange the proxy relays for a client it cannot verify itself
 * (docs/architecture.md §3.5: a non-PLUS SCRAM login of an account without records). The client's
 * messages go to the server as they came, the server's back to the client; the proxy learns nothing
 * that logs in (RFC 5802 §3: neither ClientKey nor ServerKey crosses the wire), so such a session has
 * no kept secret and its MUC traffic passes through unchanged.
 */
import { decodeSaslBase64 } from "../../core/sasl/base64.js";
import { escapeXML } from "../../core/xml/element.js";
import { NS_SASL } from "../../core/xml/ns.js";
import { offeredMechanisms, restartAfterAuth, saslStep, type AuthenticatedUpstream, type PreAuthUpstream, type UpstreamTarget } from "./connect.js";
import { UpstreamError } from "./errors.js";

/** What the server answered: more data for the client (<challenge/>), or <success/> with its additional data. */
export type RelayAnswer = { kind: "challenge" | "success"; data: string };

/** SCRAM needs two round trips; a server asking for more than this is not speaking SCRAM. */
const MAX_ROUNDS = 4;

export class UpstreamSaslRelay {
  #rounds = 0;
  #mechanism = "";
  #closed = false;

  private constructor(private readonly pre: PreAuthUpstream, private readonly t: UpstreamTarget) {}

  /** Relays on `pre` (connected, TLS done, SASL not started), which it then owns. */
  static on(pre: PreAuthUpstream, t: UpstreamTarget): UpstreamSaslRelay {
    return new UpstreamSaslRelay(pre, t);
  }

  /** The mechanisms the server offers on this connection. */
  get mechanisms(): string[] {
    return offeredMechanisms(this.pre.features);
  }

  /** <auth/> with the client's mechanism and initial response (base64, as the client sent it). */
  auth(mechanism: string, initial: string): Promise<RelayAnswer> {
    this.#mechanism = mechanism;
    this.pre.conn.write(`<auth xmlns='${NS_SASL}' mechanism='${escapeXML(mechanism)}'>${escapeXML(initial)}</auth>`);
    return this.#answer();
  }

  /** <response/> with the client's data (base64, as the client sent it). */
  respond(data: string): Promise<RelayAnswer> {
    this.pre.conn.write(`<response xmlns='${NS_SASL}'>${escapeXML(data)}</response>`);
    return this.#answer();
  }

  /** After <success/>: the stream restart and the post-authentication features. */
  finish(): Promise<AuthenticatedUpstream> {
    return restartAfterAuth(this.pre, this.t, this.#mechanism);
  }

  /** The client gave up, failed, or went away: the server's connection is closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pre.conn.end(500);
  }

  async #answer(): Promise<RelayAnswer> {
    if (++this.#rounds > MAX_ROUNDS) throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", "upstream SASL exchange did not end");
    const el = await saslStep(this.pre.queue, this.t);
    if (el.name !== "challenge" && el.name !== "success") {
      throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `unexpected <${el.name}> during SASL`);
    }
    const data = el.getText().trim();
    try {
      // RFC 6120 §6.4.2 base64; checked so nothing but base64 is handed to the client
      if (data !== "" && data !== "=") decodeSaslBase64(data);
    } catch {
      throw new UpstreamError("UPSTREAM_PROTOCOL", "temporary-auth-failure", `upstream <${el.name}> data is not base64`);
    }
    return { kind: el.name, data };
  }
}
