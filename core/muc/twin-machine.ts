/**
 * Test support: a RoomMachine that routes room messages the way the proxy does (the byte fast path
 * first, docs/architecture.md §2.2) and checks every answer against a twin fed the same inputs that
 * only ever takes the element path. Any difference in actions or state throws.
 */
import type { Element } from "ltx";
import { type Action, sessionXml } from "./actions.js";
import { RoomMachine, type RoomMachineOptions } from "./room-machine.js";
import { parseStanza } from "../xml/element.js";

export interface TwinStats {
  /** Room stanzas the fast path decided. */
  fast: number;
  /** Room stanzas offered to it that it left to the element path. */
  slow: number;
}

function canon(xml: string): string {
  return parseStanza(xml).toString();
}

function describeAction(a: Action): string {
  switch (a.kind) {
    case "toSession":
      return `toSession ${a.session} ${canon(sessionXml(a))}`;
    case "toRoomUpstream":
      return `toRoomUpstream ${a.stanza.toString()}`;
    default:
      return JSON.stringify(a);
  }
}

function isElement(x: unknown): x is Element {
  return typeof x === "object" && x !== null && "name" in x && "attrs" in x && "children" in x;
}

export function twinMachine(account: string, opts: Partial<RoomMachineOptions>, stats: TwinStats): RoomMachine {
  const fast = new RoomMachine(account, opts);
  const slow = new RoomMachine(account, opts);
  const call = (m: RoomMachine, name: string, args: unknown[]): unknown => (m as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!.apply(m, args);
  return new Proxy(fast, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]): unknown => {
        const twinArgs = args.map((a) => (isElement(a) ? parseStanza(a.toString()) : a));
        let got: unknown;
        const st = args[0];
        if (prop === "fromRoom" && isElement(st) && st.name === "message") {
          const viaBytes = fast.fromRoomBytes(Buffer.from(st.toString()), args[1] as number);
          if (viaBytes) stats.fast++;
          else stats.slow++;
          got = viaBytes ?? fast.fromRoom(st, args[1] as number);
        } else got = call(fast, prop, args);
        const want = call(slow, prop, twinArgs);
        const show = (x: unknown): string =>
          Array.isArray(x) && x.every((e) => typeof e === "object" && e !== null && "kind" in e) ? (x as Action[]).map(describeAction).join("\n") : JSON.stringify(x);
        if (show(got) !== show(want)) throw new Error(`fast path differs in ${prop}(${args.map((a) => (isElement(a) ? a.toString() : JSON.stringify(a))).join(", ")}):\n--- fast\n${show(got)}\n--- element path\n${show(want)}`);
        return got;
      };
    },
  });
}
