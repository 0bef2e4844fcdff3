/**
 * Errors of the credential records (core/credentials). Like SaslError, a message names the problem
 * only: never a key, salt, proof, password or record content, since errors end up in logs.
 */
export type CredentialErrorCode =
  /** A stored or imported record is not what it must be (the detail says which field). */
  | "CREDENTIAL_FORMAT"
  /** A sealed upstream secret did not open: wrong ClientKey, or the record was tampered with. */
  | "CREDENTIAL_UNSEAL";

export class CredentialError extends Error {
  override readonly name = "CredentialError";
  readonly code: CredentialErrorCode;
  constructor(code: CredentialErrorCode, detail: string) {
    super(detail);
    this.code = code;
  }
}
