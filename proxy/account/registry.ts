import { rawDomain } from "../../core/jid.js";
import type { RoomMachineOptions } from "../../core/muc/room-machine.js";
import type { Logger } from "../log.js";
import type { PushConfig } from "../config.js";
import type { UpstreamSecret, UpstreamTarget } from "../upstream/connect.js";
import { AccountHub, type AccountSessionPolicy } from "./account-hub.js";
import type { RoomMarkStore } from "../state/room-marks.js";
import type { ClusterGate } from "../cluster/gate.js";

export interface RegistryOptions {
  target: (domain: string) => UpstreamTarget;
  resourcePrefix: string;
  rooms: Partial<RoomMachineOptions>;
  log: Logger;
  /** Rooms one account may be in (--max-rooms-per-account). */
  maxRooms?: number;
  /** XEP-0357 (docs/architecture.md §8.6); default: the config defaults. */
  push?: PushConfig;
  /** When the account session logs in and how long it lingers (docs/architecture.md §4.1); default: at the first join, no linger. */
  accountSession?: AccountSessionPolicy;
  /** How often idle-leave and IQ timeouts are checked. */
  tickMs?: number;
  /** --bookmarks follow: accounts follow their bookmarks; marks kept in this store (docs/architecture.md §4.6). */
  bookmarks?: { marks: RoomMarkStore | undefined };
  /** --cluster-redis: account sessions need the account's lease (docs/architecture.md §8.7). */
  cluster?: ClusterGate;
}

/**
 * Every account with a live session or joined rooms. An account (and the credentials it keeps)
 * is forgotten as soon as it has neither (docs/architecture.md §3.3).
 */
export class AccountRegistry {
  private readonly accounts = new Map<string, AccountHub>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: RegistryOptions) {
    this.timer = setInterval(() => this.tick(), opts.tickMs ?? 5000);
    this.timer.unref();
  }

  /** The account of `bare` (lower-case bare JID), created on first use. */
  get(bare: string): AccountHub {
    let a = this.accounts.get(bare);
    if (!a) {
      const domain = rawDomain(bare);
      a = new AccountHub(bare, { target: this.opts.target(domain), resourcePrefix: this.opts.resourcePrefix, rooms: this.opts.rooms, log: this.opts.log,
        maxRooms: this.opts.maxRooms, push: this.opts.push, accountSession: this.opts.accountSession, ...(this.opts.bookmarks ? { bookmarks: this.opts.bookmarks } : {}),
        ...(this.opts.cluster ? { cluster: this.opts.cluster } : {}) });
      this.accounts.set(bare, a);
    }
    return a;
  }

  find(bare: string): AccountHub | undefined {
    return this.accounts.get(bare);
  }

  remember(bare: string, secret: UpstreamSecret): void {
    this.get(bare).setSecret(secret);
  }

  /** Drops accounts with nothing left; called after a session leaves and on every tick. */
  collect(bare?: string): void {
    for (const [k, a] of bare ? [[bare, this.accounts.get(bare)] as const] : [...this.accounts]) {
      if (a?.idle) {
        void a.shutdown();
        this.accounts.delete(k);
      }
    }
  }

  all(): AccountHub[] {
    return [...this.accounts.values()];
  }

  private tick(): void {
    const now = Date.now();
    for (const a of this.accounts.values()) a.tick(now);
    this.collect();
  }

  /** Closes every account session; resolves when their sockets are closed. */
  shutdown(): Promise<void> {
    clearInterval(this.timer);
    const closing = [...this.accounts.values()].map((a) => a.shutdown());
    this.accounts.clear();
    return Promise.all(closing).then(() => undefined);
  }
}
