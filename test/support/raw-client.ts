import * as net from "node:net";
import * as tls from "node:tls";

/**
 * A byte-level XMPP client for tests that must send what no library would: malformed XML,
 * oversized stanzas, protocol violations. It reads the proxy's answers as plain text.
 */
export class RawClient {
  private buf = "";
  private waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  closed = false;
  private closedWaiters: (() => void)[] = [];

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  private attach(s: net.Socket): void {
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      this.buf += d;
      this.check();
    });
    s.on("close", () => {
      this.closed = true;
      for (const w of this.closedWaiters.splice(0)) w();
    });
    s.on("error", () => undefined);
  }

  private check(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const m = this.buf.match(this.waiters[i]!.re);
      if (m) this.waiters.splice(i, 1)[0]!.resolve(m);
    }
  }

  static connect(port: number, direct = false): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = direct ? tls.connect({ host: "127.0.0.1", port, servername: "localhost", ALPNProtocols: ["xmpp-client"] })
        : net.connect({ host: "127.0.0.1", port });
      s.once(direct ? "secureConnect" : "connect", () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  get text(): string {
    return this.buf;
  }

  /** Forgets what was received so far (e.g. after a stream restart). */
  clear(): void {
    this.buf = "";
  }

  send(s: string | Buffer): void {
    this.socket.write(s);
  }

  /** Waits until everything received so far matches `re`. */
  waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const m = this.buf.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout waiting for ${re}; got: ${this.buf.slice(-1500)}`)), timeoutMs);
      this.waiters.push({ re, resolve: (mm) => (clearTimeout(t), resolve(mm)) });
    });
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("socket not closed")), timeoutMs);
      this.closedWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  header(domain = "localhost"): string {
    return `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
  }

  /** STARTTLS on a plain connection; afterwards the buffer is cleared. */
  async startTls(domain = "localhost"): Promise<void> {
    this.send(this.header(domain));
    await this.waitFor(/<starttls/);
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.waitFor(/<proceed/);
    this.socket.removeAllListeners("data");
    const secure = tls.connect({ socket: this.socket, servername: domain });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.socket = secure;
    this.buf = "";
    this.attach(secure);
  }

  /** Full login (STARTTLS unless direct, PLAIN, bind); returns the bound JID. */
  async login(user: string, pass: string, resource = "raw"): Promise<string> {
    await this.authenticate(user, pass);
    return this.bind(resource);
  }

  /**
   * STARTTLS unless direct, SASL PLAIN and the stream restart; resolves with the post-auth
   * features (nothing bound yet; what was received so far is cleared).
   */
  async authenticate(user: string, pass: string): Promise<string> {
    if (!(this.socket instanceof tls.TLSSocket)) await this.startTls();
    this.send(this.header());
    await this.waitFor(/<mechanisms/);
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pass}`).toString("base64")}</auth>`);
    await this.waitFor(/<success|<failure/);
    if (!/<success/.test(this.buf)) throw new Error(`auth failed: ${this.buf}`);
    this.buf = "";
    this.send(this.header());
    const m = await this.waitFor(/<stream:features>.*<\/stream:features>/s);
    this.buf = "";
    return m[0];
  }

  /** RFC 6120 §7 resource binding; resolves with the bound JID (what was received is cleared). */
  async bind(resource: string): Promise<string> {
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const m = await this.waitFor(/<jid>([^<]+)<\/jid>/);
    this.buf = "";
    return m[1]!;
  }

  close(): void {
    this.socket.destroy();
  }
}
