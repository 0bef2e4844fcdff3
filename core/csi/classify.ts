import type { Element } from "../xml/element.js";
import { statusCodes, STATUS } from "../muc/status-codes.js";
import { attr } from "../muc/stanza.js";
import {
  NS_CARBONS,
  NS_CHATSTATES,
  NS_CLIENT,
  NS_CONFERENCE,
  NS_DATA,
  NS_DELAY,
  NS_EME,
  NS_FORWARD,
  NS_HINTS,
  NS_JINGLE_MESSAGE_0,
  NS_JINGLE_MESSAGE_1,
  NS_MUC_USER,
  NS_OCCUPANT_ID,
  NS_OOB,
  NS_OMEMO,
  NS_OMEMO_LEGACY,
  NS_OPENPGP,
  NS_PGP_LEGACY,
  NS_SFS,
  NS_SID,
} from "../xml/ns.js";

/**
 * What an inactive session (XEP-0352) does with one stanza the proxy fans out to it
 * (docs/architecture.md §8.5):
 *  - `flush`: write everything held, then this stanza — someone is waiting for it or a human reads it;
 *  - `hold-presence`: hold it; a later presence from the same `from` supersedes it;
 *  - `hold-chatstate`: hold it; it is a bare XEP-0085 chat state, a later one from the same sender
 *    (same type and thread) supersedes it;
 *  - `hold`: hold it, never superseded (receipts, markers, reactions, room status messages, …).
 */
export type CsiClass = "flush" | "hold-presence" | "hold-chatstate" | "hold";

/**
 * Payload namespaces that make a message worth waking the client for, beyond <body>/<subject>.
 * The list follows Prosody's mod_csi_simple `is_important` (encryption, invitations, calls) and
 * adds the encryption formats that carry no <eme/> hint, shared files, and the data forms rooms
 * send to moderators (XEP-0045 §8.6 voice requests): a human reads all of them.
 */
const IMPORTANT_NAMESPACES: ReadonlySet<string> = new Set([
  NS_EME, // XEP-0380 <encryption/>: whatever it hides, a human reads it
  NS_OMEMO_LEGACY, // <encrypted xmlns='eu.siacs.conversations.axolotl'> (OMEMO as Conversations sends it)
  NS_OMEMO, // <encrypted xmlns='urn:xmpp:omemo:2'>
  NS_OPENPGP, // XEP-0373 <openpgp/>
  NS_PGP_LEGACY, // XEP-0027 <x xmlns='jabber:x:encrypted'>
  NS_CONFERENCE, // XEP-0249 direct invitation
  NS_DATA, // XEP-0004 form for a human (voice request approval, XEP-0045 §8.6)
  NS_JINGLE_MESSAGE_0, // XEP-0353 call proposal / retraction
  NS_JINGLE_MESSAGE_1,
  NS_OOB, // XEP-0066 a shared file (usually with a body, not always)
  NS_SFS, // XEP-0447 a shared file, possibly without a body
]);

/**
 * Children that may ride along a chat state without making it more than a chat state: ids
 * (XEP-0359), hints (XEP-0334), a delay (XEP-0203), the occupant id (XEP-0421). Anything else
 * (a receipt, a marker, a reaction, …) makes the message a plain `hold`: superseding it would lose it.
 */
const CHATSTATE_ENVELOPE: ReadonlySet<string> = new Set([NS_SID, NS_HINTS, NS_DELAY, NS_OCCUPANT_ID]);

const EMPTY_SET: ReadonlySet<string> = new Set();

/** Element children (ltx children are elements or strings). */
function elements(el: Element): Element[] {
  const out: Element[] = [];
  for (const c of el.children) if (typeof c !== "string") out.push(c);
  return out;
}

/** A child in the stanza's own namespace (jabber:client, or none declared): <body>, <subject>, <thread>. */
function isClientChild(child: Element, name: string): boolean {
  if (child.getName() !== name) return false;
  const ns = child.getNS();
  return ns === undefined || ns === NS_CLIENT;
}

/**
 * XEP-0280 §7: the message a received carbon forwards (the one a human reads), if `el` is one.
 * A sent carbon is answered separately: it is the user's own message from another device.
 */
function receivedCarbonInner(el: Element): Element | undefined {
  return el.getChild("received", NS_CARBONS)?.getChild("forwarded", NS_FORWARD)?.getChild("message");
}

/**
 * A message a human reads or someone waits for: a <body> or a <subject> (XEP-0045 §7.2.15: the
 * subject is the last step of a join, the client waits for it), an encrypted payload, an
 * invitation (XEP-0249, or XEP-0045 §7.8.2 mediated through the room, or its decline), a call,
 * a form, or a payload in one of the caller's `extra` namespaces.
 */
function isImportantMessage(msg: Element, extra: ReadonlySet<string>): boolean {
  for (const child of elements(msg)) {
    if (isClientChild(child, "body") || isClientChild(child, "subject")) return true;
    const ns = child.getNS();
    if (ns === undefined) continue;
    if (IMPORTANT_NAMESPACES.has(ns) || extra.has(ns)) return true;
    if (ns === NS_MUC_USER && child.getName() === "x" && (child.getChild("invite") !== undefined || child.getChild("decline") !== undefined)) return true;
  }
  return false;
}

/**
 * XEP-0085 §5.5 (and §5.1 for PMs): a message that carries a chat state and nothing a later chat
 * state would make obsolete. The PM mark `<x xmlns='muc#user'/>` (XEP-0045 §7.5) may come along
 * when it is empty; a <thread/> too (it is part of the coalescing key).
 */
function isChatStateOnly(msg: Element): boolean {
  let state = false;
  for (const c of msg.children) {
    if (typeof c === "string") {
      if (c.trim() !== "") return false;
      continue;
    }
    const ns = c.getNS();
    if (ns === NS_CHATSTATES) state = true;
    else if (isClientChild(c, "thread")) continue;
    else if (ns !== undefined && CHATSTATE_ENVELOPE.has(ns)) continue;
    else if (ns === NS_MUC_USER && c.getName() === "x" && elements(c).length === 0) continue;
    else return false;
  }
  return state;
}

/**
 * Classifies one parsed stanza for an inactive session. `extraImportant` are payload namespaces
 * the operator wants delivered at once (like mod_csi_simple's `csi_important_payloads`).
 *
 * Flushes: any `type='error'` (a failed send or join is waited for), any IQ (someone waits for the
 * answer, RFC 6120 §8.2.3), a presence that is not an availability update (subscription requests
 * want a human), a self-presence (status 110, XEP-0045 §7.2.2: the client waits for its join; also
 * kicks and bans, §8.2 and §9.1), a room's destruction (§10.9), the important messages above, and anything that is not a
 * message, presence or IQ. Follows Prosody's mod_csi_simple `is_important`, except that a
 * headline with a body flushes here (a human reads it; csi_simple holds every headline).
 */
export function classify(el: Element, extraImportant: ReadonlySet<string> = EMPTY_SET): CsiClass {
  const type = attr(el, "type");
  if (type === "error") return "flush";
  switch (el.getName()) {
    case "presence":
      if (type !== undefined && type !== "unavailable") return "flush";
      if (statusCodes(el).has(STATUS.SELF)) return "flush";
      if (el.getChild("x", NS_MUC_USER)?.getChild("destroy") !== undefined) return "flush"; // XEP-0045 §10.9: the room is gone
      return attr(el, "from") === undefined ? "hold" : "hold-presence";
    case "message": {
      if (el.getChild("sent", NS_CARBONS) !== undefined) return "flush"; // XEP-0280: the user wrote it elsewhere
      const inner = receivedCarbonInner(el);
      if (isImportantMessage(inner ?? el, extraImportant)) return "flush";
      if (inner === undefined && attr(el, "from") !== undefined && isChatStateOnly(el)) return "hold-chatstate";
      return "hold";
    }
    default:
      return "flush"; // an IQ, or not a stanza at all: nothing to gain by holding it
  }
}

/**
 * What a held stanza of this class is superseded by: a later stanza with the same key.
 * Presences: the occupant (`from`). Chat states: sender, type (groupchat vs PM, XEP-0045 §7.5)
 * and thread (XEP-0085 §5.3: states are per conversation). Undefined: never superseded.
 */
export function supersedeKey(el: Element, cls: CsiClass): string | undefined {
  const from = attr(el, "from");
  if (from === undefined) return undefined;
  if (cls === "hold-presence") return `p\u0000${from}`;
  if (cls === "hold-chatstate") {
    const thread = elements(el).find((c) => isClientChild(c, "thread"));
    return `c\u0000${from}\u0000${attr(el, "type") ?? "normal"}\u0000${thread?.getText() ?? ""}`;
  }
  return undefined;
}
