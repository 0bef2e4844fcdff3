import type { Element } from "ltx";
import { NS_STANZAS } from "../xml/ns.js";

/**
 * What an error answer to a publish means for the registration. `gone`: the app server says the
 * node or the device is no more (or that the account may not publish there): the registration is
 * forgotten (XEP-0357 leaves this to the server; ejabberd's mod_push drops a registration on any error not of type wait). `retry`: a passing condition (the app server is
 * unreachable, slow, overloaded: `wait`, or the server's own remote-server-*, service-unavailable,
 * internal-server-error, resource-constraint, recipient-unavailable): kept, and counted; after
 * MAX_PUSH_ERRORS in a row it goes too (Prosody's mod_cloud_notify disables after 16 errors).
 */
export type PublishErrorFate = "gone" | "retry";

export const MAX_PUSH_ERRORS = 16;

const GONE = new Set(["item-not-found", "gone", "forbidden", "not-authorized", "registration-required", "not-allowed",
  "subscription-required", "jid-malformed", "bad-request", "not-acceptable", "feature-not-implemented"]);

export function publishErrorFate(iq: Element): PublishErrorFate {
  const error = iq.getChild("error");
  if (!error || error.attrs.type === "wait") return "retry";
  const condition = error.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === NS_STANZAS && c.name !== "text");
  return condition && GONE.has(condition.name) ? "gone" : "retry";
}
