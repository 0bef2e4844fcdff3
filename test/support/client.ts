import { client, xml, type Client } from "@xmpp/client";
import type { Element } from "@xmpp/xml";

export { xml };
export type { Element };

export interface TestClient {
  xmpp: Client;
  jid: string;
  received: Element[];
  /** Resolves with the first stanza (already received or future) matching `pred`. */
  waitFor(pred: (el: Element) => boolean, timeoutMs?: number): Promise<Element>;
  send(el: Element): Promise<void>;
  stop(): Promise<void>;
}

export interface ConnectOptions {
  port: number;
  /** "starttls" (xmpp://) or "direct" (xmpps://, XEP-0368). */
  transport?: "starttls" | "direct";
  username: string;
  password: string;
  resource?: string;
  domain?: string;
  /**
   * XEP-0198 (@xmpp/stream-management: <enable resume='true'/> after bind, <r/> after its own
   * stanzas, <resume/> on reconnect). On by default, as in real clients; false hides the <sm/>
   * feature from the client, for tests about plain connections.
   */
  sm?: boolean;
  /**
   * SASL: "PLAIN" (the default) hides every other mechanism from the client, so the proxy learns the
   * password and the account layer runs (the MUC suites are about it; an account without a SCRAM
   * record would otherwise be relayed and pass through, docs/architecture.md §3.5). "offered" leaves
   * the proxy's offer as it is: @xmpp/client then picks SCRAM-SHA-1.
   */
  sasl?: "PLAIN" | "offered";
}

/** An @xmpp/client for `o`, with its automatic reconnect off (tests decide when to connect). */
function newClient(o: ConnectOptions): Client {
  const scheme = o.transport === "direct" ? "xmpps" : "xmpp";
  const xmpp = client({
    service: `${scheme}://127.0.0.1:${o.port}`,
    domain: o.domain ?? "localhost",
    username: o.username,
    password: o.password,
    resource: o.resource,
    // xmpp.js waits 2 s by default for each stream step (e.g. the reopen after STARTTLS); a loaded
    // 2-core CI machine can take longer, which is not what any test is about.
    timeout: 10_000,
  });
  xmpp.reconnect.stop();
  filterFeatures(xmpp, o);
  return xmpp;
}

/** Hides stream features from `xmpp` as `o.sm` and `o.sasl` say (ConnectOptions). */
export function filterFeatures(xmpp: Client, o: Pick<ConnectOptions, "sm" | "sasl">): void {
  const plainOnly = (o.sasl ?? "PLAIN") === "PLAIN";
  // runs before the stream-features middleware sees the element
  xmpp.prependListener("element", (el: Element) => {
    if (!el.is("features", "http://etherx.jabber.org/streams")) return;
    if (o.sm === false) el.children = el.children.filter((c) => typeof c === "string" || !c.is("sm", "urn:xmpp:sm:3"));
    const mechs = plainOnly ? el.getChild("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl") : undefined;
    if (mechs) mechs.children = mechs.children.filter((c) => typeof c !== "string" && c.getText() === "PLAIN");
  });
}

/**
 * A real client (@xmpp/client 0.14) for tests. The test CA is trusted through
 * NODE_EXTRA_CA_CERTS, set by the global setup before workers start.
 */
export async function connectClient(o: ConnectOptions): Promise<TestClient> {
  return startTestClient(newClient(o));
}

/** Starts `xmpp` and records what it receives: the TestClient surface, whatever the transport. */
export async function startTestClient(xmpp: Client): Promise<TestClient> {
  const received: Element[] = [];
  const waiters: { pred: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  xmpp.on("stanza", (el: Element) => {
    received.push(el);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(el)) waiters.splice(i, 1)[0]!.resolve(el);
    }
  });
  xmpp.on("error", () => undefined);
  const addr = await xmpp.start();
  return {
    xmpp,
    jid: addr.toString(),
    received,
    waitFor(pred, timeoutMs = 10_000) {
      const found = received.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`stanza not received in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ pred, resolve: (el) => (clearTimeout(t), resolve(el)) });
      });
    },
    send: (el) => xmpp.send(el),
    async stop() {
      try {
        await xmpp.stop();
      } catch {
        /* already gone */
      }
    },
  };
}

/** Connects and expects failure; resolves with the error (SASLError / StreamError of @xmpp). */
export async function connectError(o: ConnectOptions): Promise<{ condition?: string; name?: string; message: string }> {
  const xmpp = newClient(o);
  const streamErr = new Promise<{ condition?: string; name?: string; message: string }>((resolve) => {
    xmpp.on("error", (e: { condition?: string; name?: string; message: string }) => resolve(e));
  });
  try {
    await xmpp.start();
  } catch (e) {
    const err = e as { condition?: string; name?: string; message: string };
    await xmpp.stop().catch(() => undefined);
    return err;
  }
  await xmpp.stop().catch(() => undefined);
  return streamErr;
}
