/**
 * A lean XMPP client for load generation: direct TLS (XEP-0368), SASL PLAIN, bind, and the
 * proxy's own byte framer to cut the incoming stream into stanzas. No element trees: the
 * benchmark matches stanzas by byte search, so the client costs as little CPU as possible and
 * costs the same on every path (direct, relay, proxy).
 *
 * For the mobile measurements it also speaks the client side of XEP-0198 (enable with resumption,
 * the inbound count `h`, answering `<r/>`, `<resume/>`) and sends XEP-0352 `<active/>`/`<inactive/>`.
 * It never resends its own stanzas after a resume: the benchmark's clients send nothing while away.
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
export const NS_SM = "urn:xmpp:sm:3";
export const NS_CSI = "urn:xmpp:csi:0";

/** What a client keeps of an XEP-0198 stream to resume it on another connection. */
export interface SmState {
  /** The `id` of `<enabled/>` (undefined when the server did not allow resumption). */
  id: string | undefined;
  /** Stanzas handled from the server (XEP-0198 §4: top-level iq/message/presence, mod 2^32). */
  h: number;
  /** The server's `max` (seconds), if it gave one. */
  max: number | undefined;
}

export function header(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
}

export class BenchClient {
  jid = "";
  /** Application bytes received after bind (what the server sent this session). */
  bytesIn = 0;
  stanzasIn = 0;
  /** Every application byte received since the TLS handshake (never reset). */
  bytesTotal = 0;
  closed = false;
  /** The stream features after authentication (where `<sm/>` and `<csi/>` are offered). */
  features = "";
  /** XEP-0198 state once `<enabled/>` or `<resumed/>` arrived; undefined without stream management. */
  sm: SmState | undefined;
  /** `<r/>` requests answered. */
  acksSent = 0;
  private framer = new Framer({ maxStanzaSize: 16 << 20, maxDepth: 256 });
  /** Counting `h` (from `<enabled/>` / `<resumed/>` on, XEP-0198 §4). */
  private counting = false;
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
    this.bytesTotal += chunk.length;
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
      this.streamManagement(ev.name, ev.bytes);
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

  /**
   * XEP-0198 on the inbound side, in stream order (before any listener sees the element, so a
   * stanza that arrives in the same read as `<enabled/>` is counted). §4: only top-level `<iq>`,
   * `<message>` and `<presence>` count, and `h` wraps at 2^32; a `<r/>` is answered at once.
   */
  private streamManagement(name: string, bytes: Buffer): void {
    if (name === "message" || name === "iq" || name === "presence") {
      if (this.counting && this.sm) this.sm.h = (this.sm.h + 1) >>> 0;
      return;
    }
    if (name === "enabled" && isSm(bytes)) {
      const resume = attr(bytes, "resume");
      const max = attr(bytes, "max");
      this.sm = { id: resume === "true" || resume === "1" ? attr(bytes, "id") : undefined, h: 0, max: max === undefined ? undefined : Number(max) };
      this.counting = true;
    } else if (name === "resumed" && isSm(bytes)) {
      this.counting = this.sm !== undefined; // h carries on from the value sent in <resume/>
    } else if (name === "r" && isSm(bytes) && this.counting && this.sm) {
      this.acksSent++;
      this.send(`<a xmlns='${NS_SM}' h='${this.sm.h}'/>`);
    }
  }

  /** Whether the post-authentication stream features offer `xmlns` (e.g. NS_SM, NS_CSI). */
  offers(xmlns: string): boolean {
    return this.features.includes(`xmlns='${xmlns}'`) || this.features.includes(`xmlns="${xmlns}"`);
  }

  /**
   * `<enable resume='true'/>` (after bind, XEP-0198 §3). Resolves with the state to resume from, or
   * rejects with the server's `<failed/>`.
   */
  async enableSm(timeoutMs = 15_000): Promise<SmState> {
    const answer = this.waitFor((n, b) => (n === "enabled" || n === "failed") && isSm(b), timeoutMs, "<enabled/>");
    this.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const a = await answer;
    if (!this.sm || !a.toString("latin1").startsWith("<enabled")) throw new Error(`stream management refused: ${a.toString()}`);
    return this.sm;
  }

  /**
   * `<resume previd h/>` on a freshly authenticated (unbound) connection (XEP-0198 §5). On
   * `<resumed/>` the client takes the old stream's JID and counter and keeps counting; stanzas the
   * server resends after `<resumed/>` reach the listeners like any other. `<failed/>` resolves
   * `{ resumed: false }` with the server's answer.
   */
  async resume(prev: { jid: string; sm: SmState }, timeoutMs = 15_000): Promise<{ resumed: boolean; answer: string }> {
    if (prev.sm.id === undefined) throw new Error("resume: the stream was not enabled with resumption");
    this.jid = prev.jid;
    this.sm = { ...prev.sm };
    this.counting = false;
    const answer = this.waitFor((n, b) => (n === "resumed" || n === "failed") && isSm(b), timeoutMs, "<resumed/>");
    this.send(`<resume xmlns='${NS_SM}' previd='${escapeAttr(prev.sm.id)}' h='${prev.sm.h}'/>`);
    const a = (await answer).toString();
    if (a.startsWith("<resumed")) return { resumed: true, answer: a };
    this.sm = undefined;
    return { resumed: false, answer: a };
  }

  /** XEP-0352 client state. */
  setInactive(): void {
    this.send(`<inactive xmlns='${NS_CSI}'/>`);
  }

  setActive(): void {
    this.send(`<active xmlns='${NS_CSI}'/>`);
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
    const c = await BenchClient.open(ep, user, pass, timeoutMs);
    try {
      await c.bind(resource, timeoutMs);
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /**
   * TLS, SASL PLAIN and the restarted stream: resolves at the post-authentication features
   * (`features`), before bind — where a client either binds or resumes (XEP-0198 §5).
   */
  static async open(ep: Endpoint, user: string, pass: string, timeoutMs = 30_000): Promise<BenchClient> {
    const socket = tls.connect({ host: ep.host, port: ep.port, servername: ep.domain, ca: ep.ca, ALPNProtocols: ["xmpp-client"] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => (socket.destroy(), reject(new Error("TLS connect timeout"))), timeoutMs);
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
      c.features = (await f2).toString();
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /** Binds `resource` on an authenticated stream; counters restart here (what the session received). */
  async bind(resource: string, timeoutMs = 30_000): Promise<void> {
    const bound = this.waitFor((n, b) => n === "iq" && (b.includes("id='bind1'") || b.includes('id="bind1"')), timeoutMs, "bind");
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const b = (await bound).toString();
    const m = /<jid>([^<]+)<\/jid>/.exec(b);
    if (!m) throw new Error(`bind failed: ${b}`);
    this.jid = m[1]!;
    this.bytesIn = 0;
    this.stanzasIn = 0;
  }

  /**
   * Abrupt close: the socket is destroyed without `</stream:stream>` (what a network switch looks like
   * to the peer, except that loopback still delivers the FIN).
   */
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

function isSm(bytes: Buffer): boolean {
  return bytes.includes(NS_SM);
}

/** An attribute of the element's start tag (byte search; enough for the server's SM elements). */
function attr(bytes: Buffer, name: string): string | undefined {
  const end = bytes.indexOf(0x3e);
  const head = bytes.toString("utf8", 0, end < 0 ? bytes.length : end);
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(head);
  return m ? (m[1] ?? m[2]) : undefined;
}

export function escapeAttr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
