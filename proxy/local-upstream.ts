/**
 * What starting a throwaway XMPP server on loopback needs, shared by `npm start` (demo.ts) and the
 * integration tests (test/support/upstream.ts): free ports to put in its config, and reading the
 * DIR/upstream.env that the recipe scripts (test/support/prosody.sh, ejabberd.sh) write.
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";

/*
 * Ports from 32768 up are the kernel's ephemeral range: any outgoing connection may hold one and make
 * the server's bind fail, and port 0 cannot be used because the port goes into the server's config.
 * So pick random ports below it and check each by binding.
 */
export const LOCAL_PORT_MIN = 20000;
export const LOCAL_PORT_MAX = 32000;
const TRIES = 200;

/** Whether 127.0.0.1:`port` can be bound right now. */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export interface PickPortOptions {
  /** Taken if free (e.g. 5222 for the demo), whatever its range. */
  preferred?: number;
  /** Ports not to hand out even if free (already given to a server that has not bound yet). */
  avoid?: ReadonlySet<number>;
}

/** A free loopback port in [LOCAL_PORT_MIN, LOCAL_PORT_MAX); throws after 200 random tries. */
export async function pickFreePort(o: PickPortOptions = {}): Promise<number> {
  if (o.preferred !== undefined && (await canBind(o.preferred))) return o.preferred;
  for (let i = 0; i < TRIES; i++) {
    const port = LOCAL_PORT_MIN + Math.floor(Math.random() * (LOCAL_PORT_MAX - LOCAL_PORT_MIN));
    if (o.avoid?.has(port) !== true && (await canBind(port))) return port;
  }
  throw new Error(`no free port in ${LOCAL_PORT_MIN}-${LOCAL_PORT_MAX} after ${TRIES} tries`);
}

/** DIR/upstream.env as written by the recipe scripts: KEY=VALUE lines, values optionally double-quoted. */
export function readUpstreamEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m === null) continue;
    let value = (m[2] as string).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out[m[1] as string] = value;
  }
  return out;
}
