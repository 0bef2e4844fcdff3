import { expect } from "vitest";
import { ConfigError } from "../../proxy/cli-args.js";

/** Asserts a ConfigError with exactly this one-line message (and key, if given). */
export function expectConfigError(fn: () => unknown, message: string | RegExp, key?: string): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe("CONFIG_INVALID");
    expect(e.message).not.toMatch(/[\r\n]/);
    if (typeof message === "string") expect(e.message).toBe(message);
    else expect(e.message).toMatch(message);
    if (key !== undefined) expect(e.key).toBe(key);
    return e;
  }
  throw new Error("expected ConfigError");
}
