import { WebSocket, type RawData } from "ws";
import { client } from "@xmpp/client";
import { filterFeatures, startTestClient, type TestClient } from "./client.js";

/**
 * @xmpp/websocket 0.14 opens `new WebSocket(url, ["xmpp"])` with the global WebSocket, which
 * Node 20 does not have (Node 22 does): give it the `ws` client. Test clients trust the test CA
 * through NODE_EXTRA_CA_CERTS, which `ws` (node:https) honours like every TLS client of Node.
 */
export function provideWebSocket(): void {
  const g = globalThis as { WebSocket?: unknown };
  g.WebSocket ??= WebSocket;
}

export interface WsConnectOptions {
  /** e.g. wss://localhost:PORT/xmpp-websocket */
  url: string;
  username: string;
  password: string;
  resource?: string;
  domain?: string;
}

/** A real @xmpp/client over XMPP-over-WebSocket (RFC 7395), with the TestClient surface of client.ts. */
export async function connectWsClient(o: WsConnectOptions): Promise<TestClient> {
  provideWebSocket();
  const xmpp = client({ service: o.url, domain: o.domain ?? "localhost", username: o.username, password: o.password, resource: o.resource, timeout: 10_000 });
  xmpp.reconnect.stop();
  filterFeatures(xmpp, {});
  return startTestClient(xmpp);
}

/** A raw RFC 7395 peer: sends exact messages, records every message and how the socket closed. */
export class RawWs {
  readonly messages: string[] = [];
  closeCode: number | undefined;
  private readonly closed: Promise<number>;
  private waiters: { re: RegExp; resolve: (m: string) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (d: RawData) => {
      const m = Buffer.isBuffer(d) ? d.toString("utf8") : Array.isArray(d) ? Buffer.concat(d).toString("utf8") : Buffer.from(d).toString("utf8");
      this.messages.push(m);
      for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i]!.re.test(m)) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
    this.closed = new Promise((resolve) => ws.once("close", (code) => resolve((this.closeCode = code))));
  }

  /** Resolves once open; rejects with the HTTP status when the upgrade is refused. */
  static connect(url: string, protocols: string | string[] = "xmpp"): Promise<RawWs> {
    const ws = new WebSocket(url, protocols);
    const raw = new RawWs(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(raw));
      ws.once("unexpected-response", (_req, res) => {
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once("error", reject);
    });
  }

  send(m: string | Buffer, binary = false): void {
    this.ws.send(m, { binary });
  }

  waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const found = this.messages.find((m) => re.test(m));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no message matching ${re} in ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`)), timeoutMs);
      this.waiters.push({ re, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  }

  waitClosed(timeoutMs = 10_000): Promise<number> {
    return Promise.race([this.closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error("WebSocket not closed")), timeoutMs).unref())]);
  }
}
