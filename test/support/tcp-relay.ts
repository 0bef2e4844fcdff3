import * as net from "node:net";

/**
 * A loopback TCP relay for fault tests: the proxy under test uses it as its upstream, and the test
 * can cut chosen connections (e.g. "the newest one opened after the join" = the account session),
 * retarget it (an upstream restarted on other ports), or switch it to "blackhole" (accept TCP, never
 * answer) or "refuse" (accept and close at once). It relays bytes untouched, TLS included.
 */
export interface RelayConnection {
  readonly id: number;
  readonly openedAt: number;
  readonly client: net.Socket;
  /** Undefined in blackhole mode. */
  readonly upstream: net.Socket | undefined;
  bytesUp: number;
  bytesDown: number;
  /** The first HEAD_BYTES the proxy sent on it (what a plain or a TLS leg starts with). */
  head: Buffer;
  closed: boolean;
  /** While set (see hold), what the server sends, and its close, wait here instead of reaching the proxy. */
  held?: { data: Buffer[]; closed: boolean };
}

export type RelayMode = "pass" | "blackhole" | "refuse";

const HEAD_BYTES = 4096;

export class TcpRelay {
  private readonly server: net.Server;
  private seq = 0;
  /** Every connection ever accepted, oldest first. */
  readonly all: RelayConnection[] = [];
  mode: RelayMode = "pass";
  /** New connections accepted while set start held (see hold): a server that is slow to answer. */
  holdNew = false;
  /** While set, a new connection whose id (1, 2, …) it refuses is closed at once, as in "refuse" mode. */
  admit: ((id: number) => boolean) | undefined;
  port = 0;

  private constructor(private targetPort: number, private readonly targetHost: string) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpRelay> {
    const r = new TcpRelay(targetPort, targetHost);
    await new Promise<void>((resolve, reject) => {
      r.server.once("error", reject);
      r.server.listen(0, "127.0.0.1", () => resolve());
    });
    r.port = (r.server.address() as net.AddressInfo).port;
    return r;
  }

  /** New connections go to this port from now on (open ones are untouched). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    client.setNoDelay(true);
    if (this.mode === "refuse" || (this.admit && !this.admit(this.seq + 1))) {
      if (this.mode !== "refuse") this.seq++;
      client.destroy();
      return;
    }
    const upstream = this.mode === "blackhole" ? undefined : net.connect({ host: this.targetHost, port: this.targetPort });
    const c: RelayConnection = { id: ++this.seq, openedAt: Date.now(), client, upstream, bytesUp: 0, bytesDown: 0, head: Buffer.alloc(0), closed: false };
    if (this.holdNew) this.hold(c);
    this.all.push(c);
    const close = (): void => {
      if (c.closed) return;
      if (c.held) {
        c.held.closed = true; // delivered on release
        return;
      }
      c.closed = true;
      client.destroy();
      upstream?.destroy();
    };
    client.on("close", close);
    if (!upstream) {
      client.resume(); // read and drop whatever comes, never answer
      return;
    }
    upstream.setNoDelay(true);
    upstream.on("error", () => undefined);
    upstream.on("close", close);
    client.on("data", (d: Buffer) => {
      c.bytesUp += d.length;
      if (c.head.length < HEAD_BYTES) c.head = Buffer.concat([c.head, d.subarray(0, HEAD_BYTES - c.head.length)]);
      if (!upstream.write(d)) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
    });
    upstream.on("data", (d: Buffer) => {
      if (c.held) {
        c.held.data.push(d);
        return;
      }
      c.bytesDown += d.length;
      if (!client.write(d)) {
        upstream.pause();
        client.once("drain", () => upstream.resume());
      }
    });
  }

  /**
   * Holds back what the server sends on `c` (a late network): data and the server's close wait
   * until release(c). What the proxy sends still goes through.
   */
  hold(c: RelayConnection): void {
    c.held ??= { data: [], closed: false };
  }

  /** Delivers what hold(c) kept back, in order, then the server's close if it came meanwhile. */
  release(c: RelayConnection): void {
    const h = c.held;
    if (!h) return;
    c.held = undefined;
    for (const d of h.data) {
      c.bytesDown += d.length;
      c.client.write(d);
    }
    if (h.closed) c.client.end(() => this.cut(c));
  }

  /** Connections still open. */
  open(): RelayConnection[] {
    return this.all.filter((c) => !c.closed);
  }

  /** Open connections accepted after `t` (ms since epoch), oldest first. */
  openedAfter(t: number): RelayConnection[] {
    return this.open().filter((c) => c.openedAt > t);
  }

  /** Cuts connections abruptly (both sides destroyed, as a network failure would). Returns how many. */
  cut(which: RelayConnection | RelayConnection[] | ((c: RelayConnection) => boolean)): number {
    const list = typeof which === "function" ? this.open().filter(which) : Array.isArray(which) ? which : [which];
    for (const c of list) {
      c.closed = true;
      c.client.destroy();
      c.upstream?.destroy();
    }
    return list.length;
  }

  cutAll(): number {
    return this.cut(() => true);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
