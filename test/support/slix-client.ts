/**
 * The tests' handle on test/support/slix-client.py: a slixmpp client (another XMPP library than the
 * suite's @xmpp/client) in a child process, driven by JSON lines. Debian's python3-slixmpp, installed
 * by test/run-suites.sh; `slixmppAvailable()` says whether this machine has it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "slix-client.py");
/** Debian's interpreter: python3-slixmpp lives there, not in another python3 on PATH. */
const PYTHON = "/usr/bin/python3";

export type SlixEvent =
  | { ev: "ready"; jid: string; mechanism: string | null }
  | { ev: "sm"; resumable: boolean }
  | { ev: "joined"; room: string; nick: string; subject: string; occupants: string[] }
  | { ev: "groupchat"; room: string; nick: string; body: string; id: string }
  | { ev: "presence"; from: string; type: string; codes: number[] }
  | { ev: "resumed"; jid: string }
  | { ev: "error"; text: string };

export type SlixCommand =
  | { op: "join"; room: string; nick: string }
  | { op: "say"; room: string; body: string; id: string }
  | { op: "post"; room: string; nick: string; body: string; id: string }
  | { op: "leave"; room: string; nick: string }
  | { op: "cut" }
  | { op: "quit" };

export function slixmppAvailable(): boolean {
  return spawnSync(PYTHON, ["-c", "import slixmpp"], { stdio: "ignore" }).status === 0;
}

export class SlixClient {
  readonly events: SlixEvent[] = [];
  private waiters: { pred: (e: SlixEvent) => boolean; resolve: (e: SlixEvent) => void }[] = [];
  private stderr = "";

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let e: SlixEvent;
      try {
        e = JSON.parse(line) as SlixEvent;
      } catch {
        return;
      }
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
    });
    child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-(Number(process.env.SLIX_STDERR) || 4000))));
  }

  /** Starts the client for `jid` against 127.0.0.1:`port` (STARTTLS or direct TLS, `caFile` trusted) and waits for its session. */
  static async start(jid: string, password: string, port: number, caFile: string, transport: "starttls" | "direct" = "starttls"): Promise<{ client: SlixClient; ready: Extract<SlixEvent, { ev: "ready" }> }> {
    const child = spawn(PYTHON, [SCRIPT, jid, password, "127.0.0.1", String(port), caFile, transport], { stdio: ["pipe", "pipe", "pipe"] });
    const client = new SlixClient(child);
    const ready = await client.waitFor((e): e is Extract<SlixEvent, { ev: "ready" }> => e.ev === "ready" || e.ev === "error", 20_000);
    if (ready.ev !== "ready") throw new Error(`slixmpp client for ${jid}: ${(ready as { text?: string }).text}; stderr: ${client.stderr}`);
    return { client, ready };
  }

  /** What the client wrote on stderr lately (slixmpp's errors; its debug log with SLIX_DEBUG=1). */
  stderrText(): string {
    return this.stderr;
  }

  send(c: SlixCommand): void {
    this.child.stdin!.write(JSON.stringify(c) + "\n");
  }

  /** The first event (already seen or future) matching `pred`. */
  waitFor<T extends SlixEvent>(pred: ((e: SlixEvent) => e is T) | ((e: SlixEvent) => boolean), timeoutMs = 15_000): Promise<T> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen as T);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`slixmpp: event not seen in ${timeoutMs} ms; last events: ${JSON.stringify(this.events.slice(-8))}; stderr: ${this.stderr}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e as T)) });
    });
  }

  /** Groupchat messages seen with `body`. */
  groupchats(body: string): Extract<SlixEvent, { ev: "groupchat" }>[] {
    return this.events.filter((e): e is Extract<SlixEvent, { ev: "groupchat" }> => e.ev === "groupchat" && e.body === body);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.send({ op: "quit" });
    const t = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(t);
  }
}
