/**
 * A push app server stand-in for tests (XEP-0357 §7 receiving side): an external component that
 * connects to the real server with XEP-0114 (jabber:component:accept; handshake = hex SHA-1 of the
 * stream id followed by the secret, §3) and records every publish IQ it receives. It answers each with
 * a result, or with what the test asks for (`answer`), e.g. an item-not-found to say "gone".
 */
import { createHash } from "node:crypto";
import * as net from "node:net";
import { Parser, type Element } from "@xmpp/xml";

export const NS_COMPONENT = "jabber:component:accept";

/** What the app server answers a publish with: a result, an error (type + condition), or nothing (a slow app server). */
export type PublishAnswer = { kind: "result" } | { kind: "error"; type: string; condition: string } | { kind: "silent" };

export interface ReceivedPublish {
  /** The whole IQ, as received. */
  iq: Element;
  from: string;
  node: string | undefined;
  /** The summary form's fields (urn:xmpp:push:summary), by var. */
  summary: Record<string, string>;
  /** The publish-options form's fields, by var. */
  options: Record<string, string>;
  at: number;
}

export class PushComponent {
  readonly publishes: ReceivedPublish[] = [];
  /** Everything else it received (for diagnosis). */
  readonly other: Element[] = [];
  answer: PublishAnswer = { kind: "result" };
  private constructor(private readonly socket: net.Socket, readonly host: string) {}

  static async connect(o: { port: number; host: string; secret: string }, timeoutMs = 10_000): Promise<PushComponent> {
    const socket = net.connect({ host: "127.0.0.1", port: o.port });
    socket.on("error", () => undefined);
    const c = new PushComponent(socket, o.host);
    const parser = new Parser();
    socket.on("data", (d) => parser.write(d.toString("utf8")));
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`XEP-0114 handshake with port ${o.port} timed out`)), timeoutMs);
      parser.on("start", (header: Element) => {
        const id = String(header.attrs.id ?? "");
        socket.write(`<handshake>${createHash("sha1").update(id + o.secret).digest("hex")}</handshake>`);
      });
      parser.on("element", (el: Element) => {
        if (el.name === "handshake") {
          clearTimeout(t);
          return resolve();
        }
        if (el.name === "stream:error") {
          clearTimeout(t);
          return reject(new Error(`component refused: ${el.toString()}`));
        }
        c.received(el);
      });
      socket.once("close", () => reject(new Error("component connection closed")));
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(`<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' to='${o.host}'>`);
    await ready;
    return c;
  }

  private received(el: Element): void {
    const publish = el.name === "iq" && el.attrs.type === "set" ? el.getChild("pubsub", "http://jabber.org/protocol/pubsub") : undefined;
    if (!publish) {
      this.other.push(el);
      // every get/set must be answered (RFC 6120 §8.2.3): disco and the like get service-unavailable
      if (el.name === "iq" && (el.attrs.type === "get" || el.attrs.type === "set")) this.reply(el, { kind: "error", type: "cancel", condition: "service-unavailable" });
      return;
    }
    const pub = publish.getChild("publish");
    const summaryForm = pub?.getChild("item")?.getChild("notification", "urn:xmpp:push:0")?.getChild("x", "jabber:x:data");
    const optionsForm = publish.getChild("publish-options")?.getChild("x", "jabber:x:data");
    this.publishes.push({ iq: el, from: String(el.attrs.from), node: pub?.attrs.node as string | undefined, summary: fields(summaryForm),
      options: fields(optionsForm), at: Date.now() });
    this.reply(el, this.answer);
  }

  private reply(el: Element, a: PublishAnswer): void {
    if (a.kind === "silent") return;
    const head = `<iq type='${a.kind}' id='${escape(String(el.attrs.id))}' from='${escape(String(el.attrs.to))}' to='${escape(String(el.attrs.from))}'`;
    this.socket.write(a.kind === "result" ? `${head}/>`
      : `${head}><error type='${a.type}'><${a.condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
  }

  close(): void {
    this.socket.end("</stream:stream>");
    this.socket.destroy();
  }
}

function fields(form: Element | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of form?.getChildren("field") ?? []) out[String(f.attrs.var)] = f.getChildText("value") ?? "";
  return out;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;");
}
