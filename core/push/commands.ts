import { clone, type Element } from "ltx";
import { NS_DATA, NS_PUSH } from "../xml/ns.js";

/**
 * One registration of an app server (XEP-0357 §5): where to publish (`service`, the app server's
 * JID, and `node`) and the client's publish-options form, passed as given with every publish.
 */
export interface PushRegistration {
  readonly service: string;
  readonly node: string;
  /** The <x xmlns='jabber:x:data'/> the client put in <enable/> (a copy), if any. */
  readonly options: Element | undefined;
}

export type PushCommand =
  | { kind: "enable"; registration: PushRegistration }
  /** XEP-0357 §6: without a node, every node of that service is disabled. */
  | { kind: "disable"; service: string; node: string | undefined };

/**
 * The client's <iq type='set'><enable|disable xmlns='urn:xmpp:push:0'/></iq>, or undefined for any
 * other stanza and for an invalid command (no `jid`, or an <enable/> without `node`, XEP-0357 §5):
 * those are left to the server, whose error then reaches the client.
 */
export function parsePushCommand(iq: Element, accountBare: string): PushCommand | undefined {
  if (iq.name !== "iq" || iq.attrs.type !== "set") return undefined;
  // an IQ addressed to someone else is not a registration with the own server (§5: no `to`, or the own bare JID)
  const to = str(iq.attrs.to);
  if (to !== undefined && to.toLowerCase() !== accountBare) return undefined;
  const enable = iq.getChild("enable", NS_PUSH);
  const disable = iq.getChild("disable", NS_PUSH);
  const cmd = enable ?? disable;
  if (!cmd) return undefined;
  const service = str(cmd.attrs.jid);
  const node = str(cmd.attrs.node);
  if (service === undefined) return undefined;
  if (disable) return { kind: "disable", service, node };
  if (node === undefined) return undefined;
  const form = cmd.getChild("x", NS_DATA);
  return { kind: "enable", registration: { service, node, options: form ? clone(form) : undefined } };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
