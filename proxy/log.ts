import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * JSON logs to stdout (or the given stream), one child logger per connection.
 * Nothing in the proxy ever passes a password or a SASL payload to a logger; the redaction list
 * is a second fence in case a future field name slips through.
 */
export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  const opts = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: ["password", "*.password", "secret", "*.secret", "saslPayload", "*.saslPayload", "authorization"],
      censor: "[redacted]",
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(opts, destination) : pino(opts);
}
