/**
 * A SCRAM login written with Node's tls and the project's ScramClient, for what @xmpp/client cannot
 * do: a chosen SCRAM mechanism, -PLUS with channel binding to this very connection, or a login with
 * ClientKey/ServerKey instead of the password. STARTTLS (RFC 6120 §5) or direct TLS, then SASL
 * (RFC 6120 §6); stops after <success/> or <failure/>, without binding a resource.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { ScramClient, type ScramClientOptions, type ScramSecret } from "../../core/sasl/scram.js";
import type { ScramHash } from "../../core/sasl/scram-primitives.js";
import { channelBindings } from "../../proxy/channel-binding.js";

export interface ScramLoginOptions {
  host?: string;
  port: number;
  domain?: string;
  /** Trusted CA (PEM) for the server's certificate; default: Node's store (plus NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer;
  direct?: boolean;
  username: string;
  secret: ScramSecret;
  hash: ScramHash;
  /** Bind to this channel-binding type of the connection (SCRAM-*-PLUS). */
  plus?: string;
  timeoutMs?: number;
  /** After success: restart the stream, bind this resource, and keep the connection (ScramLoginResult.session). */
  bind?: string;
}

/** A bound stream after a successful login with `bind`: raw access for the test, closed by close(). */
export interface ScramSession {
  jid: string;
  write(xml: string): void;
  /** Resolves with the first match in what arrived after bind (kept, not consumed). */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  close(): void;
}

export interface ScramLoginResult {
  /** The <mechanism/>s the server offered after TLS. */
  offered: string[];
  /** XEP-0440 channel-binding types the server advertised. */
  channelBindingTypes: string[];
  /** "success" only when the server also proved itself (its v= verified). */
  outcome: "success" | "failure";
  /** The <failure/> condition. */
  condition?: string;
  /** The decoded server-first-message (r=...,s=...,i=...), when the exchange got that far. */
  serverFirst?: string;
  /** The client after the exchange (its clientKeys, its keys with a password). */
  client: ScramClient;
  /** The <failure/>'s <text/>, if any. */
  text?: string;
  /** With `bind`: the bound stream. */
  session?: ScramSession;
  /** With `bind`: the stream error that came instead of the features or the bind result. */
  streamError?: { condition: string; text?: string };
}

const HEADER = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";

export async function scramLogin(o: ScramLoginOptions): Promise<ScramLoginResult> {
  const host = o.host ?? "127.0.0.1";
  const domain = o.domain ?? "localhost";
  const timeoutMs = o.timeoutMs ?? 10_000;
  let buf = "";
  let socket: net.Socket;
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  const feed = (d: string): void => {
    buf += d;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      const m = buf.match(w.re);
      if (m) {
        waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
  };
  const waitFor = (re: RegExp): Promise<RegExpMatchArray> => {
    const m = buf.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`scramLogin: timeout waiting for ${re}`)), timeoutMs);
      waiters.push({ re, resolve, reject, timer });
    });
  };
  const attach = (s: net.Socket): void => {
    s.setEncoding("utf8");
    s.on("data", feed);
    s.on("error", () => undefined);
  };
  const secure = (s: tls.TLSSocket): Promise<tls.TLSSocket> =>
    new Promise((resolve, reject) => {
      s.once("secureConnect", () => resolve(s));
      s.once("error", reject);
    });
  const tlsOptions = { servername: domain, ...(o.ca !== undefined ? { ca: o.ca } : {}) };

  if (o.direct) {
    socket = await secure(tls.connect({ host, port: o.port, ALPNProtocols: ["xmpp-client"], ...tlsOptions }));
    attach(socket);
  } else {
    const plain = net.connect({ host, port: o.port });
    await new Promise<void>((resolve, reject) => {
      plain.once("connect", resolve);
      plain.once("error", reject);
    });
    socket = plain;
    attach(plain);
    plain.write(HEADER(domain));
    await waitFor(/<\/stream:features>/);
    plain.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await waitFor(/<proceed/);
    plain.removeAllListeners("data");
    buf = "";
    socket = await secure(tls.connect({ socket: plain, ...tlsOptions }));
    attach(socket);
  }
  let keep = false;
  try {
    const tlsSocket = socket as tls.TLSSocket;
    socket.write(HEADER(domain));
    const features = (await waitFor(/<stream:features[\s\S]*?<\/stream:features>/))[0];
    const offered = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]!.trim());
    const channelBindingTypes = [...features.matchAll(/<channel-binding type=['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    let gs2: ScramClientOptions | undefined;
    if (o.plus !== undefined) {
      const bindings: ReadonlyMap<string, Buffer> = channelBindings(tlsSocket, "client");
      const data = bindings.get(o.plus);
      if (data === undefined) throw new Error(`scramLogin: this connection has no ${o.plus} channel binding`);
      gs2 = { gs2: { type: o.plus, data } };
    }
    const client = new ScramClient(o.hash, o.username, o.secret, gs2);
    buf = "";
    socket.write(`<auth xmlns='${NS_SASL}' mechanism='${client.mechanism}'>${Buffer.from(client.clientFirst()).toString("base64")}</auth>`);
    const step = await waitFor(/<challenge[^>]*>([^<]*)<\/challenge>|<failure[\s\S]*?<\/failure>/);
    if (step[0].startsWith("<failure")) return { offered, channelBindingTypes, outcome: "failure", condition: failureCondition(step[0]), text: failureText(step[0]), client };
    const serverFirst = Buffer.from(step[1] ?? "", "base64").toString("utf8");
    buf = "";
    socket.write(`<response xmlns='${NS_SASL}'>${Buffer.from(client.clientFinal(serverFirst)).toString("base64")}</response>`);
    const end = await waitFor(/<success[^>]*\/>|<success[^>]*>([^<]*)<\/success>|<failure[\s\S]*?<\/failure>/);
    if (end[0].startsWith("<failure")) return { offered, channelBindingTypes, outcome: "failure", condition: failureCondition(end[0]), text: failureText(end[0]), serverFirst, client };
    client.verifyServerFinal(Buffer.from(end[1] ?? "", "base64").toString("utf8"));
    if (o.bind === undefined) return { offered, channelBindingTypes, outcome: "success", serverFirst, client };
    buf = "";
    socket.write(HEADER(domain));
    const streamError = (m: RegExpMatchArray): ScramLoginResult => ({
      offered, channelBindingTypes, outcome: "success", serverFirst, client,
      streamError: { condition: failureCondition(m[0].replace(/^<stream:error>/, "<failure>")), text: failureText(m[0]) },
    });
    const f = await waitFor(/<stream:features[\s\S]*?<\/stream:features>|<stream:error>[\s\S]*?<\/stream:error>/);
    if (f[0].startsWith("<stream:error")) return streamError(f);
    buf = "";
    socket.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${o.bind}</resource></bind></iq>`);
    const b = await waitFor(/<jid>([^<]+)<\/jid>|<stream:error>[\s\S]*?<\/stream:error>/);
    if (b[0].startsWith("<stream:error")) return streamError(b);
    const jid = b[1]!;
    const s = socket;
    keep = true;
    return {
      offered, channelBindingTypes, outcome: "success", serverFirst, client,
      session: { jid, write: (x) => void s.write(x), waitFor, close: () => s.destroy() },
    };
  } finally {
    if (!keep) socket.destroy();
  }
}

function failureText(failure: string): string | undefined {
  const t = /<text[^>]*>([^<]*)<\/text>/.exec(failure)?.[1];
  return t?.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function failureCondition(failure: string): string {
  return /<([a-z-]+)(?:\s[^>]*)?\/>/.exec(failure.replace(/^<failure[^>]*>/, ""))?.[1] ?? "?";
}

/** s= and i= of a server-first-message (RFC 5802 §7). */
export function saltAndIterations(serverFirst: string): { salt: Buffer; iterations: number } {
  const s = /(?:^|,)s=([^,]+)/.exec(serverFirst)?.[1];
  const i = /(?:^|,)i=([0-9]+)/.exec(serverFirst)?.[1];
  if (s === undefined || i === undefined) throw new Error("not a server-first-message");
  return { salt: Buffer.from(s, "base64"), iterations: Number(i) };
}
