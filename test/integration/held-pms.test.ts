/**
 * Issue 10 §4: a PM to the account's occupant while every session of the account is away. The
 * server accepts it (the account is still an occupant); the proxy holds it (bounded per account)
 * and delivers it once, with an XEP-0203 delay, to the session back in the room — or the sender
 * gets an error: resource-constraint when the bound is hit, not-acceptable when the account leaves
 * the room first (recipient-unavailable would get the account kicked: see core/muc/held-pms.ts).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { createRoom, groupchat, join, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  let tight: ProxyProcess; // --max-held-pms 1
  let idle: ProxyProcess; // --room-idle-leave 1
  const clients: TestClient[] = [];

  beforeAll(async () => {
    const base = { upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile };
    [proxy, tight, idle] = await Promise.all([
      startProxy(base),
      startProxy({ ...base, extraArgs: ["--max-held-pms", "1"] }),
      startProxy({ ...base, extraArgs: ["--room-idle-leave", "1"] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await Promise.all([proxy?.stop(), tight?.stop(), idle?.stop()]);
  });

  async function direct(user: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `d-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }
  async function alice(p: ProxyProcess, resource: string): Promise<TestClient> {
    const c = await connectClient({ port: p.port, username: "alice", password: "alicepass", resource: `${resource}-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }

  /** bob's room; alice joins through `p` and her only session goes away (no leave): the account stays. */
  async function aliceAway(p: ProxyProcess, prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await direct("bob");
    await createRoom(bob, room, "bob");
    const phone = await alice(p, "phone");
    await join(phone, room, "alice", { history: { maxstanzas: "0" } });
    await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice`);
    await phone.stop();
    // the account stays (away presence, docs/architecture.md §6.6): wait for it so the session is surely gone
    await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.getChildText("show") === "xa");
    return { room, bob };
  }

  async function pm(bob: TestClient, room: string, body: string): Promise<string> {
    const id = randomUUID();
    await bob.send(xml("message", { to: `${room}/alice`, type: "chat", id }, xml("body", {}, body), xml("x", { xmlns: "http://jabber.org/protocol/muc#user" })));
    return id;
  }

  /**
   * XEP-0199 ping to room/alice, answered by the account session itself: once bob has the result,
   * everything bob sent to room/alice before it reached the account session (same path, in order).
   */
  async function reachedAccount(bob: TestClient, room: string): Promise<void> {
    const pong = await bob.xmpp.iqCaller.request(xml("iq", { type: "get", to: `${room}/alice` }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    expect(pong.attrs.type).toBe("result");
  }

  const errorFor = (c: TestClient, id: string): Element | undefined => c.received.find((el) => el.is("message") && el.attrs.type === "error" && el.attrs.id === id);
  const condition = (el: Element | undefined): string | undefined => el?.getChild("error")?.children.filter((c): c is Element => typeof c !== "string").find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text")?.name;

  it("held while every session is away, delivered once with a delay to the session back; no error to the sender", async () => {
    const { room, bob } = await aliceAway(proxy, "pm-held");
    const id1 = await pm(bob, room, "while you were away 1");
    const id2 = await pm(bob, room, "while you were away 2");
    await reachedAccount(bob, room); // held, not delivered live to a session joining meanwhile
    const laptop = await alice(proxy, "laptop");
    await join(laptop, room, "alice", { history: { maxstanzas: "0" } });
    const got = await laptop.waitFor((el) => el.is("message") && el.attrs.id === id2);
    const first = laptop.received.find((el) => el.is("message") && el.attrs.id === id1);
    expect(laptop.received.indexOf(first!)).toBeLessThan(laptop.received.indexOf(got));
    expect(got.attrs.from).toBe(`${room}/bob`);
    expect(got.getChild("delay", "urn:xmpp:delay")?.attrs.from).toBe(server.domain);
    // a second session joining gets none of them; the next PM goes live; bob never got an error
    const tablet = await alice(proxy, "tablet");
    await join(tablet, room, "alice", { history: { maxstanzas: "0" } });
    const live = await pm(bob, room, "live");
    await tablet.waitFor((el) => el.is("message") && el.attrs.id === live);
    await laptop.waitFor((el) => el.is("message") && el.attrs.id === live);
    expect(tablet.received.some((el) => el.attrs.id === id1 || el.attrs.id === id2)).toBe(false);
    expect(laptop.received.filter((el) => el.attrs.id === id1)).toHaveLength(1);
    const marker = await groupchat(laptop, room, "marker");
    await bob.waitFor((el) => el.is("message") && el.attrs.id === marker);
    expect(bob.received.filter((el) => el.is("message") && el.attrs.type === "error")).toEqual([]);
  });

  it("bound hit: the sender gets resource-constraint, the account is not kicked; the held one still arrives", async () => {
    const { room, bob } = await aliceAway(tight, "pm-full");
    const id1 = await pm(bob, room, "kept");
    const id2 = await pm(bob, room, "one too many");
    await reachedAccount(bob, room);
    const err = await bob.waitFor((el) => el.is("message") && el.attrs.type === "error" && el.attrs.id === id2);
    expect(err.attrs.from).toBe(`${room}/alice`);
    expect(err.getChild("error")?.attrs.type).toBe("wait");
    expect(condition(err)).toBe("resource-constraint");
    expect(errorFor(bob, id1)).toBeUndefined();
    // alice is still an occupant: a session coming back gets the held PM
    const laptop = await alice(tight, "laptop");
    await join(laptop, room, "alice", { history: { maxstanzas: "0" } });
    await laptop.waitFor((el) => el.is("message") && el.attrs.id === id1);
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable")).toBe(false);
  });

  it("the account leaves the room first (idle leave): the sender gets not-acceptable before alice's unavailable", async () => {
    const { room, bob } = await aliceAway(idle, "pm-left");
    const id = await pm(bob, room, "never read");
    const gone = await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable", 15_000);
    const err = errorFor(bob, id);
    expect(err).toBeDefined();
    expect(condition(err)).toBe("not-acceptable");
    expect(bob.received.indexOf(err!)).toBeLessThan(bob.received.indexOf(gone));
    // a plain leave, not a kick (307) for sending an error
    expect(gone.toString()).not.toContain("307");
  });
});
