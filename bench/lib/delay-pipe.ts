/**
 * A TCP pipe that holds every chunk for `oneWayMs` in each direction, in order: a mobile link's
 * round trip (2 × oneWayMs) in front of a server or the proxy, without touching TLS. Runs in the
 * benchmark's own process (timers only, negligible CPU).
 */
import * as net from "node:net";

export class DelayPipe {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number, private readonly oneWayMs: number) {}

  async start(): Promise<number> {
    const server = net.createServer((down) => this.accept(down));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private accept(down: net.Socket): void {
    const up = net.connect({ host: "127.0.0.1", port: this.targetPort });
    for (const s of [down, up]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => undefined);
      s.on("close", () => {
        this.sockets.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    this.delay(down, up);
    this.delay(up, down);
  }

  /** from → to, each chunk `oneWayMs` later; the end follows the last chunk. */
  private delay(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk: Buffer) => setTimeout(() => to.write(chunk), this.oneWayMs));
    from.on("end", () => setTimeout(() => to.end(), this.oneWayMs));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
