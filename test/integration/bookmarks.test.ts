/**
 * Issue 14: the account follows the user's bookmarks (docs/architecture.md §4.6). Each server kind
 * runs privately here (users dora and bob), since an autojoin bookmark of a shared test user would
 * pull every other suite's proxy into that room. Dora's clients go through the proxy; bob is
 * straight on the server and watches the rooms: what the room sees of dora's account is what he sees.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import http from "node:http";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { codes, createRoom, groupchat, groupchatsWithBody, join, occupantsSeen, sleep, uniqueRoom } from "../support/muc.js";
import { upstreamServers } from "../support/servers.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { until } from "../support/poll.js";
import { NS_BM, NS_PUBSUB, publishBookmark, retractBookmark } from "../support/bookmarks.js";
import type { Status } from "../../proxy/status.js";

const cert = inject("proxyCert");

function getStatus(port: number): Promise<Status> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/status" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(JSON.parse(body) as Status));
    }).on("error", reject);
  });
}

/** A XEP-0048-only client: reads the private-XML list, adds a room, stores the whole list back. */
async function addLegacyBookmark(c: TestClient, room: string, nick: string): Promise<void> {
  const got = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:private" }, xml("storage", { xmlns: "storage:bookmarks" })));
  const storage = got.getChild("storage", "storage:bookmarks");
  const kept = (storage?.getChildren("conference") ?? []).filter((e) => e.attrs.jid !== room);
  const conf = xml("conference", { jid: room, autojoin: "true", name: "legacy" }, xml("nick", {}, nick));
  await c.xmpp.iqCaller.set(xml("query", { xmlns: "jabber:iq:private" }, xml("storage", { xmlns: "storage:bookmarks" }, ...kept, conf)));
}

/**
 * XEP-0115 caps with `urn:xmpp:bookmarks:1+notify` (XEP-0163 §4, XEP-0402 §3.4): the client answers the
 * server's disco#info and sends available presence, so the server sends it PEP notifications.
 */
async function wantNotifications(c: TestClient): Promise<void> {
  const NS_DISCO = "http://jabber.org/protocol/disco#info";
  const NODE = "https://minimix.test/caps";
  const features = [NS_DISCO, "http://jabber.org/protocol/caps", `${NS_BM}+notify`].sort();
  const ver = createHash("sha1").update(`client/pc//t<${features.map((f) => `${f}<`).join("")}`).digest("base64");
  (c.xmpp as unknown as { iqCallee: { get(ns: string, name: string, h: () => Element): void } }).iqCallee.get(NS_DISCO, "query", () =>
    xml("query", { xmlns: NS_DISCO, node: `${NODE}#${ver}` }, xml("identity", { category: "client", type: "pc", name: "t" }), ...features.map((f) => xml("feature", { var: f }))));
  await c.send(xml("presence", {}, xml("c", { xmlns: "http://jabber.org/protocol/caps", hash: "sha-1", node: NODE, ver })));
}

const unavailableFrom = (room: string, nick: string) => (el: Element) =>
  el.is("presence") && el.attrs.type === "unavailable" && el.attrs.from === `${room}/${nick}`;

describe.each(upstreamServers())("the account follows its bookmarks ($kind)", (shared) => {
  let up: Upstream;
  let dir: string;
  let stateDir: string;
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(joinPath(tmpdir(), `minimix-bookmarks-${shared.kind}-`));
    stateDir = mkdtempSync(joinPath(tmpdir(), `minimix-bookmarks-state-${shared.kind}-`));
    // the shared instance's certificate (covers localhost, its MUC and 127.0.0.1): test clients already trust it
    cpSync(joinPath(shared.dir, "certs"), joinPath(dir, "certs"), { recursive: true });
    up = await startUpstream(shared.kind, { dir, users: "dora:dorapass bob:bobpass" });
    proxy = await start();
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await up?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  function start(): Promise<ProxyProcess> {
    return startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--state-dir", stateDir] });
  }

  async function connect(port: number, user: "dora" | "bob", resource: string): Promise<TestClient> {
    // a server just started may refuse the first logins for a moment (ejabberd): a client tries again, bounded
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await connectClient({ port, username: user, password: `${user}pass`, resource });
        clients.push(c);
        return c;
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(500);
      }
    }
  }
  const bobDirect = (resource: string) => connect(up.port, "bob", resource);
  const doraDirect = (resource: string) => connect(up.port, "dora", resource);
  const dora = (resource: string) => connect(proxy.port, "dora", resource);

  const publish = (c: TestClient, room: string, autojoin: boolean, nick?: string) => publishBookmark(c, room, autojoin, nick, shared.kind);

  /** A room bob creates and stays in (he watches who comes and goes). */
  async function bobsRoom(prefix: string): Promise<{ room: string; bob: TestClient }> {
    const room = uniqueRoom(up.muc, prefix);
    const bob = await bobDirect(prefix);
    for (let attempt = 1; ; attempt++) {
      try {
        await createRoom(bob, room, "bob");
        break;
      } catch (e) {
        if (attempt >= 3) throw e; // ejabberd may load its MUC a moment after c2s
        await sleep(500);
      }
    }
    return { room, bob };
  }

  /** dora's occupants as bob sees them (the account is one occupant, whatever the number of sessions). */
  const doraNicks = (bob: TestClient, room: string) => [...occupantsSeen(bob, room).keys()].filter((n) => n !== "bob");

  it("joins the autojoin bookmarks at login and stays with no client; a client joining later is answered from state", async () => {
    const { room, bob } = await bobsRoom("autojoin");
    const { room: notAuto } = await bobsRoom("manual");
    const setter = await doraDirect("setter"); // another device, straight on the server
    await publish(setter, room, true, "dee");
    await publish(setter, notAuto, false);

    const phone = await dora("phone");
    await until("the account joined the autojoin room", () => occupantsSeen(bob, room).has("dee"), 20_000);
    // What the account session can learn by itself: with no presence (no +notify caps, XEP-0163 §4)
    // neither server sends it PEP notifications of its own account's publishes.
    const { room: other } = await bobsRoom("notify");
    const logMark = proxy.logs().length;
    await publish(setter, other, true, "dee");
    await sleep(1500);
    expect(proxy.logs().slice(logMark).filter((l) => l.msg === "account session ignored a stanza" && l.kind === "message")).toEqual([]);
    expect(occupantsSeen(bob, other).has("dee")).toBe(false); // learnt at the next login
    await retractBookmark(setter, other);
    await phone.stop();
    await groupchat(bob, room, "posted while no client was connected");
    await bob.waitFor((el) => el.getChildText("body") === "posted while no client was connected");
    await sleep(1000);
    // still there, one occupant for the account; the room without autojoin was never joined
    expect(doraNicks(bob, room)).toEqual(["dee"]);
    expect(bob.received.some(unavailableFrom(room, "dee"))).toBe(false);
    const st = await getStatus(proxy.metricsPort!);
    const acct = st.accounts.find((a) => a.jid === `dora@${up.domain}`)!;
    expect(acct.rooms.map((r) => [r.room, r.source, r.sessions.length])).toEqual([[room, "bookmark", 0]]);

    const laptop = await dora("laptop");
    const self = await join(laptop, room, "dee", { history: { maxstanzas: "20" } });
    expect(codes(self)).toContain("110");
    await laptop.waitFor((el) => el.getChildText("body") === "posted while no client was connected");
    expect(groupchatsWithBody(laptop, room, "posted while no client was connected")).toHaveLength(1);
    expect(doraNicks(bob, room)).toEqual(["dee"]);
    const proxyLog = proxy.logs().find((l) => l.msg === "bookmarks fetched");
    expect(proxyLog).toMatchObject({ autojoin: 1, compat: shared.kind === "prosody" });
    // the first login asked all three; the laptop's, with #compat known from the first disco#info result,
    // only what still matters (Prosody has compat: the XEP-0402 items; ejabberd 23.01 has not: the items and
    // the XEP-0048 list). A disco#info answered with an error teaches nothing: then all three again.
    const sent = proxy.logs().filter((l) => l.msg === "bookmark fetch sent").map((l) => l.asked);
    expect(sent[0]).toEqual(["disco", "items", "legacy"]);
    const learnt = proxyLog!.compatAnswered;
    expect(sent.at(-1), `first fetch: ${JSON.stringify(proxyLog)}`).toEqual(learnt === undefined ? ["disco", "items", "legacy"] : learnt ? ["items"] : ["items", "legacy"]);
    if (learnt !== undefined) expect(learnt).toBe(shared.kind === "prosody");
    await retractBookmark(laptop, room); // clean up for the later tests
    await until("left", () => bob.received.some(unavailableFrom(room, "dee")));
  });

  it("autojoin switched off on one device: every session gets its own leave and the account leaves", async () => {
    const { room, bob } = await bobsRoom("toggle");
    const phone = await dora("toggle-phone");
    const laptop = await dora("toggle-laptop");
    await publish(phone, room, true, "dora");
    await until("the account joined", () => occupantsSeen(bob, room).has("dora"));
    // the phone was not forced into the room it bookmarked (clients decide, as with a direct server)
    expect(phone.received.some((el) => el.is("presence") && String(el.attrs.from).startsWith(`${room}/`))).toBe(false);
    for (const c of [phone, laptop]) expect(codes(await join(c, room, "dora"))).toContain("110");

    await publish(laptop, room, false, "dora");
    for (const c of [phone, laptop]) {
      const leave = await c.waitFor(unavailableFrom(room, "dora"));
      expect(codes(leave)).toContain("110");
    }
    await bob.waitFor(unavailableFrom(room, "dora"));
    await sleep(500);
    expect(doraNicks(bob, room)).toEqual([]);
  });

  it("a retraction leaves; adding a bookmark joins without forcing connected sessions in", async () => {
    const { room, bob } = await bobsRoom("added");
    const phone = await dora("added-phone");
    const seenBefore = phone.received.length;
    await publish(phone, room, true);
    // no nick in the bookmark: the account's default nick (its local part)
    await until("the account joined", () => occupantsSeen(bob, room).has("dora"));
    await sleep(500);
    expect(phone.received.slice(seenBefore).some((el) => el.is("presence") && String(el.attrs.from).startsWith(`${room}/`))).toBe(false);
    expect(codes(await join(phone, room, "dora"))).toContain("110");
    await retractBookmark(phone, room);
    expect(codes(await phone.waitFor(unavailableFrom(room, "dora")))).toContain("110");
    await bob.waitFor(unavailableFrom(room, "dora"));
  });

  it("a change made on a device not behind the proxy reaches the account through a connected client's PEP notifications", async () => {
    const { room, bob } = await bobsRoom("notified");
    const phone = await dora("notified-phone");
    await wantNotifications(phone);
    await sleep(500); // the server's disco#info of the caps
    const setter = await doraDirect("notified-setter");
    await publish(setter, room, true, "dora");
    await phone.waitFor((el) => el.is("message") && el.getChild("event", `${NS_PUBSUB}#event`) !== undefined);
    await until("the account joined, with no new login", () => occupantsSeen(bob, room).has("dora"));
    await retractBookmark(setter, room);
    if (shared.kind === "prosody") {
      await bob.waitFor(unavailableFrom(room, "dora"));
    } else {
      // ejabberd 23.01 sends no retraction notification (its PEP nodes do not notify retracts, whatever
      // the retract's notify='true'): the account learns it at the next client login's fetch
      await sleep(1500);
      expect(phone.received.filter((el) => el.getChild("event", `${NS_PUBSUB}#event`)?.getChild("items")?.getChild("retract"))).toEqual([]);
      expect(occupantsSeen(bob, room).has("dora")).toBe(true);
      await dora("notified-next-login");
      await bob.waitFor(unavailableFrom(room, "dora"));
    }
    for (const c of [phone, setter]) await c.stop();
  });

  it("a XEP-0048-only client's bookmark is followed", async () => {
    const { room, bob } = await bobsRoom("legacy");
    const old = await dora("legacy-client");
    await addLegacyBookmark(old, room, "oldnick");
    await until("the account joined", () => occupantsSeen(bob, room).has("oldnick"));
    // and at the next login it is still there (with compat the server made it a XEP-0402 item)
    const other = await dora("legacy-other");
    expect(codes(await join(other, room, "oldnick", { history: { maxstanzas: "0" } }))).toContain("110");
    expect(doraNicks(bob, room)).toEqual(["oldnick"]);
    await old.xmpp.iqCaller.set(xml("query", { xmlns: "jabber:iq:private" }, xml("storage", { xmlns: "storage:bookmarks" })));
    await bob.waitFor(unavailableFrom(room, "oldnick"));
    for (const c of [old, other]) await c.stop();
  });

  it("--bookmarks ignore: only client joins count", async () => {
    const { room, bob } = await bobsRoom("ignored");
    const setter = await doraDirect("ignored-setter");
    await publish(setter, room, true, "dora");
    const other = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--bookmarks", "ignore"] });
    try {
      const phone = await connect(other.port, "dora", "ignored-phone");
      await sleep(1500);
      expect(occupantsSeen(bob, room).has("dora")).toBe(false);
      expect(other.logs().filter((l) => l.msg === "bookmarks fetched")).toEqual([]);
      await phone.stop();
    } finally {
      await other.stop();
      await retractBookmark(setter, room);
    }
  });

  it("after a proxy restart the account is back in its rooms at the next login, with nothing missed", async () => {
    const { room, bob } = await bobsRoom("restart");
    const setter = await doraDirect("restart-setter");
    await publish(setter, room, true, "dora");
    let phone = await dora("restart-phone");
    await until("the account joined", () => occupantsSeen(bob, room).has("dora"));
    await groupchat(bob, room, "long before the restart");
    await bob.waitFor((el) => el.getChildText("body") === "long before the restart");
    await sleep(6500); // more than the 5 s margin the rejoin's <history since> leaves
    await groupchat(bob, room, "before the restart");
    await bob.waitFor((el) => el.getChildText("body") === "before the restart");
    const lastSeenAbout = Date.now();
    await sleep(300);
    await phone.stop();
    await proxy.stop(); // SIGTERM: the marks are written, the account session ends
    const marksDir = joinPath(stateDir, "room-marks");
    const [file] = readdirSync(marksDir);
    const marks = JSON.parse(readFileSync(joinPath(marksDir, file!), "utf8")) as { account: string; rooms: Record<string, number> };
    expect(marks.account).toBe(`dora@${up.domain}`);
    expect(marks.rooms[room]).toBeGreaterThan(lastSeenAbout - 2000);
    await bob.waitFor(unavailableFrom(room, "dora"));
    await groupchat(bob, room, "while the proxy was down");
    await bob.waitFor((el) => el.getChildText("body") === "while the proxy was down");

    proxy = await start();
    await sleep(1000);
    expect(occupantsSeen(bob, room).has("dora")).toBe(false); // nothing logs in by itself
    phone = await dora("restart-phone");
    await until("the account is back", () => occupantsSeen(bob, room).has("dora"), 20_000);
    // the rejoin asked <history since> the last message seen before the restart
    const rejoin = proxy.logs().find((l) => l.msg === "bookmarks fetched");
    expect(rejoin).toMatchObject({ autojoin: 1 });
    const self = await join(phone, room, "dora", { history: { maxstanzas: "50" } });
    expect(codes(self)).toContain("110");
    await phone.waitFor((el) => el.getChildText("body") === "while the proxy was down");
    expect(groupchatsWithBody(phone, room, "while the proxy was down")).toHaveLength(1);
    expect(groupchatsWithBody(phone, room, "before the restart")).toHaveLength(1);
    // the account asked only since its mark: what it saw long before is not in its buffer any more
    expect(groupchatsWithBody(phone, room, "long before the restart")).toHaveLength(0);
  });
});
