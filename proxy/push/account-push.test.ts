import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Writable } from "node:stream";
import { parseStanza } from "../../core/xml/element.js";
import type { PushRegistration } from "../../core/push/commands.js";
import { MAX_PUSH_ERRORS } from "../../core/push/errors.js";
import type { RoomView } from "../../core/push/trigger.js";
import { createLogger } from "../log.js";
import { AccountPush, MAX_PENDING_PUBLISHES, PUSH_ID_PREFIX } from "./account-push.js";

const ROOM = "room@conference.example.org";
const PHONE = "alice@example.org/phone";
const REG: PushRegistration = { service: "push.example.net", node: "n1", options: undefined };
const rooms: RoomView = { nickIn: (r) => (r === ROOM ? "alice" : undefined) };
const mention = (n = 0): ReturnType<typeof parseStanza> => parseStanza(`<message type='groupchat' from='${ROOM}/bob' id='m${n}'><body>alice ${n}</body></message>`);

/** JSON log lines the push layer wrote. */
function logSink(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, stream };
}

describe("AccountPush (proxy side of docs/architecture.md §8.6)", () => {
  let sent: string[];
  let leg: string[];
  let online: boolean;
  let sink: ReturnType<typeof logSink>;
  let push: AccountPush;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    leg = [];
    online = true;
    sink = logSink();
    push = new AccountPush("alice@example.org", { rooms: "mentions", intervalMs: 10_000, withBody: false, timeoutMs: 30_000 },
      { accountSession: () => (online ? (xml) => void sent.push(xml) : undefined) }, createLogger("debug", sink.stream));
    push.enable(PHONE, REG);
  });
  afterEach(() => {
    push.close();
    vi.useRealTimers();
  });

  const idOf = (xml: string): string => String(parseStanza(xml).attrs.id);
  const answer = (xml: string, type: "result" | "error", condition = "item-not-found", errType = "cancel"): boolean =>
    push.onAnswer(parseStanza(type === "result" ? `<iq type='result' from='push.example.net' id='${idOf(xml)}'/>`
      : `<iq type='error' from='push.example.net' id='${idOf(xml)}'><error type='${errType}'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`));

  it("publishes through the account session when it is online, else on the hibernating leg, else drops (PUSH_DROPPED)", () => {
    push.hibernating(PHONE, (xml) => void leg.push(xml));
    push.fromRoom(mention(1), rooms);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toContain(`id="${PUSH_ID_PREFIX}`);
    online = false;
    vi.advanceTimersByTime(10_000);
    push.fromRoom(mention(2), rooms);
    expect(leg).toHaveLength(1);
    push.gone(PHONE); // no leg any more, and no account session
    vi.advanceTimersByTime(10_000);
    push.fromRoom(mention(3), rooms);
    expect(sent.length + leg.length).toBe(2);
    expect(sink.lines.some((l) => l.code === "PUSH_DROPPED")).toBe(true);
  });

  it("nothing while the device is online; 1:1 on the own leg only while hibernating", () => {
    push.fromRoom(mention(), rooms);
    push.fromOwnLeg(PHONE, parseStanza(`<message type='chat' from='bob@example.org/x'><body>hi</body></message>`));
    expect(sent).toEqual([]);
    push.hibernating(PHONE, () => undefined);
    push.fromOwnLeg(PHONE, parseStanza(`<message type='chat' from='bob@example.org/x'><body>hi</body></message>`));
    expect(sent).toHaveLength(1);
    push.online(PHONE);
    vi.advanceTimersByTime(60_000);
    push.fromRoom(mention(), rooms);
    expect(sent).toHaveLength(1);
  });

  it("coalesces: the triggers within the interval go out in one publish when it is over", () => {
    push.hibernating(PHONE, () => undefined);
    push.fromRoom(mention(1), rooms);
    push.fromRoom(mention(2), rooms);
    push.fromRoom(mention(3), rooms);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(9_999);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toContain("<field var=\"message-count\"><value>3</value></field>");
  });

  it("answers: ours are taken (result, passing error, gone error removes the registration); others are not", () => {
    push.hibernating(PHONE, () => undefined);
    push.fromRoom(mention(1), rooms);
    expect(answer(sent[0]!, "result")).toBe(true);
    vi.advanceTimersByTime(10_000);
    push.fromRoom(mention(2), rooms);
    expect(answer(sent[1]!, "error", "service-unavailable")).toBe(true);
    expect(push.registered(PHONE)).toBe(true);
    expect(sink.lines.some((l) => l.code === "PUSH_ERROR")).toBe(true);
    vi.advanceTimersByTime(10_000);
    push.fromRoom(mention(3), rooms);
    // the same error from anyone but the app server changes nothing
    expect(push.onAnswer(parseStanza(`<iq type='error' from='mallory@example.org/x' id='${idOf(sent[2]!)}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`))).toBe(true);
    expect(push.registered(PHONE)).toBe(true);
    expect(sink.lines.some((l) => l.code === "PUSH_ANSWER_FOREIGN")).toBe(true);
    expect(answer(sent[2]!, "error", "item-not-found")).toBe(true);
    expect(push.registered(PHONE)).toBe(false);
    expect(sink.lines.some((l) => l.code === "PUSH_GONE")).toBe(true);
    // a late or forged answer with our prefix is swallowed; anything else is not ours
    expect(push.onAnswer(parseStanza(`<iq type='result' id='${PUSH_ID_PREFIX}nope'/>`))).toBe(true);
    expect(push.onAnswer(parseStanza(`<iq type='result' id='other'/>`))).toBe(false);
    expect(push.onAnswer(parseStanza(`<iq type='get' id='${PUSH_ID_PREFIX}x'/>`))).toBe(false);
  });

  it("an unanswered publish times out (PUSH_TIMEOUT); MAX_PUSH_ERRORS in a row remove the registration", () => {
    push.hibernating(PHONE, () => undefined);
    for (let i = 0; i < MAX_PUSH_ERRORS; i++) {
      expect(push.registered(PHONE)).toBe(true);
      push.fromRoom(mention(i), rooms);
      vi.advanceTimersByTime(30_000);
    }
    expect(sink.lines.filter((l) => l.code === "PUSH_TIMEOUT")).toHaveLength(MAX_PUSH_ERRORS);
    expect(push.registered(PHONE)).toBe(false);
  });

  it("at most MAX_PENDING_PUBLISHES unanswered at once; beyond, dropped", () => {
    const p = new AccountPush("alice@example.org", { rooms: "all", intervalMs: 0, withBody: true, timeoutMs: 30_000 },
      { accountSession: () => (xml) => void sent.push(xml) }, createLogger("silent"));
    p.enable(PHONE, REG);
    p.gone(PHONE);
    for (let i = 0; i < MAX_PENDING_PUBLISHES + 5; i++) p.fromRoom(mention(i), rooms);
    expect(sent).toHaveLength(MAX_PENDING_PUBLISHES);
    expect(sent[0]).toContain("last-message-body");
    expect(p.onAnswer(parseStanza(`<iq type='result' from='push.example.net' id='${idOf(sent[0]!)}'/>`))).toBe(true);
    p.fromRoom(mention(99), rooms);
    expect(sent).toHaveLength(MAX_PENDING_PUBLISHES + 1);
    p.close();
  });

  it("the account's last room gone: registrations of ended sessions go, a live one stays", () => {
    push.enable("alice@example.org/tablet", { ...REG, node: "t" });
    push.gone(PHONE);
    push.noRooms();
    expect(push.registered(PHONE)).toBe(false);
    expect(push.registered("alice@example.org/tablet")).toBe(true);
    expect(push.registrations).toBe(1);
  });
});
