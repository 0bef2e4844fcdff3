import { randomBytes } from "node:crypto";
import type { Element } from "ltx";
import type { PushRegistration } from "../../core/push/commands.js";
import { PushDevices, type PushDue } from "../../core/push/devices.js";
import { publishErrorFate } from "../../core/push/errors.js";
import { publishIq } from "../../core/push/publish.js";
import { ownLegTrigger, roomTrigger, type RoomView } from "../../core/push/trigger.js";
import type { PushConfig } from "../config.js";
import type { Logger } from "../log.js";
import { metrics } from "../metrics.js";

/** Publishes of one account unanswered at once; beyond it a publish is dropped (a slow or absent app server). */
export const MAX_PENDING_PUBLISHES = 64;
/** Registrations kept per account. */
export const MAX_PUSH_DEVICES = 16;
/** The id prefix of the proxy's publishes: their answers are taken before anything else looks at them. */
export const PUSH_ID_PREFIX = "mmpush-";

/** Where a publish can be written: the account session when online, else the device's own leg while it hibernates. */
export interface PushChannels {
  accountSession(): ((xml: string) => void) | undefined;
}

interface Pending {
  session: string;
  registration: PushRegistration;
  timer: NodeJS.Timeout;
}

/**
 * XEP-0357 for one account (docs/architecture.md §8.6): the registrations its sessions made, the
 * decisions of core/push applied to what reaches the account, and the publishes. Nothing here waits on
 * the app server: a publish is written and forgotten until its answer or --push-timeout; the
 * coalescing (at most one publish per device per --push-interval) and MAX_PENDING_PUBLISHES bound what
 * a flood of room traffic or a dead app server can cost.
 */
export class AccountPush {
  private readonly devices: PushDevices;
  private readonly pending = new Map<string, Pending>();
  /** Own legs of hibernating devices (session full JID → write). */
  private readonly legs = new Map<string, (xml: string) => void>();
  private dueTimer: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  private readonly idBase = randomBytes(4).toString("hex");
  private seq = 0;

  constructor(private readonly bare: string, private readonly cfg: PushConfig, private readonly channels: PushChannels,
    private readonly log: Logger) {
    this.devices = new PushDevices({ intervalMs: cfg.intervalMs, withBody: cfg.withBody, maxDevices: MAX_PUSH_DEVICES });
  }

  get registrations(): number {
    return this.devices.size;
  }

  registered(session: string): boolean {
    return this.devices.registration(session) !== undefined;
  }

  /** `session` sent <enable/> (XEP-0357 §5). */
  enable(session: string, registration: PushRegistration): void {
    this.devices.enable(session, registration);
    this.log.info({ session, service: registration.service, options: registration.options !== undefined }, "push registration recorded");
  }

  /** The server answered that <enable/> with a result: it pushes itself once the session is gone (§8.6 duplicates). */
  serverAccepted(session: string, registration: PushRegistration): void {
    this.devices.serverAccepted(session, registration);
  }

  disable(session: string, service: string, node: string | undefined): void {
    const n = this.devices.disable(service, node);
    this.log.info({ session, service, removed: n }, "push registration disabled");
  }

  /** The session bound (again) or resumed: its device is awake, nothing more is pushed to it. */
  online(session: string): void {
    this.legs.delete(session);
    this.devices.setState(session, "online");
  }

  /** The session hibernates (XEP-0198): its own leg stays logged in and may carry publishes. */
  hibernating(session: string, leg: (xml: string) => void): void {
    if (!this.registered(session)) return;
    this.legs.set(session, leg);
    this.devices.setState(session, "hibernating");
    this.log.info({ session }, "push: device asleep (session hibernating)");
  }

  /** The session ended: its device keeps getting room pushes while the account is in rooms. */
  gone(session: string): void {
    this.legs.delete(session);
    if (!this.registered(session)) return;
    this.devices.setState(session, "gone");
    this.log.info({ session }, "push: device asleep (session ended)");
  }

  /** The account left its last room: registrations of ended sessions have nothing left to wake them. */
  noRooms(): void {
    const n = this.devices.dropGone();
    if (n > 0) this.log.info({ dropped: n }, "push registrations of ended sessions dropped: the account is in no room");
  }

  /** A stanza on the own leg of a hibernating `session`. */
  fromOwnLeg(session: string, el: Element): void {
    if (this.devices.state(session) !== "hibernating") return;
    const t = ownLegTrigger(el, this.bare);
    if (t) this.send(this.devices.offerOwn(session, t, Date.now()));
  }

  /** Whether fromRoom may act: a device sleeps (else room stanzas need not be shown to push at all). */
  get wantsRoomStanzas(): boolean {
    return this.devices.anyAsleep;
  }

  /** A stanza from a room to the account session. */
  fromRoom(el: Element, rooms: RoomView): void {
    if (el.name !== "message" || !this.devices.anyAsleep) return;
    const t = roomTrigger(el, rooms, this.cfg.rooms);
    if (t) this.send(this.devices.offerRoom(t, Date.now()));
  }

  /**
   * An IQ answer with the proxy's publish id prefix; returns true when it was one of ours (then it goes
   * nowhere else). It counts only from the registration's app server (`from` = its JID).
   */
  onAnswer(el: Element): boolean {
    const id = el.attrs.id;
    if (el.name !== "iq" || typeof id !== "string" || !id.startsWith(PUSH_ID_PREFIX)) return false;
    const type = el.attrs.type;
    if (type !== "result" && type !== "error") return false;
    const p = this.pending.get(id);
    if (!p) return true; // timed out already, or a forged id: swallowed either way
    // only the app server speaks for its registration (a guessed id from elsewhere changes nothing)
    const from = typeof el.attrs.from === "string" ? el.attrs.from.toLowerCase() : "";
    if (from !== p.registration.service.toLowerCase()) {
      this.log.info({ session: p.session, code: "PUSH_ANSWER_FOREIGN" }, "an answer to a publish from someone other than the app server: ignored");
      return true;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (type === "result") {
      metrics.push("ok");
      this.devices.answered(p.session, p.registration, undefined);
      return true;
    }
    const fate = publishErrorFate(el);
    const condition = el.getChild("error")?.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")?.name;
    const removed = this.devices.answered(p.session, p.registration, fate);
    metrics.push(removed ? "gone" : "error");
    this.log.info({ session: p.session, service: p.registration.service, condition, removed, code: removed ? "PUSH_GONE" : "PUSH_ERROR" },
      removed ? "push registration removed after the app server's error" : "app server answered a publish with an error");
    return true;
  }

  private send(dues: readonly PushDue[]): void {
    for (const d of dues) this.publish(d);
    this.armDue();
  }

  private publish(d: PushDue): void {
    const write = this.channels.accountSession() ?? this.legs.get(d.session);
    if (!write || this.pending.size >= MAX_PENDING_PUBLISHES) {
      metrics.push("dropped");
      this.log.warn({ session: d.session, pending: this.pending.size, code: "PUSH_DROPPED" },
        write ? "push dropped: too many publishes unanswered" : "push dropped: no upstream stream to publish on");
      return;
    }
    const id = `${PUSH_ID_PREFIX}${this.idBase}-${++this.seq}`;
    const timer = setTimeout(() => this.timedOut(id), this.cfg.timeoutMs);
    timer.unref();
    this.pending.set(id, { session: d.session, registration: d.registration, timer });
    write(publishIq(d.registration, d.summary, id).toString());
    metrics.push("sent");
    this.log.debug({ session: d.session, service: d.registration.service, count: d.summary.count }, "push published");
  }

  private timedOut(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    metrics.push("timeout");
    const removed = this.devices.answered(p.session, p.registration, "retry");
    this.log.info({ session: p.session, service: p.registration.service, removed, code: "PUSH_TIMEOUT" }, "app server did not answer a publish");
  }

  /** One timer for the coalesced publishes: at the earliest due time. */
  private armDue(): void {
    const next = this.devices.nextDue();
    if (next === this.dueAt) return;
    clearTimeout(this.dueTimer);
    this.dueAt = next;
    if (next === undefined) return;
    this.dueTimer = setTimeout(() => {
      this.dueAt = undefined;
      this.send(this.devices.due(Date.now()));
    }, Math.max(0, next - Date.now()));
    this.dueTimer.unref();
  }

  /** The account is forgotten or the proxy stops: timers go, nothing more is sent. */
  close(): void {
    clearTimeout(this.dueTimer);
    this.dueAt = undefined;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.legs.clear();
  }
}
