/**
 * What reaches a phone on the wire: a plain TCP pipe in front of a direct-TLS port (Prosody's or
 * the proxy's) that does NOT terminate TLS — the client's TLS session is end to end — and counts,
 * per connection, what flows from the server to the client:
 *
 * - bytes: TCP payload, i.e. TLS ciphertext with record headers (what the radio carries, less TCP/IP
 *   headers);
 * - records: TLS records (RFC 8446 §5.1 TLSPlaintext/TLSCiphertext headers: type, version, 16-bit
 *   length), i.e. roughly the sender's writes — every write of a TLS socket is at least one record;
 * - bursts: arrivals after at least `gapMs` of silence on that connection (the first arrival after
 *   a reset is one). A phone's radio wakes per burst, not per byte.
 *
 * Counting never changes what is forwarded: counting errors only stop counting.
 */
import type net from "node:net";
import { LoopbackPipe } from "./loopback-pipe.js";

export interface WireCounts {
  bytes: number;
  records: number;
  bursts: number;
}

export class WireConn implements WireCounts {
  bytes = 0;
  records = 0;
  bursts = 0;
  /** performance.now() of the last server → client arrival. */
  lastAt: number | undefined;
  /** Record parser: bytes of the current record still to skip, and a partial header. */
  private skip = 0;
  private head: number[] = [];
  private parsing = true;

  constructor(private readonly gapMs: number) {}

  /** Zeroes the counters; the next arrival starts a burst. */
  reset(): void {
    this.bytes = 0;
    this.records = 0;
    this.bursts = 0;
    this.lastAt = undefined;
  }

  snapshot(): WireCounts {
    return { bytes: this.bytes, records: this.records, bursts: this.bursts };
  }

  /** One read from the server side, at `at` (ms). */
  arrived(chunk: Buffer, at: number): void {
    if (this.lastAt === undefined || at - this.lastAt >= this.gapMs) this.bursts++;
    this.lastAt = at;
    this.bytes += chunk.length;
    if (this.parsing) this.countRecords(chunk);
  }

  private countRecords(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.head.push(chunk[i]!);
      i++;
      if (this.head.length < 5) continue;
      const [type, major] = this.head;
      if (type! < 20 || type! > 24 || major !== 3) {
        this.parsing = false; // not TLS: stop counting records, keep forwarding
        return;
      }
      this.records++;
      this.skip = (this.head[3]! << 8) | this.head[4]!;
      this.head = [];
    }
  }
}

export class WirePipe extends LoopbackPipe {
  /** Connections in accept order. */
  readonly conns: WireConn[] = [];

  constructor(targetPort: number, private readonly gapMs: number) {
    super(targetPort);
  }

  /** Resolves with the counters of the next connection accepted (call before connecting). */
  nextConn(): Promise<WireConn> {
    const n = this.conns.length;
    return new Promise((resolve) => {
      const poll = (): void => {
        const c = this.conns[n];
        if (c) resolve(c);
        else setTimeout(poll, 5);
      };
      poll();
    });
  }

  protected connect(down: net.Socket, up: net.Socket): void {
    const conn = new WireConn(this.gapMs);
    this.conns.push(conn);
    down.pipe(up);
    up.on("data", (chunk: Buffer) => {
      conn.arrived(chunk, performance.now());
      if (!down.write(chunk)) {
        up.pause();
        down.once("drain", () => up.resume());
      }
    });
  }
}
