/**
 * SASL failures, expressed with the XMPP SASL error conditions of RFC 6120 §6.5 so a caller can put
 * `condition` straight into `<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><CONDITION/></failure>`.
 *
 * Security rule for everything in core/sasl: an Error message never contains a password, a salted
 * password, a proof or any (decoded or encoded) SASL payload. Messages name the problem only, because
 * errors end up in logs.
 */

/** RFC 6120 §6.5.1–§6.5.11. */
export type SaslCondition =
  | "aborted"
  | "account-disabled"
  | "credentials-expired"
  | "encryption-required"
  | "incorrect-encoding"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "malformed-request"
  | "mechanism-too-weak"
  | "not-authorized"
  | "temporary-auth-failure";

/** Stable, machine-matchable codes. The generic one per condition, plus SCRAM-client specifics. */
export type SaslErrorCode =
  | "SASL_ABORTED"
  | "SASL_ACCOUNT_DISABLED"
  | "SASL_CREDENTIALS_EXPIRED"
  | "SASL_ENCRYPTION_REQUIRED"
  | "SASL_INCORRECT_ENCODING"
  | "SASL_INVALID_AUTHZID"
  | "SASL_INVALID_MECHANISM"
  | "SASL_MALFORMED"
  | "SASL_TOO_WEAK"
  | "SASL_NOT_AUTHORIZED"
  | "SASL_TEMPORARY"
  /** SCRAM: the server nonce does not start with (or merely repeats) our client nonce (RFC 5802 §5.1 "r"). */
  | "SASL_NONCE_MISMATCH"
  /** SCRAM: iteration count outside [SCRAM_MIN_ITERATIONS, SCRAM_MAX_ITERATIONS]. */
  | "SASL_ITERATIONS"
  /** SCRAM: server-final "v=" did not match the ServerSignature we computed (RFC 5802 §3). */
  | "SASL_SERVER_SIGNATURE"
  /** SCRAM: server-final was "e=..." (RFC 5802 §7 server-error). */
  | "SASL_SERVER_ERROR"
  /** SCRAM: a cached salted password is for another salt/iteration count; the password is needed again. */
  | "SASL_NEEDS_PASSWORD"
  /** Method called out of order (e.g. clientFinal twice). A programming error, not a peer error. */
  | "SASL_STATE"
  // SCRAM verifier (scram-server.ts); `serverError` carries the RFC 5802 §7 server-error-value.
  /** RFC 5802 §5.1 "m": a mandatory extension we do not know (e=extensions-not-supported). */
  | "SASL_SCRAM_EXTENSION"
  /** A username or authzid that is not a valid saslname or fails SASLprep (e=invalid-username-encoding). */
  | "SASL_USERNAME_ENCODING"
  /** RFC 5802 §6: "y" while we advertise -PLUS, i.e. a stripped mechanism list (e=server-does-support-channel-binding). */
  | "SASL_CB_DOWNGRADE"
  /** Channel binding asked for where there is none, or of a type we do not have (e=channel-binding-not-supported / unsupported-channel-binding-type). */
  | "SASL_CB_UNSUPPORTED"
  /** client-final "c=" is not base64(gs2-header + our channel-binding data) (e=channel-bindings-dont-match). */
  | "SASL_CB_MISMATCH"
  /** ClientProof does not verify against StoredKey (e=invalid-proof). */
  | "SASL_INVALID_PROOF";

const DEFAULT_CODES: Record<SaslCondition, SaslErrorCode> = {
  aborted: "SASL_ABORTED",
  "account-disabled": "SASL_ACCOUNT_DISABLED",
  "credentials-expired": "SASL_CREDENTIALS_EXPIRED",
  "encryption-required": "SASL_ENCRYPTION_REQUIRED",
  "incorrect-encoding": "SASL_INCORRECT_ENCODING",
  "invalid-authzid": "SASL_INVALID_AUTHZID",
  "invalid-mechanism": "SASL_INVALID_MECHANISM",
  "malformed-request": "SASL_MALFORMED",
  "mechanism-too-weak": "SASL_TOO_WEAK",
  "not-authorized": "SASL_NOT_AUTHORIZED",
  "temporary-auth-failure": "SASL_TEMPORARY",
};

export class SaslError extends Error {
  override readonly name = "SaslError";
  readonly condition: SaslCondition;
  readonly code: SaslErrorCode;
  /**
   * The RFC 5802 §7 server-error-value token (e.g. "invalid-proof"): for SASL_SERVER_ERROR the one the
   * upstream sent (kept out of `message` on purpose, only set when it is a plain token of letters,
   * digits and '-'); for the verifier's errors the one a server-final "e=" would carry.
   */
  readonly serverError?: string;

  /**
   * @param detail a short description of what was wrong — never data from the payload.
   */
  constructor(condition: SaslCondition, detail: string, code?: SaslErrorCode, serverError?: string) {
    super(`sasl ${condition}: ${detail}`);
    this.condition = condition;
    this.code = code ?? DEFAULT_CODES[condition];
    if (serverError !== undefined) this.serverError = serverError;
  }
}
