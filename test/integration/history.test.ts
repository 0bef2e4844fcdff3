/**
 * Issue 10 §3: history must not depend on which client joined first. The account session asks the
 * room for as much history as --room-history holds; each session gets the slice it asked for
 * (XEP-0045 §7.2.15), in §7.2.3 order (self-presence, history, subject); messages with XEP-0334
 * <no-store/> / <no-permanent-store/> are never replayed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { createRoom, groupchat, join, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const NS_DELAY = "urn:xmpp:delay";

describe.each(upstreamServers())("against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  async function direct(user: string): Promise<TestClient> {
    const c = await connectClient({ port: server.port, username: user, password: `${user}pass`, resource: `d-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }
  async function viaProxy(resource: string): Promise<TestClient> {
    const c = await connectClient({ port: proxy.port, username: "alice", password: "alicepass", resource: `${resource}-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }

  /** A room of bob's with a subject, then h1, a <no-store/> message, h2, a <no-permanent-store/> one, h3. */
  async function roomWithHistory(prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(server.muc, prefix);
    const bob = await direct("bob");
    await createRoom(bob, room, "bob");
    await bob.send(xml("message", { to: room, type: "groupchat" }, xml("subject", {}, "history")));
    await groupchat(bob, room, "h1");
    await bob.send(xml("message", { to: room, type: "groupchat", id: randomUUID() }, xml("body", {}, "secret1"), xml("no-store", { xmlns: "urn:xmpp:hints" })));
    await groupchat(bob, room, "h2");
    await bob.send(xml("message", { to: room, type: "groupchat", id: randomUUID() }, xml("body", {}, "secret2"), xml("no-permanent-store", { xmlns: "urn:xmpp:hints" })));
    await groupchat(bob, room, "h3");
    await bob.waitFor((el) => el.is("message") && el.getChildText("body") === "h3");
    return { room, bob };
  }

  /** What `c` got from `room` after its self-presence, up to and including the subject. */
  async function joinSequence(c: TestClient, room: string, joinId: string): Promise<Element[]> {
    const fromRoom = (el: Element): boolean => String(el.attrs.from ?? "").split("/")[0] === room;
    await c.waitFor((el) => el.is("message") && fromRoom(el) && el.getChild("subject") !== undefined && el.getChild("body") === undefined);
    const self = c.received.findIndex((el) => el.is("presence") && el.attrs.id === joinId);
    const subj = c.received.findIndex((el) => el.is("message") && fromRoom(el) && el.getChild("subject") !== undefined && el.getChild("body") === undefined);
    expect(self).toBeGreaterThanOrEqual(0);
    expect(subj).toBeGreaterThan(self); // §7.2.3: the subject after the self-presence
    return c.received.slice(self + 1, subj + 1).filter(fromRoom);
  }

  const bodies = (els: Element[]): (string | null)[] => els.filter((e) => e.is("message")).map((e) => e.getChildText("body") ?? `subject:${e.getChildText("subject") ?? ""}`);

  it("first join asks maxchars=0: a later maxstanzas=10 join still gets the history (no-store messages left out)", async () => {
    const { room } = await roomWithHistory("hist-later");
    const phone = await viaProxy("conversations");
    await join(phone, room, "alice", { id: "p-join", history: { maxchars: "0" } });
    expect(bodies(await joinSequence(phone, room, "p-join"))).toEqual(["subject:history"]);

    const laptop = await viaProxy("gajim");
    await join(laptop, room, "alice", { id: "l-join", history: { maxstanzas: "10" } });
    const seq = await joinSequence(laptop, room, "l-join");
    expect(bodies(seq)).toEqual(["h1", "h2", "h3", "subject:history"]);
    for (const m of seq.filter((e) => e.getChild("body") !== undefined)) {
      // §7.2.14: history carries a delay from the room
      expect(m.getChild("delay", NS_DELAY)?.attrs.from).toBe(room);
    }
    // maxstanzas=1 from state: only the last one
    const tablet = await viaProxy("dino");
    await join(tablet, room, "alice", { id: "t-join", history: { maxstanzas: "1" } });
    expect(bodies(await joinSequence(tablet, room, "t-join"))).toEqual(["h3", "subject:history"]);
  });

  it("sessions waiting on the first join each get their own slice, in §7.2.3 order", async () => {
    const { room } = await roomWithHistory("hist-wait");
    const phone = await viaProxy("conversations");
    const laptop = await viaProxy("gajim");
    const none = await viaProxy("dino");
    // all three join before the account's join is answered
    const joins = Promise.all([
      join(phone, room, "alice", { id: "p-join", history: { maxchars: "0" } }),
      join(laptop, room, "alice", { id: "l-join", history: { maxstanzas: "2" } }),
      join(none, room, "alice", { id: "n-join" }),
    ]);
    await joins;
    expect(bodies(await joinSequence(phone, room, "p-join"))).toEqual(["subject:history"]);
    expect(bodies(await joinSequence(laptop, room, "l-join"))).toEqual(["h2", "h3", "subject:history"]);
    // no <history/>: the proxy's default (20), i.e. everything the room replays
    expect(bodies(await joinSequence(none, room, "n-join"))).toEqual(["h1", "h2", "h3", "subject:history"]);
  });

  it("a live message after the join reaches every session once, after its history", async () => {
    const { room, bob } = await roomWithHistory("hist-live");
    const phone = await viaProxy("conversations");
    await join(phone, room, "alice", { id: "p-join", history: { maxchars: "0" } });
    await joinSequence(phone, room, "p-join");
    const id = await groupchat(bob, room, "live");
    await phone.waitFor((el) => el.is("message") && el.attrs.id === id);
    const marker = await groupchat(bob, room, "marker");
    await phone.waitFor((el) => el.is("message") && el.attrs.id === marker);
    expect(phone.received.filter((el) => el.is("message") && el.getChildText("body") === "live")).toHaveLength(1);
    expect(phone.received.filter((el) => el.is("message") && ["h1", "h2", "h3"].includes(el.getChildText("body") ?? ""))).toHaveLength(0);
  });
});
