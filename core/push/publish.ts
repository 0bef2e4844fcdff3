import { Element, clone } from "ltx";
import { NS_DATA, NS_PUBSUB, NS_PUSH } from "../xml/ns.js";
import type { PushRegistration } from "./commands.js";

/** The urn:xmpp:push:summary content of one publish (XEP-0357 §7). */
export interface PushSummary {
  /** Messages that woke the device since it went to sleep ("unread or undelivered messages"). */
  readonly count: number;
  readonly sender: string;
  /** Only with --push-body (off by default: the body would go to the app server and its push service). */
  readonly body: string | undefined;
}

/**
 * The publish to the app server (XEP-0357 §7): <pubsub><publish node><item><notification> with the
 * summary form, and the registration's publish-options form exactly as the client gave it in
 * <enable/> (§5: "the server MUST include" it). `from` is left to the server (the account session's
 * full JID); `id` lets the proxy match the answer.
 */
export function publishIq(reg: PushRegistration, summary: PushSummary, id: string): Element {
  const iq = new Element("iq", { type: "set", to: reg.service, id });
  const pubsub = iq.c("pubsub", { xmlns: NS_PUBSUB });
  const form = pubsub.c("publish", { node: reg.node }).c("item").c("notification", { xmlns: NS_PUSH }).c("x", { xmlns: NS_DATA, type: "submit" });
  field(form, "FORM_TYPE", "urn:xmpp:push:summary");
  field(form, "message-count", String(summary.count));
  field(form, "last-message-sender", summary.sender);
  if (summary.body !== undefined) field(form, "last-message-body", summary.body);
  if (reg.options) pubsub.c("publish-options").cnode(clone(reg.options));
  return iq;
}

function field(form: Element, name: string, value: string): void {
  form.c("field", { var: name }).c("value").t(value);
}
