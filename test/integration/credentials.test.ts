/**
 * Issue 10 §6: the account session logs in with the secret kept from the last client login. When
 * that fails (the password was changed on the server), it waits for the next successful client
 * login and retries with its credentials. Private servers (a user of its own whose password the
 * test changes) behind a relay, so the account session's connection can be cut.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { codes, createRoom, groupchat, join, uniqueRoom } from "../support/muc.js";
import { upstreamServers } from "../support/servers.js";
import { TcpRelay } from "../support/tcp-relay.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import { untilValue } from "../support/poll.js";

const cert = inject("proxyCert");
const run = promisify(execFile);

describe.each(upstreamServers().map((s) => s.kind))("password changed on a real %s", (kind) => {
  let up: Upstream;
  let relay: TcpRelay;
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    up = await startUpstream(kind, { users: "dave:oldpass bob:bobpass" });
    relay = await TcpRelay.start(up.port);
    proxy = await startProxy({ upstreamPort: relay.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
    await relay?.close();
    await up?.stop();
  });

  async function connect(port: number, user: string, password: string): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password, resource: `cred-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    return c;
  }

  /** The password change on the server: XEP-0077 §3.3 in-band on Prosody, ejabberdctl on ejabberd (no mod_register there). */
  async function changePassword(user: string, oldPass: string, newPass: string): Promise<void> {
    if (kind === "ejabberd") {
      const script = fileURLToPath(new URL("../support/ejabberd.sh", import.meta.url));
      await run(script, ["ctl", up.dir, "change_password", user, up.domain, newPass]);
      return;
    }
    const c = await connect(proxy.port, user, oldPass);
    await c.xmpp.iqCaller.set(xml("query", { xmlns: "jabber:iq:register" }, xml("username", {}, user), xml("password", {}, newPass)), up.domain);
    await c.stop();
  }

  const online = (): number => proxy.logs().filter((l) => l.msg === "account session online" && l.account === "dave@localhost").length;

  it("the account session's login fails with the old password; the next client login's credentials bring it back", async () => {
    const room = uniqueRoom(up.muc, "cred");
    // every client goes through the proxy: it trusts the private server's certificate (--upstream-ca)
    const bob = await connect(proxy.port, "bob", "bobpass");
    await createRoom(bob, room, "bob");
    const first = await connect(proxy.port, "dave", "oldpass");
    const n = relay.all.length;
    expect(codes(await join(first, room, "dave", { history: { maxstanzas: "0" } }))).toContain("110");
    const accountLeg = relay.all[n]!; // opened for the first join: the account session
    // the log line travels on the proxy's stdout, the self-presence on a socket: either may come first
    await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "dave@localhost");
    expect(online()).toBe(1);

    await changePassword("dave", "oldpass", "newpass");
    relay.cut(accountLeg); // the account session drops and logs in again with the secret it kept
    const failed = await proxy.waitForLog((l) => l.msg === "account session could not connect" && l.account === "dave@localhost");
    expect(failed.code).toBe("UPSTREAM_AUTH");
    expect(online()).toBe(1);
    expect(proxy.stdout()).not.toContain("newpass");
    expect(proxy.stdout()).not.toContain("oldpass");

    // the next client login (new password) refreshes the credentials: the account session is back in the room
    const m = relay.all.length;
    const second = await connect(proxy.port, "dave", "newpass");
    await proxy.waitForLog((l) => l.msg === "account session online" && l.account === "dave@localhost" && online() === 2);
    expect(codes(await join(second, room, "dave", { history: { maxstanzas: "0" } }))).toContain("110");
    const id = await groupchat(bob, room, "after the password change");
    await second.waitFor((el) => el.is("message") && el.attrs.id === id);
    shared = { room, bob, accountLeg: relay.all[m + 1]! }; // after second's own leg: the account session's
  });

  let shared: { room: string; bob: TestClient; accountLeg: TcpRelay["all"][number] } | undefined;

  it("a login with fresher credentials during a failing attempt: retried at once with them", async () => {
    const { room, bob, accountLeg } = shared!;
    expect(accountLeg.closed).toBe(false);
    const k = relay.all.length;
    relay.holdNew = true; // the reconnect attempt hangs before the server's answer
    relay.cut(accountLeg);
    const attempt = await untilValue(() => relay.all[k]);
    relay.holdNew = false;
    await changePassword("dave", "newpass", "newerpass");
    const third = await connect(proxy.port, "dave", "newerpass"); // its secret arrives while the attempt runs
    relay.release(attempt); // the attempt goes on with the old secret and fails
    await proxy.waitForLog((l) => l.msg === "account session could not connect" && l.account === "dave@localhost" && l.code === "UPSTREAM_AUTH"
      && proxy.logs().filter((x) => x.msg === "account session could not connect" && x.account === "dave@localhost").length === 2);
    await proxy.waitForLog(() => online() === 3);
    expect(codes(await join(third, room, "dave", { history: { maxstanzas: "0" } }))).toContain("110");
    const id = await groupchat(bob, room, "after the second change");
    await third.waitFor((el) => el.is("message") && el.attrs.id === id);
  });
});

