import { Element } from "ltx";
import { errorReply } from "../../core/xml/errors.js";
import { NS_DISCO_INFO, NS_MUC, NS_PING } from "../../core/xml/ns.js";

/**
 * The answer to an IQ request that reached the account session and is not room traffic
 * (the room machine declined it): XEP-0199 ping → result, XEP-0030 disco#info → a minimal
 * client identity, anything else → service-unavailable (RFC 6120 §8.4: every get/set must be
 * answered). Results and errors get no answer.
 */
export function answerOwnIq(el: Element): Element | undefined {
  const type = el.attrs.type;
  if (el.name !== "iq" || (type !== "get" && type !== "set")) return undefined;
  const res = new Element("iq", { type: "result", id: el.attrs.id, to: el.attrs.from });
  if (type === "get" && el.getChild("ping", NS_PING)) return res;
  if (type === "get" && el.getChild("query", NS_DISCO_INFO)) {
    const q = res.c("query", { xmlns: NS_DISCO_INFO });
    q.c("identity", { category: "client", type: "bot", name: "minimix-proxy account session" });
    for (const v of [NS_DISCO_INFO, NS_PING, NS_MUC]) q.c("feature", { var: v });
    return res;
  }
  return errorReply(el, { to: el.attrs.from, type: "cancel", condition: "service-unavailable" });
}
