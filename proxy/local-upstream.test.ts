import { describe, expect, it } from "vitest";
import * as net from "node:net";
import { LOCAL_PORT_MAX, LOCAL_PORT_MIN, canBind, pickFreePort } from "./local-upstream.js";

function listen(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () =>
      resolve({ port: (srv.address() as net.AddressInfo).port, close: () => new Promise((r) => srv.close(() => r())) }));
  });
}

describe("pickFreePort", () => {
  it("picks a bindable port below the ephemeral range", async () => {
    const p = await pickFreePort();
    expect(p).toBeGreaterThanOrEqual(LOCAL_PORT_MIN);
    expect(p).toBeLessThan(LOCAL_PORT_MAX);
    expect(await canBind(p)).toBe(true);
  });

  it("takes the preferred port when free, another one when it is taken", async () => {
    const busy = await listen();
    try {
      expect(await canBind(busy.port)).toBe(false);
      const p = await pickFreePort({ preferred: busy.port });
      expect(p).not.toBe(busy.port);
      expect(p).toBeLessThan(LOCAL_PORT_MAX);
    } finally {
      await busy.close();
    }
    expect(await pickFreePort({ preferred: busy.port })).toBe(busy.port);
  });

  it("never returns an avoided port: with all of them avoided it gives up", async () => {
    const avoid = new Set<number>();
    for (let port = LOCAL_PORT_MIN; port < LOCAL_PORT_MAX; port++) avoid.add(port);
    await expect(pickFreePort({ avoid })).rejects.toThrow(`no free port in ${LOCAL_PORT_MIN}-${LOCAL_PORT_MAX} after 200 tries`);
  });
});
