import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfigToml } from "../config.js";
import { helpText } from "../cli-args.js";

const ENV = { HOME: "/home/u" };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected ConfigError");
}

describe("WebSocket listener options (listen-ws, listen-ws-plain, ws-path)", () => {
  it("absent by default: no websocket section", () => {
    expect(loadConfig(["--domain", "example.org"], ENV).websocket).toBeUndefined();
  });

  it("flags: wss and loopback ws listeners with the default path", () => {
    const c = loadConfig(["--domain", "example.org", "--listen", "0.0.0.0:5222", "--listen-ws", "[::]:5443", "--listen-ws-plain", "127.0.0.1:5280",
      "--listen-ws-plain", "[::1]:5280"], ENV);
    expect(c.websocket).toEqual({
      listen: [{ host: "::", port: 5443 }],
      listenPlain: [{ host: "127.0.0.1", port: 5280 }, { host: "::1", port: 5280 }],
      path: "/xmpp-websocket",
    });
  });

  it("only WebSocket listeners: the default XMPP listeners are not added", () => {
    const c = loadConfig(["--domain", "example.org", "--listen-ws", "0.0.0.0:5443"], ENV);
    expect(c.listen).toEqual([]);
    expect(c.listenTls).toEqual([]);
    expect(c.websocket?.listen).toEqual([{ host: "0.0.0.0", port: 5443 }]);
  });

  it("TOML keys and a custom path", () => {
    const p = parseConfigToml('listen-ws = "0.0.0.0:443"\nlisten-ws-plain = ["localhost:5280"]\nws-path = "/ws"\n', "f.toml");
    expect(p).toMatchObject({ listenWs: [{ host: "0.0.0.0", port: 443 }], listenWsPlain: [{ host: "localhost", port: 5280 }], wsPath: "/ws" });
  });

  it("listen-ws-plain only on loopback", () => {
    const e = configError(() => loadConfig(["--domain", "example.org", "--listen-ws-plain", "0.0.0.0:5280"], ENV));
    expect(e.key).toBe("listen-ws-plain");
    expect(e.message).toMatch(/^config: --listen-ws-plain: must be a loopback address/);
    for (const ok of ["127.0.0.1:1", "127.1.2.3:1", "[::1]:1", "localhost:1", "[::ffff:127.0.0.1]:1"]) {
      expect(loadConfig(["--domain", "example.org", "--listen-ws-plain", ok], ENV).websocket?.listenPlain).toHaveLength(1);
    }
  });

  it("ws-path must be an absolute path", () => {
    for (const bad of ["xmpp", "/a b", "/x?y=1", ""]) {
      const e = configError(() => loadConfig(["--domain", "example.org", "--listen-ws", "0.0.0.0:1", `--ws-path=${bad}`], ENV));
      expect(e.key).toBe("ws-path");
    }
  });

  it("a port used by two listeners is refused", () => {
    const e = configError(() => loadConfig(["--domain", "example.org", "--listen", "127.0.0.1:5222", "--listen-ws", "127.0.0.1:5222"], ENV));
    expect(e.message).toBe("config: listen-ws: 127.0.0.1:5222 is already used by listen");
  });

  it("--help lists the options", () => {
    expect(helpText()).toMatch(/--listen-ws HOST:PORT/);
    expect(helpText()).toMatch(/--listen-ws-plain HOST:PORT/);
    expect(helpText()).toMatch(/--ws-path PATH\s+HTTP path/);
  });
});
