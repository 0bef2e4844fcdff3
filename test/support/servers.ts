import { inject } from "vitest";
import type { ProvidedUpstream } from "./global-setup.js";

export type { ProvidedUpstream };

/**
 * The real servers this run started (global-setup; MINIMIX_TEST_UPSTREAMS selects them), in a
 * stable order: integration files run their describe blocks once per entry with `describe.each`.
 */
export function upstreamServers(): ProvidedUpstream[] {
  const all = inject("upstreams");
  return (["prosody", "ejabberd"] as const).flatMap((k) => (all[k] ? [all[k]] : []));
}

/**
 * False in a run that should leave out the describe blocks which need a server but not a particular one (they
 * run against upstreamServers()[0], "the proxy alone"): test/run-suites.sh runs vitest once per server and sets
 * MINIMIX_TEST_SERVER_AGNOSTIC=skip in the ejabberd run, so that those blocks run once, in the Prosody run, as
 * in a single run against both servers. Unset (any plain vitest run): true.
 */
export function serverAgnosticBlocks(): boolean {
  return process.env.MINIMIX_TEST_SERVER_AGNOSTIC !== "skip";
}

/** Server-specific expectations the suites share: what differs between Prosody and ejabberd. */
export interface ServerTraits {
  /** SASL mechanisms the server offers after TLS, in the order it lists them. */
  mechanisms: string[];
  /** What the proxy must pick upstream (the strongest non -PLUS mechanism offered). */
  picked: string;
  /**
   * A client stanza whose `from` is not the session's own JID (RFC 6120 §8.1.2.1): Prosody
   * overwrites it with the session's full JID; ejabberd ends the stream with <invalid-from/>
   * (it accepts the account's own bare JID, and stamps the full JID).
   */
  forgedFrom: "rewritten" | "invalid-from";
}

export function traits(kind: ProvidedUpstream["kind"]): ServerTraits {
  return kind === "ejabberd"
    ? { mechanisms: ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"], picked: "SCRAM-SHA-1", forgedFrom: "invalid-from" }
    : { mechanisms: ["SCRAM-SHA-1", "PLAIN"], picked: "SCRAM-SHA-1", forgedFrom: "rewritten" };
}
