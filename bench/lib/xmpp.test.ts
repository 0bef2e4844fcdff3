/**
 * The client side of XEP-0198 in the benchmark's BenchClient, against a scripted TLS server: what
 * counts towards `h` (§4: top-level iq/message/presence only, wrapping at 2^32), `<r/>` answered at
 * once, `<failed/>` to `<enable/>` and to `<resume/>`, and the CSI feature check.
 */
import * as tls from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { generateSelfSigned } from "../../tls/dev-cert.js";
import { BenchClient, NS_CSI, NS_SM } from "./xmpp.js";

const pem = generateSelfSigned(["localhost"]);
const OPEN = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";

/** A server that logs anyone in and then answers the client's elements with `script`. */
function scripted(postAuthFeatures: string, script: (sent: string, write: (s: string) => void) => void): Promise<{ port: number; received: string[]; close: () => Promise<void> }> {
  const received: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: pem.cert, key: pem.key }, (s) => {
    sockets.add(s);
    let authed = false;
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => {
      const text = d.toString();
      received.push(text);
      const write = (x: string): void => void s.write(x);
      if (text.includes("<stream:stream")) {
        write(OPEN + (authed ? `<stream:features>${postAuthFeatures}</stream:features>` : "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"));
      } else if (text.includes("<auth ")) {
        authed = true;
        write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      } else if (text.includes("id='bind1'")) {
        write("<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/r</jid></bind></iq>");
      } else {
        script(text, write);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    port: (server.address() as { port: number }).port,
    received,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  })));
}

const ep = (port: number) => ({ host: "127.0.0.1", port, ca: [pem.cert], domain: "localhost" });
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(pred()).toBe(true);
}

describe("BenchClient stream management (client side)", () => {
  it("counts only top-level iq/message/presence after <enabled/>, and answers <r/> with h at once", async () => {
    const srv = await scripted(`<sm xmlns='${NS_SM}'/><csi xmlns='${NS_CSI}'/>`, (sent, write) => {
      if (sent.includes("<enable ")) {
        // stanzas in the same write as <enabled/> count; nonzas and nested stanzas do not
        write(`<enabled xmlns='${NS_SM}' id='tok1' resume='true' max='300'/><message id='m1'><body>x</body></message>` +
          `<presence from='room@muc/x'/><iq type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq><a xmlns='${NS_SM}' h='0'/>` +
          `<message id='m2'><forwarded xmlns='urn:xmpp:forward:0'><message id='inner'/></forwarded></message><r xmlns='${NS_SM}'/>`);
      }
    });
    cleanup.push(srv.close);
    const c = await BenchClient.open(ep(srv.port), "alice", "pw");
    cleanup.push(() => c.close());
    expect(c.offers(NS_SM)).toBe(true);
    expect(c.offers(NS_CSI)).toBe(true);
    expect(c.offers("urn:xmpp:nothing")).toBe(false);
    await c.bind("r");
    const sm = await c.enableSm();
    expect(sm).toMatchObject({ id: "tok1", max: 300 });
    await until(() => srv.received.some((x) => x.includes(`<a xmlns='${NS_SM}' h='4'/>`)));
    expect(c.sm!.h).toBe(4);
    expect(c.acksSent).toBe(1);
  });

  it("resumes with the old h, keeps counting across 2^32, and reports <failed/>", async () => {
    let answer = "";
    const srv = await scripted(`<sm xmlns='${NS_SM}'/>`, (sent, write) => {
      if (sent.includes("<resume ")) {
        answer = sent;
        write(`<resumed xmlns='${NS_SM}' previd='tok1' h='0'/><message id='a'/><message id='b'/><r xmlns='${NS_SM}'/>`);
      }
    });
    cleanup.push(srv.close);
    const c = await BenchClient.open(ep(srv.port), "alice", "pw");
    cleanup.push(() => c.close());
    const r = await c.resume({ jid: "alice@localhost/r", sm: { id: "tok1", h: 2 ** 32 - 1, max: undefined } });
    expect(r.resumed).toBe(true);
    expect(answer).toContain(`previd='tok1' h='4294967295'`);
    await until(() => srv.received.some((x) => x.includes(`h='1'/>`)));
    expect(c.sm!.h).toBe(1);
    expect(c.jid).toBe("alice@localhost/r");

    const srv2 = await scripted(`<sm xmlns='${NS_SM}'/>`, (sent, write) => {
      if (sent.includes("<resume ")) write(`<failed xmlns='${NS_SM}' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
      if (sent.includes("<enable ")) write(`<failed xmlns='${NS_SM}'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`);
    });
    cleanup.push(srv2.close);
    const d = await BenchClient.open(ep(srv2.port), "alice", "pw");
    cleanup.push(() => d.close());
    const f = await d.resume({ jid: "alice@localhost/r", sm: { id: "gone", h: 0, max: undefined } });
    expect(f.resumed).toBe(false);
    expect(f.answer).toContain("item-not-found");
    expect(d.sm).toBeUndefined();
    await d.bind("r");
    await expect(d.enableSm()).rejects.toThrow(/stream management refused/);
    await expect(d.resume({ jid: "x", sm: { id: undefined, h: 0, max: undefined } })).rejects.toThrow(/without|not enabled/);
  });
});
