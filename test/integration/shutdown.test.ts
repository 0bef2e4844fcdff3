/**
 * Graceful shutdown with sessions in rooms (issue 5, docs/architecture.md §4.5). On SIGTERM the proxy:
 *  1. stops listening and sends every downstream session <system-shutdown/> (RFC 6120 §4.9.3.17)
 *     and closes its upstream leg;
 *  2. closes each account session's stream WITHOUT sending a leave to each room: the server's own
 *     end-of-session cleanup (RFC 6121 §4.6.3: unavailable presence to every entity that received
 *     directed presence, i.e. every joined room) removes the account's occupants. One stream close
 *     per account instead of one leave per room keeps shutdown bounded however many rooms are held,
 *     and is exactly what a client's disconnect does;
 *  3. waits (bounded) for those closes to reach the server, then exits 0.
 * The room's other occupants therefore see one ordinary unavailable per account occupant.
 */
import { afterAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, type TestClient } from "../support/client.js";
import { startProxy } from "../support/proxy-process.js";
import { RawClient } from "../support/raw-client.js";
import { createRoom, isSelfPresence, join, sleep, uniqueRoom } from "../support/muc.js";
import { establishedTo } from "../support/sockets.js";

const prosody = inject("prosody");
const cert = inject("proxyCert");
const clients: TestClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
});

describe("graceful shutdown (SIGTERM) with sessions in rooms", () => {
  it("every downstream gets system-shutdown; the account occupants leave via the server's cleanup; exit 0", async () => {
    const proxy = await startProxy({ upstreamPort: prosody.port, upstreamCa: prosody.certFile, cert: cert.certFile, key: cert.keyFile });
    const rooms = [uniqueRoom(prosody.muc, "bye"), uniqueRoom(prosody.muc, "bye")];
    const bob = await connectClient({ port: prosody.port, username: "bob", password: "bobpass", resource: `watch-${randomUUID().slice(0, 4)}` });
    clients.push(bob);
    for (const r of rooms) await createRoom(bob, r, "bob");
    const sessions: RawClient[] = [];
    for (const [user, nick] of [["alice", "alice"], ["alice", "alice"], ["carol", "carol"]] as const) {
      const c = await RawClient.connect(proxy.port);
      await c.login(user, `${user}pass`, `bye-${randomUUID().slice(0, 4)}`);
      for (const r of rooms) {
        c.send(`<presence to='${r}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
        await c.waitFor(new RegExp(`from=["']${r}/${nick}["'][^>]*>(?:(?!</presence>)[\\s\\S])*?status code=["']110["']`));
      }
      sessions.push(c);
    }
    const direct = await connectClient({ port: proxy.port, username: "carol", password: "carolpass", resource: "lib" });
    clients.push(direct);
    expect(isSelfPresence(await join(direct, rooms[0]!, "carol", { history: { maxstanzas: "0" } }), rooms[0]!)).toBe(true);
    // 3 raw + 1 library session legs, 2 account sessions (alice, carol)
    expect(establishedTo(proxy.child.pid!, prosody.port)).toBe(6);

    const before = bob.received.length;
    const t0 = Date.now();
    const code = await proxy.stop("SIGTERM");
    const stopMs = Date.now() - t0;
    expect(code).toBe(0);
    for (const c of sessions) {
      await c.waitClosed(5000);
      expect(c.text).toMatch(/<stream:error><system-shutdown xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>/);
      expect(c.text).toContain("</stream:stream>");
    }
    // the room's other occupant sees each account occupant leave once, in each room
    await sleep(500);
    for (const r of rooms) {
      for (const nick of ["alice", "carol"]) {
        const gone = bob.received.slice(before).filter((el) => el.is("presence") && el.attrs.from === `${r}/${nick}` && el.attrs.type === "unavailable");
        expect(gone, `${r}/${nick}`).toHaveLength(1);
      }
    }
    expect(proxy.logs().some((l) => l.msg === "stopped" && l.sessions === 4)).toBe(true);
    console.log(`shutdown: 4 sessions, 2 accounts in 2 rooms; proxy exited in ${stopMs} ms`);
  }, 30_000);
});
