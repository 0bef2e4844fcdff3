// Minimal typings for the parts of @xmpp/* used by this project (the packages ship none).
declare module "@xmpp/xml" {
  import { Element } from "ltx";
  export { Element };
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (Element | string)[]): Element;
  export default xml;
  /** Streaming parser: "start" with the stream header, "element" with each top-level child (test/support/component.ts). */
  export class Parser {
    write(data: string): void;
    on(event: "start" | "element", listener: (el: Element) => void): this;
    on(event: "error", listener: (err: Error) => void): this;
    on(event: "end", listener: (el: Element) => void): this;
  }
}

declare module "@xmpp/client" {
  import type { Element } from "ltx";
  import type { EventEmitter } from "node:events";
  export { xml } from "@xmpp/xml";
  export interface JID {
    toString(): string;
    bare(): JID;
    local: string;
    domain: string;
    resource: string;
  }
  export interface IqCaller {
    request(el: Element, timeoutMs?: number): Promise<Element>;
    get(el: Element, to?: string, timeoutMs?: number): Promise<Element>;
    set(el: Element, to?: string, timeoutMs?: number): Promise<Element>;
  }
  export interface Client extends EventEmitter {
    start(): Promise<JID>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    write(s: string): Promise<void>;
    isSecure(): boolean;
    iqCaller: IqCaller;
    /** @xmpp/reconnect; reconnect() connects and opens the stream again (with SM, it resumes). */
    reconnect: { stop(): void; reconnect(): Promise<void> };
    /** @xmpp/stream-management (XEP-0198): its state, and "resumed" / "ack" / "fail" events. */
    streamManagement: StreamManagement;
    jid?: JID;
    status: string;
  }
  export interface StreamManagement extends EventEmitter {
    enabled: boolean;
    /** The resumption id from <enabled/> ("" when none). */
    id: string;
    /** Stanzas received (the client's h). */
    inbound: number;
    /** Sent to the server and acknowledged. */
    outbound: number;
    /** The <enable max/> it asks for (seconds), null for none. */
    preferredMaximum: number | null;
  }
  export interface ClientOptions {
    service: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
    /** Milliseconds xmpp.js waits for each stream step (connection option; default 2000). */
    timeout?: number;
  }
  export function client(o: ClientOptions): Client;
}
