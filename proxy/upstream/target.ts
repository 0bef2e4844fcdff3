import type { Config } from "../config.js";
import type { UpstreamTarget } from "./connect.js";

/** Upstream stanzas (MAM pages, vCards with photos) may legitimately be larger than a client's. */
export const UPSTREAM_STANZA_FACTOR = 16;

/**
 * How the proxy reaches the real server for `domain`: the one description shared by the client
 * sessions, the account sessions and `minimix-proxy check`, so the check probes what the proxy does.
 */
export function upstreamTarget(cfg: Config, domain: string, ca: string | Buffer | undefined): UpstreamTarget {
  return {
    host: cfg.upstream.host,
    port: cfg.upstream.port,
    tls: cfg.upstreamTls,
    domain,
    ca,
    insecure: cfg.upstreamInsecure,
    timeoutMs: cfg.upstreamTimeoutMs,
    limits: { maxStanzaSize: cfg.limits.maxStanzaSize * UPSTREAM_STANZA_FACTOR, maxDepth: cfg.limits.maxDepth },
    keepaliveMs: cfg.keepaliveMs,
  };
}
