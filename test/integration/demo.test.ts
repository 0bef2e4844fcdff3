import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CLI } from "../support/proxy-process.js";

const DEMO = join(CLI, "..", "demo.js");

describe("npm start (the demo)", () => {
  it("starts a throwaway Prosody and the proxy, prints how to connect, and cleans up on SIGTERM", async () => {
    const child = spawn(process.execPath, [DEMO], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "warn" } });
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    await expect.poll(() => out, { timeout: 60_000, interval: 200 }).toMatch(/Press Ctrl-C to stop/);
    const port = Number(/STARTTLS\s+127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const dir = /data in (\S+)/.exec(out)![1]!;
    expect(out).toMatch(/alice@localhost \/ alicepass/);
    expect(out).toMatch(/SCRAM records imported from Prosody\s+for 3 accounts/);
    expect(out).toMatch(/CA to trust\s+\S+dev-cert\.pem/);
    const ca = /CA to trust\s+(\S+)/.exec(out)![1]!;
    // a real client that trusts exactly the CA the demo printed (Node reads it only at start-up)
    const login = spawnSync(process.execPath, ["--input-type=module", "-e", `
      import { client } from "@xmpp/client";
      const x = client({ service: "xmpp://127.0.0.1:${port}", domain: "localhost", username: "alice", password: "alicepass", resource: "demo" });
      x.on("error", () => {});
      const jid = await x.start(); console.log("JID " + jid); await x.stop(); process.exit(0);`],
    { cwd: join(CLI, "..", "..", ".."), env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, encoding: "utf8", timeout: 20_000 });
    expect(login.stdout).toContain("JID alice@localhost/demo");
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(existsSync(dir)).toBe(false);
  }, 90_000);
});
