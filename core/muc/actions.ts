import type { Element } from "ltx";

/**
 * What the room state machine asks the network layer to do. The machine never touches a socket;
 * the proxy executes these in order.
 *
 * Upstream ordering contract (what RoomMachine assumes of the proxy):
 *  - `toRoomUpstream` emitted while the account session is not online is queued by the proxy and
 *    flushed, in order, once it is bound;
 *  - on `accountSessionDown` the proxy discards whatever of that queue it had not written (the
 *    machine re-sends what matters: joins with <history since=…> and held stanzas, on
 *    `accountSessionUp`);
 *  - after `accountSessionDown`, while `hasState()` is true, the proxy reconnects (with backoff)
 *    and calls `accountSessionUp` once bound — no new `openAccountSession` is emitted for that;
 *  - the proxy may hold the account session online while no room wants it (started at a client's
 *    login, or lingering: docs/architecture.md §4.1); an `openAccountSession` that finds it online is
 *    answered with `accountSessionUp(now, true)` at once (same stream: echoes of earlier leaves still
 *    awaited), before the actions after it are executed, so the join that follows goes straight out;
 *    `closeAccountSession` means only that no room needs it, and the proxy drops its queue.
 */
export type Action =
  | {
      kind: "toSession";
      session: string;
      stanza: Element; // `to` already rewritten to that session's full JID
      /** The stanza serialized, when the machine has it already (fan-out); else use stanza.toString(). */
      xml?(): string;
    }
  | { kind: "toRoomUpstream"; stanza: Element } // via the account session's upstream stream; the proxy sets `from`
  | { kind: "passthrough" } // the session's own stanza: send it untouched via that session's own upstream stream
  | { kind: "openAccountSession" } // first join: the account needs its upstream session
  | { kind: "closeAccountSession" } // no rooms left: the account session may close
  /** The account is out of `room` for good (left, or removed by the room); the proxy logs why. */
  | { kind: "roomLeft"; room: string; reason: RoomLeftReason; heldPmsLost?: number }
  /** A PM for the account was refused (its sender told): the per-account held-PM bound is full (issue 10 §4). */
  | { kind: "heldPmRefused"; room: string }
  /** A session's stanza refused with resource-constraint: a bound of issue 10 §7 was hit (log code). */
  | { kind: "stanzaRefused"; room: string; code: "ROOM_OUTBOX_FULL" | "ACCOUNT_OUTBOX_FULL" | "PENDING_IQS_FULL" | "HELD_WHILE_JOINING_FULL" };

/**
 * Why the account is no longer in a room. The account leaves only by these rules, never as a side
 * effect of its own upstream connection coming and going.
 */
export type RoomLeftReason =
  | "last-session-left" // the last session left explicitly (§7.14)
  | "idle-timeout" // no session for --room-idle-leave
  | "join-timeout" // every session waiting on the account's first join gave up (--join-timeout)
  | "join-refused" // the room refused the account's join (§7.2 errors)
  | "rejoin-refused" // the room refused the rejoin after an upstream loss (e.g. banned meanwhile)
  | "removed" // the room removed the account's occupant (kick, ban, affiliation, destroy…)
  | "bookmark-removed"; // the user retracted the room's bookmark or switched its autojoin off (docs/architecture.md §4.6)

export const PASSTHROUGH: Action = Object.freeze({ kind: "passthrough" }) as Action;

export function toSession(session: string, stanza: Element): Action {
  return { kind: "toSession", session, stanza };
}

export function toRoomUpstream(stanza: Element): Action {
  return { kind: "toRoomUpstream", stanza };
}

/** What to write to the session for a toSession action (the same string as `stanza.toString()`). */
export function sessionXml(a: Extract<Action, { kind: "toSession" }>): string {
  return a.xml ? a.xml() : a.stanza.toString();
}
