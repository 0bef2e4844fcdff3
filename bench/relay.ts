/**
 * The floor a Node proxy cannot beat: terminate the client's TLS, open TLS to the server, and
 * pipe() the plaintext both ways. No XML, no framing, no logging. TARGET_CA `-` makes the leg to the
 * server plain TCP (the floor of a proxy run with `--upstream-tls none` beside the server).
 *
 *   node dist/bench/relay.js LISTEN_PORT TARGET_PORT CERT KEY TARGET_CA|-
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";

const [listenPort, targetPort, certFile, keyFile, caFile] = process.argv.slice(2);
if (!listenPort || !targetPort || !certFile || !keyFile || !caFile) {
  process.stderr.write("usage: relay.js LISTEN_PORT TARGET_PORT CERT KEY TARGET_CA|-\n");
  process.exit(2);
}
const ca = caFile === "-" ? undefined : readFileSync(caFile);

const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), ALPNProtocols: ["xmpp-client"] }, (down) => {
  down.setNoDelay(true);
  const up = ca === undefined
    ? net.connect({ host: "127.0.0.1", port: Number(targetPort) })
    : tls.connect({ host: "127.0.0.1", port: Number(targetPort), servername: "localhost", ca, ALPNProtocols: ["xmpp-client"] });
  up.setNoDelay(true);
  const kill = (): void => {
    down.destroy();
    up.destroy();
  };
  down.on("error", kill);
  up.on("error", kill);
  down.on("close", kill);
  up.on("close", kill);
  down.pipe(up);
  up.pipe(down);
});
server.on("tlsClientError", () => undefined);
server.listen(Number(listenPort), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ msg: "listening", port: Number(listenPort) }) + "\n");
});
process.on("SIGTERM", () => process.exit(0));
