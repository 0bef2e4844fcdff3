import { Element } from "ltx";
import { attr } from "./stanza.js";
import { NS_STANZAS } from "../xml/ns.js";

export type ErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

/**
 * An error reply to `request` (RFC 6120 §8.3): same element name and id, addresses swapped
 * as given, <error type=…><condition xmlns=stanzas/></error>. `by` names the entity that
 * generated it when the proxy answers on the room's behalf (RFC 6120 §8.3.2).
 */
export function errorReply(
  request: Element,
  opts: { from?: string; to?: string; type: ErrorType; condition: string; by?: string },
): Element {
  const attrs: Record<string, string> = { type: "error" };
  const id = attr(request, "id");
  if (id !== undefined) attrs.id = id;
  if (opts.from !== undefined) attrs.from = opts.from;
  if (opts.to !== undefined) attrs.to = opts.to;
  const reply = new Element(request.name, attrs);
  const errAttrs: Record<string, string> = { type: opts.type };
  if (opts.by !== undefined) errAttrs.by = opts.by;
  reply.c("error", errAttrs).c(opts.condition, { xmlns: NS_STANZAS });
  return reply;
}
