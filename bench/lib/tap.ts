/**
 * A counting TLS relay in front of Prosody's direct-TLS port: it terminates TLS on both sides so
 * it can see, per connection, what the *server* sends — stanzas (cut by the proxy's own framer)
 * and bytes — and which account the connection is bound to (from the bind result). Direct
 * clients and the proxy both go through it in the account-level measurement, so "what Prosody
 * sends to the account" is counted the same way on both paths.
 */
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { Framer } from "../../core/xml/framer.js";
import type { CertFiles } from "./procs.js";

interface Leg {
  bare: string | undefined;
  stanzas: number;
  bytes: number;
  groupchat: number;
}

export interface TapCounts {
  stanzas: number;
  bytes: number;
  groupchat: number;
  connections: number;
}

export class Tap {
  private server: tls.Server | undefined;
  private readonly legs = new Set<Leg>();
  private readonly sockets = new Set<tls.TLSSocket>();
  port = 0;

  constructor(private readonly targetPort: number, private readonly targetCa: string, private readonly cert: CertFiles) {}

  async start(): Promise<number> {
    const server = tls.createServer({ cert: this.cert.cert, key: readFileSync(this.cert.keyFile), ALPNProtocols: ["xmpp-client"] }, (down) => this.accept(down));
    server.on("tlsClientError", () => undefined);
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  private accept(down: tls.TLSSocket): void {
    down.setNoDelay(true);
    const up = tls.connect({ host: "127.0.0.1", port: this.targetPort, servername: "localhost", ca: this.targetCa, ALPNProtocols: ["xmpp-client"] });
    up.setNoDelay(true);
    const leg: Leg = { bare: undefined, stanzas: 0, bytes: 0, groupchat: 0 };
    this.legs.add(leg);
    this.sockets.add(down);
    this.sockets.add(up);
    const framer = new Framer({ maxStanzaSize: 64 << 20, maxDepth: 512 });
    let framing = true;
    const kill = (): void => {
      down.destroy();
      up.destroy();
      this.legs.delete(leg);
      this.sockets.delete(down);
      this.sockets.delete(up);
    };
    down.on("error", kill);
    up.on("error", kill);
    down.on("close", kill);
    up.on("close", kill);
    down.pipe(up);
    up.on("data", (chunk: Buffer) => {
      if (!down.write(chunk)) {
        up.pause();
        down.once("drain", () => up.resume());
      }
      leg.bytes += chunk.length;
      if (!framing) return;
      try {
        for (const ev of framer.push(chunk)) {
          if (ev.type === "open") continue;
          if (ev.type === "close") break;
          leg.stanzas++;
          if (ev.name === "success") framer.reset(); // SASL success: the stream restarts
          else if (ev.name === "message" && (ev.bytes.includes("type='groupchat'") || ev.bytes.includes('type="groupchat"'))) leg.groupchat++;
          if (leg.bare === undefined && ev.name === "iq") {
            const m = /<jid>([^<@]+@[^</]+)\//.exec(ev.bytes.toString());
            if (m) leg.bare = m[1]!.toLowerCase();
          }
        }
      } catch {
        framing = false; // never break the relay for a counting problem
      }
    });
  }

  /** Zeroes every counter (connections stay). */
  reset(): void {
    for (const l of this.legs) {
      l.stanzas = 0;
      l.bytes = 0;
      l.groupchat = 0;
    }
  }

  /** What the server sent, since the last reset, on connections bound to `bare`. */
  countsFor(bare: string): TapCounts {
    const out: TapCounts = { stanzas: 0, bytes: 0, groupchat: 0, connections: 0 };
    for (const l of this.legs) {
      if (l.bare !== bare) continue;
      out.stanzas += l.stanzas;
      out.bytes += l.bytes;
      out.groupchat += l.groupchat;
      out.connections++;
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
