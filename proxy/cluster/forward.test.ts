import { afterEach, describe, expect, it } from "vitest";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { generateSelfSigned } from "../../tls/dev-cert.js";
import { createLogger } from "../log.js";
import { authAccount, openLink, parseSecret, type ForwardHeader } from "./forward.js";
import { Forwarder, type ForwardedClient } from "./forwarder.js";
import type { LeaseKeeper } from "./leases.js";

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

describe("authAccount", () => {
  it("PLAIN: the authcid with the stream's domain, lower-case", () => {
    expect(authAccount("PLAIN", b64("\0Alice\0secret"), "Example.org")).toBe("alice@example.org");
    expect(authAccount("PLAIN", b64("alice@example.org\0alice\0secret"), "example.org")).toBe("alice@example.org");
  });
  it("SCRAM: n= of client-first, with or without channel binding, =2C and =3D decoded", () => {
    expect(authAccount("SCRAM-SHA-1", b64("n,,n=alice,r=abc"), "example.org")).toBe("alice@example.org");
    expect(authAccount("SCRAM-SHA-256-PLUS", b64("p=tls-exporter,,n=bob,r=abc"), "example.org")).toBe("bob@example.org");
    expect(authAccount("SCRAM-SHA-1", b64("y,a=x,n=a=2Cb,r=abc"), "example.org")).toBe("a,b@example.org");
  });
  it("cannot tell: undefined (the session is then served where it is)", () => {
    expect(authAccount("PLAIN", b64("nonsense"), "example.org")).toBeUndefined();
    expect(authAccount("SCRAM-SHA-1", b64("garbage"), "example.org")).toBeUndefined();
    expect(authAccount("EXTERNAL", b64("="), "example.org")).toBeUndefined();
    expect(authAccount("PLAIN", b64("\0al ice\0x"), "example.org")).toBeUndefined();
    expect(authAccount("PLAIN", b64("\0alice@evil\0x"), "example.org")).toBeUndefined();
  });
});

describe("parseSecret", () => {
  it("at least 32 bytes, a trailing newline ignored", () => {
    expect(parseSecret(Buffer.from(`${"a".repeat(32)}\n`)).length).toBe(32);
    expect(() => parseSecret(Buffer.from(`${"a".repeat(31)}\n`))).toThrow(/at least 32 bytes/);
  });
});

describe("the forwarding link", () => {
  const secret = Buffer.alloc(32, 7);
  const log = createLogger("silent");
  const servers: tls.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function owner(holds: boolean, ownerSecret = secret): Promise<{ port: number; adopted: ForwardedClient[]; fwd: Forwarder }> {
    const pem = generateSelfSigned(["localhost"]);
    const keeper = { holds: () => holds, nodeId: "owner" } as unknown as LeaseKeeper;
    const fwd = new Forwarder(keeper, ownerSecret, log);
    const adopted: ForwardedClient[] = [];
    const server = tls.createServer({ cert: pem.cert, key: pem.key, minVersion: "TLSv1.3" }, (s) => void fwd.accept(s, "owner", (_sock, c) => adopted.push(c)));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return { port: (server.address() as AddressInfo).port, adopted, fwd };
  }
  const header: ForwardHeader = { v: 1, account: "alice@example.org", domain: "example.org", ip: "192.0.2.7", from: "n2", cb: { "tls-exporter": Buffer.alloc(32, 1).toString("base64") } };

  it("the owner holding the lease accepts: the header's account, address and channel-binding data reach it", async () => {
    const o = await owner(true);
    const link = await openLink({ host: "127.0.0.1", port: o.port }, "owner", header, secret, 3000);
    await new Promise((r) => setTimeout(r, 50));
    link.destroy();
    expect(o.adopted).toHaveLength(1);
    expect(o.adopted[0]).toMatchObject({ account: "alice@example.org", ip: "192.0.2.7", from: "n2" });
    expect(o.adopted[0]!.channelBindings.get("tls-exporter")).toEqual(Buffer.alloc(32, 1));
    expect(o.adopted[0]!.transport).toBeUndefined(); // a forwarding node of an earlier version sends none
    expect(o.fwd.stats.in).toBe(1);
  });

  it("the client's transport reaches the owner (for <see-other-host/> at its SIGTERM); an unknown one is refused", async () => {
    const o = await owner(true);
    const link = await openLink({ host: "127.0.0.1", port: o.port }, "owner", { ...header, transport: "direct-tls" }, secret, 3000);
    await new Promise((r) => setTimeout(r, 50));
    link.destroy();
    expect(o.adopted[0]?.transport).toBe("direct-tls");
    await expect(openLink({ host: "127.0.0.1", port: o.port }, "owner", { ...header, transport: "carrier-pigeon" as "starttls" }, secret, 3000)).rejects.toThrow();
    expect(o.adopted).toHaveLength(1);
    expect(o.fwd.stats.refused).toBe(1);
  });

  it("a WebSocket client is said so in a field of its own (an owner of an earlier version ignores it); a bad value is refused", async () => {
    const o = await owner(true);
    const link = await openLink({ host: "127.0.0.1", port: o.port }, "owner", { ...header, websocket: true }, secret, 3000);
    await new Promise((r) => setTimeout(r, 50));
    link.destroy();
    expect(o.adopted[0]).toMatchObject({ websocket: true, transport: undefined });
    expect(o.adopted[0]!.transport).toBeUndefined();
    await expect(openLink({ host: "127.0.0.1", port: o.port }, "owner", { ...header, websocket: "yes" as unknown as true }, secret, 3000)).rejects.toThrow();
    expect(o.adopted).toHaveLength(1);
    expect(o.fwd.stats.refused).toBe(1);
  });

  it("the owner refuses an account whose lease it does not hold", async () => {
    const o = await owner(false);
    await expect(openLink({ host: "127.0.0.1", port: o.port }, "owner", header, secret, 3000)).rejects.toThrow(/does not hold the account's lease/);
    expect(o.adopted).toHaveLength(0);
    expect(o.fwd.stats.refused).toBe(1);
  });

  it("another secret: the owner refuses the request (bad MAC); a reply from another node id is refused too", async () => {
    const o = await owner(true, Buffer.alloc(32, 9));
    await expect(openLink({ host: "127.0.0.1", port: o.port }, "owner", header, secret, 3000)).rejects.toThrow();
    expect(o.adopted).toHaveLength(0);
    const p = await owner(true);
    await expect(openLink({ host: "127.0.0.1", port: p.port }, "someone-else", header, secret, 3000)).rejects.toThrow(/answered by node owner/);
  });

  it("garbage instead of a header is refused", async () => {
    const o = await owner(true);
    const s = tls.connect({ host: "127.0.0.1", port: o.port, rejectUnauthorized: false });
    await new Promise((r) => s.once("secureConnect", r));
    s.write("hello\n");
    await new Promise((r) => s.once("close", r));
    expect(o.fwd.stats.refused).toBe(1);
  });
});
