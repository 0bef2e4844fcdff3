import { parseStanza } from "../xml/element.js";
import { NS_DELAY } from "../xml/ns.js";
import { isoStamp } from "../muc/stanza.js";
import type { QueuedStanza } from "./outbound.js";

/**
 * A stanza re-sent after <resumed/> (XEP-0198 §5), marked with when it was first meant for the client:
 * an XEP-0203 `<delay from=SERVER stamp=QUEUED_AT/>` on messages and presences, as Prosody's
 * mod_smacks does, so a client that was away shows missed messages at their time, not at the resume.
 * IQs are left alone (their timing means nothing to a client), and so is a stanza that already carries
 * a delay (room history, offline messages: their stamp is the original one) or that cannot be parsed
 * (it is re-sent as it came, bytes unchanged).
 */
export function stampResent(stanza: QueuedStanza, queuedAtMs: number, from: string): QueuedStanza {
  if (!Number.isFinite(queuedAtMs)) return stanza;
  let el;
  try {
    el = parseStanza(stanza);
  } catch {
    return stanza;
  }
  if ((el.name !== "message" && el.name !== "presence") || el.getChild("delay", NS_DELAY) !== undefined) return stanza;
  el.c("delay", { xmlns: NS_DELAY, from, stamp: isoStamp(queuedAtMs) });
  return el.toString();
}
