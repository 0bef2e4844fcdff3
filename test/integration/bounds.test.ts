/**
 * Issue 10 §7 (core part): what sessions queue through the account session is bounded; beyond a
 * bound the session gets resource-constraint (RFC 6120 §8.3.3.15, type wait) with its own id, and
 * nothing of it reaches the room. The proxy's upstream goes through a relay so the test can take
 * the account session out of the room and keep it out (retarget to a closed port) while it sends,
 * or keep it from connecting at all (blackhole) while the account's joins queue up.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { connectClient, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { upstreamServers } from "../support/servers.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { NS_MUC, createRoom, groupchat, isSelfPresence, join, sleep, uniqueRoom } from "../support/muc.js";
import { xml } from "../support/client.js";

const cert = inject("proxyCert");
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe.each(upstreamServers())("against a real $kind", (server) => {
  let relay: TcpRelay;
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];
  const raws: RawClient[] = [];

  beforeAll(async () => {
    relay = await TcpRelay.start(server.port);
    proxy = await startProxy({
      upstreamPort: relay.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile,
      extraArgs: ["--max-room-outbox", "2", "--max-pending-iqs", "1", "--max-account-outbox", "2"],
    });
  });
  afterAll(async () => {
    for (const r of raws) r.close();
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await relay?.close();
  });

  async function connect(port: number, user: string, resource: string): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 6)}` });
    clients.push(c);
    return c;
  }

  it("room outbox full while the account is out of the room: the third message gets resource-constraint, the two held ones follow the rejoin", async () => {
    const room = uniqueRoom(server.muc, "outbox");
    const bob = await connect(server.port, "bob", "owner");
    await createRoom(bob, room, "bob");
    const beforeJoin = Date.now();
    await sleep(20);
    const phone = await connect(proxy.port, "alice", "phone");
    await join(phone, room, "alice", { history: { maxstanzas: "0" } });
    const accountConns = relay.openedAfter(beforeJoin).filter((c) => !c.closed);
    expect(accountConns.length).toBeGreaterThanOrEqual(2); // the phone's own leg and the account session
    const lostBefore = proxy.logs().filter((l) => l.msg === "account session lost").length;
    relay.retarget(await closedPort()); // the account session cannot come back until we say so
    // cut the account session: the leg opened for the room join (the phone's own leg opened first)
    const acc = accountConns[accountConns.length - 1]!;
    expect(relay.cut(acc)).toBe(1);
    await proxy.waitForLog((l) => l.msg === "account session lost" && proxy.logs().filter((x) => x.msg === "account session lost").length > lostBefore, 5000);
    const m1 = await groupchat(phone, room, "held 1");
    const m2 = await groupchat(phone, room, "held 2");
    const m3 = await groupchat(phone, room, "one too many");
    const err = await phone.waitFor((el) => el.is("message") && el.attrs.type === "error" && el.attrs.id === m3);
    expect(err.getChild("error")?.attrs.type).toBe("wait");
    expect(err.getChild("error")?.getChild("resource-constraint", NS_STANZAS)).toBeDefined();
    expect(err.attrs.from).toBe(room);
    relay.retarget(server.port);
    for (const id of [m1, m2]) await bob.waitFor((el) => el.is("message") && el.attrs.id === id, 20_000);
    const marker = await groupchat(phone, room, "marker");
    await bob.waitFor((el) => el.is("message") && el.attrs.id === marker, 10_000);
    expect(bob.received.some((el) => el.is("message") && el.getChildText("body") === "one too many")).toBe(false);
    expect(proxy.logs().some((l) => l.code === "ROOM_OUTBOX_FULL")).toBe(true);
  }, 40_000);

  it("pending IQs full: the second IQ to an occupant gets resource-constraint with its own id, the first its answer", async () => {
    const room = uniqueRoom(server.muc, "iqs");
    const bob = await connect(server.port, "bob", "owner");
    await createRoom(bob, room, "bob");
    const raw = await RawClient.connect(proxy.port);
    raws.push(raw);
    await raw.login("alice", "alicepass", `raw-${randomUUID().slice(0, 6)}`);
    raw.send(`<presence to='${room}/alice' id='rj'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await raw.waitFor(/status code=["']110["']/);
    // one write: both are in the proxy before any answer can come back
    raw.send(`<iq type='get' to='${room}/bob' id='q1'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' to='${room}/bob' id='q2'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const [q2] = await raw.waitFor(/<iq[^>]*id=["']q2["'][^>]*>.*?<\/iq>/s);
    expect(q2).toMatch(/type=["']error["']/);
    expect(q2).toMatch(/<error[^>]*type=["']wait["']/);
    expect(q2).toContain("resource-constraint");
    const [q1] = await raw.waitFor(/<iq[^>]*id=["']q1["'][^>]*\/?>/);
    expect(q1).toMatch(/type=["']result["']/);
    // the log line travels on the proxy's stdout, which may come after the error reached the client
    await proxy.waitForLog((l) => l.code === "PENDING_IQS_FULL");
  });

  it("the account's queue while its account session connects is full: one more join gets resource-constraint, the queued joins complete once it is online", async () => {
    const rooms = [uniqueRoom(server.muc, "aq1"), uniqueRoom(server.muc, "aq2"), uniqueRoom(server.muc, "aq3")];
    const bob = await connect(server.port, "bob", "owner");
    for (const r of rooms) await createRoom(bob, r, "bob");
    const carol = await connect(proxy.port, "carol", "phone"); // its own leg opens while the relay passes
    relay.mode = "blackhole"; // the account session's connect is accepted and never answered
    const ids = rooms.map(() => randomUUID());
    for (const [i, r] of rooms.entries()) {
      await carol.send(xml("presence", { to: `${r}/carol`, id: ids[i] }, xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" }))));
    }
    const err = await carol.waitFor((el) => el.is("presence") && el.attrs.type === "error" && el.attrs.id === ids[2]);
    expect(err.attrs.from).toBe(`${rooms[2]}/carol`);
    expect(err.getChild("error")?.attrs.type).toBe("wait");
    expect(err.getChild("error")?.getChild("resource-constraint", NS_STANZAS)).toBeDefined();
    expect(err.getChild("x", NS_MUC)).toBeDefined();
    await proxy.waitForLog((l) => l.code === "ACCOUNT_OUTBOX_FULL");
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/minimix_refused_stanzas_total\{kind="ACCOUNT_OUTBOX_FULL"\} 1\b/);
    expect(carol.received.some((el) => rooms.some((r) => isSelfPresence(el, r)))).toBe(false);
    // the server is reachable again: the hung connect fails, the account session retries (backoff) and joins
    relay.mode = "pass";
    expect(relay.cut((c) => c.upstream === undefined)).toBeGreaterThanOrEqual(1); // the account session's hung connect
    for (const r of rooms.slice(0, 2)) await carol.waitFor((el) => isSelfPresence(el, r), 20_000);
    // the refused join never reached its room; tried again now, it is answered
    expect(bob.received.some((el) => el.is("presence") && el.attrs.from === `${rooms[2]}/carol`)).toBe(false);
    const again = await join(carol, rooms[2]!, "carol", { history: { maxstanzas: "0" } });
    expect(isSelfPresence(again, rooms[2]!)).toBe(true);
    await bob.waitFor((el) => el.is("presence") && el.attrs.from === `${rooms[2]}/carol`);
  }, 40_000);
});
