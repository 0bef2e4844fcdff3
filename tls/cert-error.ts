/**
 * Every certificate failure has a stable `code` so the edge (CLI, SIGHUP handler, metrics) can decide how
 * to report it; `tls/` itself never logs.
 */
export type CertErrorCode =
  | "CERT_NONE" // no certificate pairs configured
  | "CERT_READ" // a certificate or key file could not be read
  | "CERT_WRITE" // the dev certificate could not be written
  | "CERT_PARSE" // a file is not a usable PEM certificate / private key
  | "CERT_KEY_MISMATCH" // the private key does not belong to the certificate
  | "CERT_NO_NAMES" // the certificate names no DNS SAN and no CN
  | "CERT_DOMAIN"; // a domain given to the dev-cert generator is not a host name

export class CertError extends Error {
  override readonly name = "CertError";
  readonly code: CertErrorCode;
  /** The file the error is about, when there is one. */
  readonly file: string | undefined;

  constructor(code: CertErrorCode, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.file = options.file;
  }
}
