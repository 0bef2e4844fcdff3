/**
 * A TCP pipe that holds every chunk for `oneWayMs` in each direction, in order: a mobile link's
 * round trip (2 × oneWayMs) in front of a server or the proxy, without touching TLS. Runs in the
 * benchmark's own process (timers only, negligible CPU).
 */
import type * as net from "node:net";
import { LoopbackPipe } from "./loopback-pipe.js";

export class DelayPipe extends LoopbackPipe {
  constructor(targetPort: number, private readonly oneWayMs: number) {
    super(targetPort);
  }

  protected connect(down: net.Socket, up: net.Socket): void {
    this.delay(down, up);
    this.delay(up, down);
  }

  /** from → to, each chunk `oneWayMs` later; the end follows the last chunk. */
  private delay(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk: Buffer) => setTimeout(() => to.write(chunk), this.oneWayMs));
    from.on("end", () => setTimeout(() => to.end(), this.oneWayMs));
  }
}
