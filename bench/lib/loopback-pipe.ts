/**
 * A TCP listener on loopback that opens a connection to `targetPort` for each client and hands the
 * pair to `connect` (which moves the bytes: counted, delayed, …). Both sockets are closed together,
 * and stop() closes every pair. Base of WirePipe (wire.ts) and DelayPipe (delay-pipe.ts).
 */
import * as net from "node:net";

export abstract class LoopbackPipe {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(protected readonly targetPort: number) {}

  async start(): Promise<number> {
    const server = net.createServer((down) => this.accept(down));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Moves the bytes between the client (`down`) and the target (`up`). */
  protected abstract connect(down: net.Socket, up: net.Socket): void;

  private accept(down: net.Socket): void {
    const up = net.connect({ host: "127.0.0.1", port: this.targetPort });
    const kill = (): void => {
      down.destroy();
      up.destroy();
      this.sockets.delete(down);
      this.sockets.delete(up);
    };
    for (const s of [down, up]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on("error", kill);
      s.on("close", kill);
    }
    this.connect(down, up);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
