import { Element } from "ltx";
import type { Action } from "./actions.js";
import type { MachineState } from "./machine-state.js";
import { upstreamJoin } from "./join.js";
import { leaveSelfPresence, upstreamLeave } from "./leave.js";
import { aggregateKey } from "./presence-aggregate.js";
import { RoomState } from "./room-state.js";
import { splitBare } from "../jid.js";
import { NS_MUC } from "../xml/ns.js";
import { bounceHeld } from "./from-session.js";

/** RoomMachine.bookmarkJoin (docs/architecture.md §4.6). */
export function bookmarkJoin(core: MachineState, roomJid: string, nick: string, password: string | undefined, since: number | undefined, now: number): Action[] {
  const bare = splitBare(roomJid);
  if (bare === undefined || nick === "") return [];
  const known = core.rooms.get(bare);
  if (known) {
    known.bookmarked = true;
    return [];
  }
  const x = new Element("x", { xmlns: NS_MUC });
  if (password !== undefined) x.c("password").t(password); // §7.2.6
  const room = new RoomState(bare, nick, x, core.opts.historyLimit, core.opts.historyBytes);
  room.bookmarked = true;
  // Nobody of the account reads the room yet: it sees the away presence (--away-presence), as
  // after the last session went (§6.6); the first session that joins brings its own.
  const presence = new Element("presence");
  if (core.opts.awayPresence !== "keep") presence.c("show").t(core.opts.awayPresence);
  const up = upstreamJoin(room, presence, core.nextId("join"), core.opts.historyLimit, since);
  const out: Action[] = [];
  if (!core.accountOutboxFits(up)) return [{ kind: "stanzaRefused", room: bare, code: "ACCOUNT_OUTBOX_FULL" }];
  core.rooms.set(bare, room);
  if (core.upstream === "down") {
    out.push({ kind: "openAccountSession" });
    core.upstream = "opening";
  }
  room.joinSent = true;
  if (core.upstream === "up") room.occupancySince = now;
  room.idleSince = now;
  room.lastPresenceKey = aggregateKey(presence);
  core.toUpstream(up, out);
  return out;
}

/** RoomMachine.bookmarkLeave (docs/architecture.md §4.6). */
export function bookmarkLeave(core: MachineState, roomJid: string): Action[] {
  const bare = splitBare(roomJid);
  const room = bare === undefined ? undefined : core.rooms.get(bare);
  if (!room) return [];
  const out: Action[] = [];
  const none = new Element("presence");
  for (const s of room.sessions.keys()) out.push({ kind: "toSession", session: s, stanza: leaveSelfPresence(room, s, room.nick, none) });
  for (const [s, req] of room.waiting) {
    out.push({ kind: "toSession", session: s, stanza: leaveSelfPresence(room, s, room.phase === "joining" ? req.nick : room.nick, none) });
    bounceHeld(room, req, out);
  }
  room.sessions.clear();
  room.waiting.clear();
  room.resyncs.clear();
  core.leaveUpstream(room, upstreamLeave(room, undefined), out);
  core.dropRoom(room, out, "bookmark-removed");
  return out;
}
