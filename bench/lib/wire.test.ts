import net from "node:net";
import { describe, expect, it } from "vitest";
import { WireConn, WirePipe } from "./wire.js";

/** A TLS record header + body: application_data (23), TLS 1.2 on the wire, `n` bytes. */
function record(n: number, type = 23): Buffer {
  const b = Buffer.alloc(5 + n, 0xaa);
  b[0] = type;
  b[1] = 3;
  b[2] = 3;
  b.writeUInt16BE(n, 3);
  return b;
}

describe("WireConn", () => {
  it("counts TLS records split anywhere across reads, and every byte", () => {
    const c = new WireConn(50);
    const stream = Buffer.concat([record(100), record(0), record(16384), record(7, 22)]);
    for (const cut of [1, 3, 4, 5, 6, 104, 105, 106, 120, 16000]) {
      const w = new WireConn(50);
      w.arrived(stream.subarray(0, cut), 0);
      w.arrived(stream.subarray(cut), 0);
      expect(w.records, `cut at ${cut}`).toBe(4);
      expect(w.bytes).toBe(stream.length);
    }
    for (let i = 0; i < stream.length; i += 7) c.arrived(stream.subarray(i, i + 7), 0);
    expect(c.records).toBe(4);
  });

  it("starts a burst after a silence of at least the gap, and after a reset", () => {
    const c = new WireConn(50);
    for (const at of [0, 10, 49, 99, 148, 200, 1000]) c.arrived(record(1), at);
    expect(c.bursts).toBe(4); // 0–49, 99–148, 200, 1000
    c.reset();
    expect(c.snapshot()).toEqual({ bytes: 0, records: 0, bursts: 0 });
    c.arrived(record(1), 1001);
    expect(c.bursts).toBe(1);
  });

  it("stops counting records, not bytes or bursts, on a stream that is not TLS", () => {
    const c = new WireConn(50);
    c.arrived(record(3), 0);
    c.arrived(Buffer.from("<stream:stream>"), 100);
    c.arrived(record(3), 200);
    expect(c.records).toBe(1);
    expect(c.bytes).toBe(8 + 15 + 8);
    expect(c.bursts).toBe(3);
  });
});

describe("WirePipe", () => {
  it("forwards both ways unchanged and counts what the server sends", async () => {
    const pong = Buffer.concat([record(4).subarray(0, 5), Buffer.from("pong")]);
    let heard = "";
    const server = net.createServer((s) => s.on("data", (d: Buffer) => {
      heard += d.toString();
      if (heard === "ping") s.write(pong);
    }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const pipe = new WirePipe((server.address() as net.AddressInfo).port, 50);
    await pipe.start();
    const next = pipe.nextConn();
    const client = net.connect({ host: "127.0.0.1", port: pipe.port });
    const got: Buffer[] = [];
    const all = new Promise<void>((r) => client.on("data", (d: Buffer) => (got.push(d), Buffer.concat(got).length >= pong.length && r())));
    client.write("ping");
    const conn = await next;
    await all;
    expect(Buffer.concat(got)).toEqual(pong);
    expect(heard).toBe("ping");
    expect(conn.snapshot()).toEqual({ bytes: pong.length, records: 1, bursts: 1 });
    client.destroy();
    await pipe.stop();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
