import type { Element } from "ltx";
import type { MachineState } from "./machine-state.js";
import { splitJid as parseJid } from "../jid.js";
import { NS_CARBONS, NS_FORWARD } from "../xml/ns.js";
import { attr, copyOf } from "./stanza.js";


/**
 * What to do with a carbon the server sent on a session's own upstream leg:
 *  - pass: not the proxy's business, the bytes go through untouched;
 *  - drop: the session must not see it;
 *  - deliver: send this rewritten stanza instead.
 */
export type CarbonVerdict = { kind: "pass" } | { kind: "drop" } | { kind: "deliver"; stanza: Element };

const PASS: CarbonVerdict = Object.freeze({ kind: "pass" }) as CarbonVerdict;

/**
 * A XEP-0280 §6 "sent" carbon of a message the account session sent to one of this account's
 * rooms on behalf of a session (a PM to an occupant, XEP-0045 §7.5, or a chat state / receipt to
 * one). The server copies what the account session sends to every carbons-enabled resource but
 * the account session — the session that wrote the message included, which a direct client never
 * gets (§6: "excluding the sending client"). So:
 *  - on the sender's own leg the carbon is dropped;
 *  - on another session's leg it is delivered with the inner `from` set to the sender's full JID,
 *    as the server writes it for a direct sender (it names the account session otherwise).
 * Whether the server copies at all is left to it: Prosody 0.12 copies no PM carrying the
 * `<x xmlns='muc#user'/>` mark, ejabberd 23.01 copies outgoing PMs either way (XEP-0280 §6.1 of
 * 1.0: outgoing MUC PMs are eligible, incoming ones are not) — the same as it does for direct clients.
 * Anything else (received carbons, carbons of the session's own passthrough messages, of messages
 * whose sender is no longer remembered) passes untouched.
 */
export function sentCarbon(core: MachineState, session: string, carbon: Element): CarbonVerdict {
  if (carbon.name !== "message" || core.accountSessionJid === undefined) return PASS;
  // §11: a carbon comes from the user's own bare JID; anything else is not a carbon to act on.
  const from = parseJid(attr(carbon, "from"));
  if (!from || from.bare !== core.accountBare || from.resource !== undefined) return PASS;
  const sent = carbon.getChild("sent", NS_CARBONS);
  const inner = sent?.getChild("forwarded", NS_FORWARD)?.getChild("message");
  if (!sent || !inner) return PASS;
  if (attr(inner, "from") !== core.accountSessionJid) return PASS;
  const room = core.rooms.get(parseJid(attr(inner, "to"))?.bare ?? "");
  const id = attr(inner, "id");
  const sender = room && id !== undefined ? room.recentSent.get(id) : undefined;
  if (sender === undefined) return PASS;
  if (sender === session) return { kind: "drop" };
  const copy = copyOf(carbon);
  const copyInner = copy.getChild("sent", NS_CARBONS)!.getChild("forwarded", NS_FORWARD)!.getChild("message")!;
  copyInner.attrs.from = sender;
  return { kind: "deliver", stanza: copy };
}
