/**
 * A lean XMPP client for load generation: direct TLS (XEP-0368), SASL PLAIN, bind, and the
 * proxy's own byte framer to cut the incoming stream into stanzas. No element trees: the
 * benchmark matches stanzas by byte search, so the client costs as little CPU as possible and
 * costs the same on every path (direct, relay, proxy).
 */
import * as tls from "node:tls";
import { Framer } from "../../core/xml/framer.js";

export interface Endpoint {
  host: string;
  port: number;
  /** Trusted certificates (the proxy's / relay's and Prosody's). */
  ca: string[];
  domain: string;
}

export type StanzaListener = (name: string, bytes: Buffer, at: number) => void;

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

export function header(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
}

export class BenchClient {
  jid = "";
  /** Application bytes received after bind (what the server sent this session). */
  bytesIn = 0;
  stanzasIn = 0;
  closed = false;
  private framer = new Framer({ maxStanzaSize: 16 << 20, maxDepth: 256 });
  private listeners: StanzaListener[] = [];
  private waiters: { pred: (name: string, bytes: Buffer) => boolean; resolve: (b: Buffer) => void }[] = [];

  private constructor(readonly socket: tls.TLSSocket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
    });
  }

  private onData(chunk: Buffer): void {
    const at = performance.now();
    this.bytesIn += chunk.length;
    let events;
    try {
      events = this.framer.push(chunk);
    } catch (err) {
      this.socket.destroy(err as Error);
      return;
    }
    for (const ev of events) {
      if (ev.type !== "stanza") continue;
      this.stanzasIn++;
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.pred(ev.name, ev.bytes)) {
          this.waiters.splice(i, 1);
          w.resolve(ev.bytes);
        }
      }
      for (const l of this.listeners) l(ev.name, ev.bytes, at);
    }
  }

  onStanza(l: StanzaListener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The next stanza (from now on) matching `pred`. */
  waitFor(pred: (name: string, bytes: Buffer) => boolean, timeoutMs = 15_000, what = "stanza"): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.jid || "client"}: timeout waiting for ${what}`));
      }, timeoutMs);
      const w = { pred, resolve: (b: Buffer) => (clearTimeout(t), resolve(b)) };
      this.waiters.push(w);
      if (this.closed) {
        clearTimeout(t);
        reject(new Error(`${this.jid || "client"}: connection closed while waiting for ${what}`));
      }
    });
  }

  send(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  /** Connects, authenticates with PLAIN and binds `resource`. */
  static async connect(ep: Endpoint, user: string, pass: string, resource: string, timeoutMs = 30_000): Promise<BenchClient> {
    const socket = tls.connect({ host: ep.host, port: ep.port, servername: ep.domain, ca: ep.ca, ALPNProtocols: ["xmpp-client"] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("TLS connect timeout")), timeoutMs);
      socket.once("secureConnect", () => (clearTimeout(t), resolve()));
      socket.once("error", (e) => (clearTimeout(t), reject(e)));
    });
    const c = new BenchClient(socket);
    try {
      const features = c.waitFor((n) => n === "stream:features", timeoutMs, "features");
      c.send(header(ep.domain));
      await features;
      const verdict = c.waitFor((n) => n === "success" || n === "failure", timeoutMs, "SASL verdict");
      c.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pass}`).toString("base64")}</auth>`);
      const v = await verdict;
      if (!v.toString("latin1").startsWith("<success")) throw new Error(`auth failed for ${user}: ${v.toString()}`);
      c.framer.reset();
      const f2 = c.waitFor((n) => n === "stream:features", timeoutMs, "post-auth features");
      c.send(header(ep.domain));
      await f2;
      const bound = c.waitFor((n, b) => n === "iq" && (b.includes("id='bind1'") || b.includes('id="bind1"')), timeoutMs, "bind");
      c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
      const b = (await bound).toString();
      const m = /<jid>([^<]+)<\/jid>/.exec(b);
      if (!m) throw new Error(`bind failed: ${b}`);
      c.jid = m[1]!;
      c.bytesIn = 0;
      c.stanzasIn = 0;
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  /** Polite close: stream end tag, then end. */
  end(): void {
    if (this.closed) return;
    this.socket.end("</stream:stream>");
    setTimeout(() => this.close(), 500).unref();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function escapeAttr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
