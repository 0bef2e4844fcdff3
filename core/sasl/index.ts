export { SaslError, type SaslCondition, type SaslErrorCode } from "./errors.js";
export { decodeSaslBase64, encodeSaslBase64, decodeUtf8Strict, MAX_SASL_BASE64_LENGTH } from "./base64.js";
export { saslprep } from "./saslprep.js";
export { SaltedPasswordCache } from "./salted-cache.js";
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
  type ScramClientKeys,
  type ScramClientGs2,
  type ScramClientOptions,
  type ScramSecret,
  type SaslMechanism,
} from "./scram.js";
export {
  ScramServer,
  decodeScramMessage,
  scramServerError,
  MAX_SCRAM_CLIENT_MESSAGE,
  type ScramServerOptions,
  type ScramClientFirst,
  type ScramServerSuccess,
  type ScramVerifierRecord,
} from "./scram-server.js";
export {
  CLIENT_SASL_MECHANISMS,
  offeredMechanisms,
  selectMechanism,
  parseClientSaslMechanism,
  mechanismStrength,
  isPlusMechanism,
  type ClientSaslMechanism,
} from "./mechanisms.js";
export {
  CHANNEL_BINDING_TYPES,
  TLS_EXPORTER_LABEL,
  TLS_EXPORTER_LENGTH,
  acceptedChannelBindingTypesFor,
  advertisedChannelBindingTypes,
  channelBindingTypesFor,
  serverEndPointHash,
  tlsServerEndPoint,
  tlsUniqueFinished,
  type ChannelBindingType,
} from "./channel-binding.js";
export { SCRAM_HASHES, hashLength, hashOfLength, isScramHash, keysFromSaltedPassword, type ScramMechanism } from "./scram-primitives.js";
