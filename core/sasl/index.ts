export { SaslError, type SaslCondition, type SaslErrorCode } from "./errors.js";
export { decodeSaslBase64, encodeSaslBase64, decodeUtf8Strict, MAX_SASL_BASE64_LENGTH } from "./base64.js";
export { saslprep } from "./saslprep.js";
export {
  parsePlainResponse,
  encodePlain,
  type PlainCredentials,
  PLAIN_MAX_AUTHCID_BYTES,
  PLAIN_MAX_AUTHZID_BYTES,
  PLAIN_MAX_PASSWORD_BYTES,
} from "./plain.js";
export {
  ScramClient,
  pickMechanism,
  scramHashOf,
  SCRAM_MIN_ITERATIONS,
  SCRAM_MAX_ITERATIONS,
  type ScramHash,
  type ScramKeys,
  type ScramSecret,
  type SaslMechanism,
} from "./scram.js";
