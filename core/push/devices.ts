import type { PushRegistration } from "./commands.js";
import { MAX_PUSH_ERRORS, type PublishErrorFate } from "./errors.js";
import type { PushSummary } from "./publish.js";
import type { PushTrigger } from "./trigger.js";

/**
 * Where a device's session is: connected (no pushes), hibernating (XEP-0198, its client gone: 1:1
 * and room pushes) or gone (ended; the account still in rooms: room pushes only).
 */
export type DeviceState = "online" | "hibernating" | "gone";

export interface PushDevicesOptions {
  /** At most one publish per device per this many ms (--push-interval). */
  intervalMs: number;
  /** Put the body in the summary (--push-body). */
  withBody: boolean;
  /** Registrations kept per account; the oldest goes first. */
  maxDevices: number;
}

/** A publish to make now for the device of `session`. */
export interface PushDue {
  readonly session: string;
  readonly registration: PushRegistration;
  readonly summary: PushSummary;
}

interface Device {
  registration: PushRegistration;
  state: DeviceState;
  /** The server answered the client's <enable/> with a result: it has a push module of its own. */
  serverAccepted: boolean;
  /** Triggers since the device went to sleep (the summary's message-count). */
  count: number;
  /** Triggers not published yet (coalesced), and the latest of them. */
  pending: number;
  last: PushTrigger | undefined;
  lastPublishAt: number | undefined;
  errors: number;
}

/**
 * The push registrations of one account and their coalescing (docs/architecture.md §8.6), keyed by
 * the full JID of the session that enabled them (a device keeps its resource). Pure: the caller passes
 * the time, publishes what is returned and calls `due` at `nextDue()`.
 */
export class PushDevices {
  private readonly devices = new Map<string, Device>();

  constructor(private readonly opts: PushDevicesOptions) {}

  get size(): number {
    return this.devices.size;
  }

  /** Any device asleep? (the fast path for room traffic: nothing to look at otherwise) */
  get anyAsleep(): boolean {
    for (const d of this.devices.values()) if (d.state !== "online") return true;
    return false;
  }

  registration(session: string): PushRegistration | undefined {
    return this.devices.get(session)?.registration;
  }

  state(session: string): DeviceState | undefined {
    return this.devices.get(session)?.state;
  }

  /**
   * `session` (connected) enabled `registration` (XEP-0357 §5). It replaces that session's former
   * registration, and any other session's with the same service and node (the same device, bound
   * again on another resource). Beyond `maxDevices` the oldest registration goes.
   */
  enable(session: string, registration: PushRegistration): void {
    for (const [s, d] of this.devices) {
      if (d.registration.service === registration.service && d.registration.node === registration.node) this.devices.delete(s);
    }
    this.devices.delete(session);
    this.devices.set(session, { registration, state: "online", serverAccepted: false, count: 0, pending: 0, last: undefined,
      lastPublishAt: undefined, errors: 0 });
    while (this.devices.size > this.opts.maxDevices) this.devices.delete(this.devices.keys().next().value as string);
  }

  /** The server accepted the <enable/> of `registration` (it pushes too once the session is gone: §8.6 duplicates). */
  serverAccepted(session: string, registration: PushRegistration): void {
    const d = this.devices.get(session);
    if (d && d.registration === registration) d.serverAccepted = true;
  }

  /** XEP-0357 §6: every registration of the account for `service` (and `node`, when given) goes. Returns how many. */
  disable(service: string, node: string | undefined): number {
    let n = 0;
    for (const [s, d] of this.devices) {
      if (d.registration.service === service && (node === undefined || d.registration.node === node)) {
        this.devices.delete(s);
        n++;
      }
    }
    return n;
  }

  /**
   * The session of a device changed state. Back online (resumed, or bound again on its resource)
   * ends its pushes: what was coalesced is dropped, and its next sleep starts a fresh count.
   */
  setState(session: string, state: DeviceState): void {
    const d = this.devices.get(session);
    if (!d || d.state === state) return;
    d.state = state;
    if (state === "online") {
      d.count = 0;
      d.pending = 0;
      d.last = undefined;
      d.lastPublishAt = undefined;
    }
  }

  /** A 1:1 message on the own leg of `session`: counts only while it hibernates (its leg is its own). */
  offerOwn(session: string, t: PushTrigger, now: number): PushDue[] {
    const d = this.devices.get(session);
    if (!d || d.state !== "hibernating") return [];
    const out: PushDue[] = [];
    this.note(session, d, t, now, out);
    return out;
  }

  /**
   * Room traffic that wakes devices: every sleeping device of the account (the account is one
   * occupant for all its devices). A room PM for a device whose session is gone is left to a server
   * that accepted its <enable/>: the server archives the PM in the account's MAM and pushes for it
   * itself (ejabberd mod_push, Prosody mod_cloud_notify), so the proxy would push it twice; one
   * marked not to be archived (XEP-0334) is never seen by those, and the proxy pushes it.
   */
  offerRoom(t: PushTrigger, now: number): PushDue[] {
    const out: PushDue[] = [];
    for (const [s, d] of this.devices) {
      if (d.state === "online") continue;
      if (t.reason === "room-pm" && !t.unarchived && d.state === "gone" && d.serverAccepted) continue;
      this.note(s, d, t, now, out);
    }
    return out;
  }

  private note(session: string, d: Device, t: PushTrigger, now: number, out: PushDue[]): void {
    d.count++;
    d.pending++;
    d.last = t;
    if (d.lastPublishAt === undefined || now - d.lastPublishAt >= this.opts.intervalMs) out.push(this.publish(session, d, now));
  }

  private publish(session: string, d: Device, now: number): PushDue {
    const t = d.last!;
    d.pending = 0;
    d.lastPublishAt = now;
    return { session, registration: d.registration, summary: { count: d.count, sender: t.sender, body: this.opts.withBody ? t.body : undefined } };
  }

  /** The coalesced publishes whose interval is over. */
  due(now: number): PushDue[] {
    const out: PushDue[] = [];
    for (const [s, d] of this.devices) {
      if (d.pending > 0 && d.state !== "online" && d.lastPublishAt !== undefined && now - d.lastPublishAt >= this.opts.intervalMs) {
        out.push(this.publish(s, d, now));
      }
    }
    return out;
  }

  /** When `due` has something next, or undefined. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const d of this.devices.values()) {
      if (d.pending === 0 || d.state === "online" || d.lastPublishAt === undefined) continue;
      const at = d.lastPublishAt + this.opts.intervalMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /**
   * The app server answered a publish for `registration` of `session` (undefined: a result). A `gone`
   * error, or MAX_PUSH_ERRORS passing ones in a row, forgets the registration; returns true then. An
   * answer about a registration replaced meanwhile changes nothing.
   */
  answered(session: string, registration: PushRegistration, error: PublishErrorFate | undefined): boolean {
    const d = this.devices.get(session);
    if (!d || d.registration !== registration) return false;
    if (error === undefined) {
      d.errors = 0;
      return false;
    }
    d.errors++;
    if (error === "gone" || d.errors >= MAX_PUSH_ERRORS) {
      this.devices.delete(session);
      return true;
    }
    return false;
  }

  /** Registrations whose session is gone go with the account's last room (nothing could wake them). */
  dropGone(): number {
    let n = 0;
    for (const [s, d] of this.devices) if (d.state === "gone") {
      this.devices.delete(s);
      n++;
    }
    return n;
  }
}
