/**
 * Issue 12: SCRAM and SCRAM-PLUS on the client leg (docs/architecture.md §3.5), against real Prosody
 * and ejabberd. Clients are written with Node's tls and the project's ScramClient (test/support/
 * scram-login.ts: no client library does -PLUS with a chosen channel-binding type), and @xmpp/client
 * where it can (SCRAM-SHA-1, PLAIN).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { execFile } from "node:child_process";
import { request } from "node:http";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { codes, createRoom, join as joinRoom, uniqueRoom } from "../support/muc.js";
import { scramLogin, type ScramLoginOptions } from "../support/scram-login.js";
import { RawClient } from "../support/raw-client.js";
import { upstreamServers } from "../support/servers.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import type { Status } from "../../proxy/status.js";
import type { ScramHash } from "../../core/sasl/scram-primitives.js";
import { NO_RECORD_PLUS_TEXT, STALE_RECORD_TEXT } from "../../proxy/downstream/scram-login.js";

const cert = inject("proxyCert");
const run = promisify(execFile);
const ALL = "SCRAM-SHA-512-PLUS,SCRAM-SHA-256-PLUS,SCRAM-SHA-1-PLUS,SCRAM-SHA-512,SCRAM-SHA-256,SCRAM-SHA-1,PLAIN";

function status(port: number): Promise<Status> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/status" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(JSON.parse(body) as Status));
    }).on("error", reject).end();
  });
}

describe.each(upstreamServers().map((s) => s.kind))("SCRAM on the client leg, real %s", (kind) => {
  let up: Upstream;
  let stateDir: string;
  /** --client-sasl auto (the default) */
  let auto: ProxyProcess;
  /** every mechanism, same store */
  let all: ProxyProcess;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    up = await startUpstream(kind, { users: "alice:alicepass bob:bobpass carol:carolpass dave:oldpass erin:erinpass" });
    stateDir = mkdtempSync(join(tmpdir(), "minimix-scram-state-"));
    const common = { upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile };
    // no linger: an account session left from a PLAIN login closes with it, so the next login's own shows (§4.1)
    auto = await startProxy({ ...common, extraArgs: ["--state-dir", stateDir, "--account-session-linger", "0"] });
    all = await startProxy({ ...common, extraArgs: ["--state-dir", stateDir, "--client-sasl", ALL] });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await auto?.stop();
    await all?.stop();
    await up?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const login = (p: ProxyProcess, o: Omit<ScramLoginOptions, "port" | "ca">): ReturnType<typeof scramLogin> =>
    scramLogin({ port: p.port, ...o });

  /** A PLAIN login through `p`; with `fresh`, waits until it made or replaced the account's records. */
  async function plainLogin(p: ProxyProcess, user: string, pass: string, fresh = false): Promise<void> {
    const made = (): number => p.logs().filter((l) => /SCRAM records (created|replaced)/.test(l.msg) && l.account === `${user}@localhost`).length;
    const before = made();
    const c = await connectClient({ port: p.port, username: user, password: pass, resource: `plain-${randomUUID().slice(0, 4)}` });
    await c.stop();
    if (fresh || before === 0) await expect.poll(made, { timeout: 15_000 }).toBeGreaterThan(before);
  }

  it("offers the server's SCRAM hash with and without -PLUS, and PLAIN; the XEP-0440 list names tls-exporter and tls-server-end-point", async () => {
    const r = await login(auto, { username: "alice", secret: { password: "alicepass" }, hash: "SHA-1", plus: "tls-exporter" });
    // both servers hash with SHA-1 here (Prosody internal_hashed, ejabberd's SCRAM storage)
    expect(r.offered).toEqual(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"]);
    expect(r.channelBindingTypes).toEqual(["tls-exporter", "tls-server-end-point"]);
    const everything = await login(all, { username: "alice", secret: { password: "alicepass" }, hash: "SHA-1" });
    expect(everything.offered).toEqual(ALL.split(","));
  });

  it("an account without records: -PLUS fails with a text that says what to do; plain SCRAM is relayed and its MUC passes through", async () => {
    const plus = await login(auto, { username: "bob", secret: { password: "bobpass" }, hash: "SHA-1", plus: "tls-exporter" });
    expect(plus).toMatchObject({ outcome: "failure", condition: "not-authorized", text: NO_RECORD_PLUS_TEXT });

    const relayed = await login(auto, { username: "bob", secret: { password: "bobpass" }, hash: "SHA-1", bind: "relayed" });
    try {
      expect(relayed.outcome).toBe("success"); // the server's own v= verified by the client
      expect(relayed.session!.jid).toBe("bob@localhost/relayed");
      const st = await status(auto.metricsPort!);
      const bob = st.accounts.find((a) => a.jid === "bob@localhost")!;
      expect(bob.sessions).toContainEqual(expect.objectContaining({ jid: "bob@localhost/relayed", mucPassThrough: true }));
      expect(bob.accountSession.state).toBe("down");
    } finally {
      relayed.session?.close();
    }
    // a wrong password is the server's verdict, passed on
    const wrong = await login(auto, { username: "bob", secret: { password: "nope" }, hash: "SHA-1" });
    expect(wrong).toMatchObject({ outcome: "failure", condition: "not-authorized" });
  });

  it.each<[ScramHash, string | undefined]>([
    ["SHA-1", undefined], ["SHA-256", undefined], ["SHA-512", undefined],
    ["SHA-1", "tls-exporter"], ["SHA-256", "tls-server-end-point"], ["SHA-512", "tls-exporter"], ["SHA-1", "tls-server-end-point"],
    // on TLS 1.3, unadvertised, as clients that ignore XEP-0440 bind (slixmpp; ejabberd accepts it too)
    ["SHA-1", "tls-unique"],
  ])("after a PLAIN login: SCRAM-%s (channel binding %s) is verified by the proxy and logs in upstream with the revealed ClientKey", async (hash, plus) => {
    await plainLogin(all, "carol", "carolpass");
    const resource = `v-${hash}-${plus ?? "n"}`;
    const r = await login(all, { username: "carol", secret: { password: "carolpass" }, hash, plus, bind: resource });
    try {
      expect(r.outcome).toBe("success"); // the proxy's v= verified: it holds the right ServerKey
      expect(r.session!.jid).toBe(`carol@localhost/${resource}`);
      const st = await status(all.metricsPort!);
      const s = st.accounts.find((a) => a.jid === "carol@localhost")?.sessions.find((x) => x.jid === r.session!.jid);
      expect(s).toBeDefined();
      expect(s!.mucPassThrough).toBeUndefined();
    } finally {
      r.session?.close();
    }
    const wrong = await login(all, { username: "carol", secret: { password: "carolpas" }, hash, plus });
    expect(wrong).toMatchObject({ outcome: "failure", condition: "not-authorized" });
  });

  it("a SCRAM-SHA-1 client library (@xmpp/client) after a PLAIN login: the account session logs in with the ClientKey and serves its room joins", async () => {
    const closed = (): number => auto.logs().filter((l) => /^account session closed/.test(l.msg) && l.account === "erin@localhost").length;
    const closedBefore = closed();
    await plainLogin(auto, "erin", "erinpass");
    // the account session that login started (with the SaltedPassword) is gone with it
    await expect.poll(closed, { timeout: 15_000 }).toBeGreaterThan(closedBefore);
    const owner = await connectClient({ port: auto.port, username: "alice", password: "alicepass", resource: "owner" });
    clients.push(owner);
    const room = uniqueRoom(up.muc, "scram");
    await createRoom(owner, room, "alice");
    const before = auto.logs().filter((l) => l.msg === "account session online" && l.account === "erin@localhost").length;
    const erin = await connectClient({ port: auto.port, username: "erin", password: "erinpass", resource: "lib", sasl: "offered" });
    clients.push(erin);
    const line = await auto.waitForLog((l) => l.msg === "authenticated" && l.user === "erin@localhost" && l.mechanism === "SCRAM-SHA-1");
    expect(line.upstreamMechanism).toBe("SCRAM-SHA-1");
    expect(codes(await joinRoom(erin, room, "erin"))).toContain("110");
    await expect.poll(() => auto.logs().filter((l) => l.msg === "account session online" && l.account === "erin@localhost").length, { timeout: 15_000 }).toBeGreaterThan(before);
    const st = await status(auto.metricsPort!);
    const acct = st.accounts.find((a) => a.jid === "erin@localhost")!;
    expect(acct.accountSession.state).toBe("up");
    expect(acct.rooms.find((r) => r.room === room)?.sessions).toContain("erin@localhost/lib");
    // no password, key or SASL payload in any log line at any level (--log-level trace)
    expect(auto.stdout()).not.toContain("erinpass");
    expect(auto.stdout()).not.toMatch(/"(saltedPassword|clientKey|serverKey|storedKey|salt)"/);
  });

  it("password changed on the server: the old record's login ends with not-authorized and a text, the record is dropped, the next PLAIN login replaces it", async () => {
    await plainLogin(all, "dave", "oldpass");
    expect((await login(all, { username: "dave", secret: { password: "oldpass" }, hash: "SHA-256" })).outcome).toBe("success");
    if (kind === "ejabberd") {
      await run(fileURLToPath(new URL("../support/ejabberd.sh", import.meta.url)), ["ctl", up.dir, "change_password", "dave", up.domain, "newpass"]);
    } else {
      // XEP-0077 §3.3 in-band, through the proxy (it trusts the private server's certificate)
      const c = await connectClient({ port: auto.port, username: "dave", password: "oldpass", resource: "chg" });
      await c.xmpp.iqCaller.set(xml("query", { xmlns: "jabber:iq:register" }, xml("username", {}, "dave"), xml("password", {}, "newpass")), up.domain);
      await c.stop();
    }
    // the old password still matches the proxy's record (so the proxy says success), but the server
    // refuses what it logs in with: the stream ends with not-authorized and the reason
    const stale = await login(all, { username: "dave", secret: { password: "oldpass" }, hash: "SHA-256", bind: "stale" });
    expect(stale).toMatchObject({ outcome: "success", streamError: { condition: "not-authorized", text: STALE_RECORD_TEXT } });
    await all.waitForLog((l) => l.msg === "SCRAM records dropped" && l.account === "dave@localhost");
    // no record now: the new password over plain SCRAM-SHA-1 is relayed to the server
    expect((await login(all, { username: "dave", secret: { password: "newpass" }, hash: "SHA-1" })).outcome).toBe("success");
    await plainLogin(all, "dave", "newpass", true);
    for (const hash of ["SHA-1", "SHA-256", "SHA-512"] as const) {
      expect((await login(all, { username: "dave", secret: { password: "newpass" }, hash, plus: "tls-exporter" })).outcome).toBe("success");
      expect((await login(all, { username: "dave", secret: { password: "oldpass" }, hash, plus: "tls-exporter" })).condition).toBe("not-authorized");
    }
  });

  it("records are files of mode 0600 in a 0700 directory, and a restarted proxy verifies with them", async () => {
    await plainLogin(all, "carol", "carolpass");
    const dir = join(stateDir, "credentials");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    await all.stop();
    all = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--state-dir", stateDir, "--client-sasl", ALL] });
    const r = await login(all, { username: "carol", secret: { password: "carolpass" }, hash: "SHA-512", plus: "tls-exporter" });
    expect(r.outcome).toBe("success");
    expect(all.logs().some((l) => /relaying/.test(l.msg))).toBe(false);
  });

  it("SASL failures as a server gives them: mechanism-too-weak, invalid-mechanism", async () => {
    const p = await startProxy({ upstreamPort: up.port, upstreamCa: up.certFile, cert: cert.certFile, key: cert.keyFile, extraArgs: ["--state-dir", stateDir, "--client-sasl", "SCRAM-SHA-256"] });
    try {
      // SCRAM-SHA-1 is known but weaker than everything offered: mechanism-too-weak (RFC 6120 §6.5.9)
      const weak = await scramLogin({ port: p.port, username: "carol", secret: { password: "carolpass" }, hash: "SHA-1" });
      expect(weak).toMatchObject({ outcome: "failure", condition: "mechanism-too-weak" });
      const plus = await scramLogin({ port: p.port, username: "carol", secret: { password: "carolpass" }, hash: "SHA-256", plus: "tls-exporter" });
      expect(plus).toMatchObject({ outcome: "failure", condition: "invalid-mechanism" });
    } finally {
      await p.stop();
    }
  });

  it("a first attempt refused at once (SCRAM client-first naming another account) leaves the stream to another mechanism: PLAIN then succeeds", async () => {
    const raw = await RawClient.connect(all.port);
    try {
      await raw.startTls();
      raw.send(raw.header());
      await raw.waitFor(/<\/stream:features>/);
      raw.clear();
      // RFC 5802 §5.1 a=: an authzid other than the account itself (§3.5)
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${Buffer.from("n,a=bob@localhost,n=carol,r=abcdef").toString("base64")}</auth>`);
      await raw.waitFor(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-authzid\/>/);
      raw.clear();
      raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("\0carol\0carolpass").toString("base64")}</auth>`);
      await raw.waitFor(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
    } finally {
      raw.close();
    }
  });

  it("malformed SCRAM messages: incorrect-encoding, malformed-request, a response without an exchange; the third failure ends the stream", async () => {
    const raw = await RawClient.connect(all.port);
    await raw.startTls();
    raw.send(raw.header());
    await raw.waitFor(/<\/stream:features>/);
    const auth = (mech: string, data: string): string => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mech}'>${data}</auth>`;
    raw.clear();
    raw.send(auth("SCRAM-SHA-256", "not base64!"));
    await raw.waitFor(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><incorrect-encoding\/>/);
    raw.clear();
    // "x,," is no GS2 flag (RFC 5802 §7)
    raw.send(auth("SCRAM-SHA-256", Buffer.from("x,,n=carol,r=abc").toString("base64")));
    await raw.waitFor(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><malformed-request\/>/);
    raw.clear();
    raw.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Zm9v</response>");
    await raw.waitFor(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><malformed-request\/>/);
    await raw.waitFor(/<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await raw.waitClosed();
    expect(all.stdout()).not.toContain("n=carol,r=abc");
  });
});
