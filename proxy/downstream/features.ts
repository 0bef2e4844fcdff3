import { Element, clone } from "ltx";
import { NS_BIND2, NS_CSI, NS_FAST, NS_SASL, NS_SASL2, NS_SASL_CB, NS_SM_2, NS_SM_3, NS_TLS } from "../../core/xml/ns.js";

/** RFC 6120 §5.3.1: TLS is mandatory-to-negotiate here, so it is marked <required/>. */
export function preTlsFeatures(): string {
  return `<stream:features><starttls xmlns='${NS_TLS}'><required/></starttls></stream:features>`;
}

/**
 * The SASL offer after TLS (docs/architecture.md §3.5): `mechanisms` strongest first (SaslOffer), and
 * when a -PLUS one is among them, the XEP-0440 §3 list of the channel-binding types this connection
 * can bind to, so a client picks one the proxy computes (RFC 9266 tls-exporter on TLS 1.3).
 */
export function saslFeatures(mechanisms: readonly string[], channelBindingTypes: readonly string[]): string {
  const mechs = mechanisms.map((m) => `<mechanism>${m}</mechanism>`).join("");
  const plus = mechanisms.some((m) => m.endsWith("-PLUS")) && channelBindingTypes.length > 0;
  const cb = plus
    ? `<sasl-channel-binding xmlns='${NS_SASL_CB}'>${channelBindingTypes.map((t) => `<channel-binding type='${t}'/>`).join("")}</sasl-channel-binding>`
    : "";
  return `<stream:features><mechanisms xmlns='${NS_SASL}'>${mechs}</mechanisms>${cb}</stream:features>`;
}

/**
 * Features the proxy cannot honour on the client's behalf are removed from the server's
 * post-authentication features:
 *  - XEP-0198 stream management: the proxy injects and drops stanzas, so acknowledgements are
 *    terminated per leg (docs/architecture.md §8.4): the proxy offers its own <sm/> (`extra`);
 *  - SASL2 / Bind2 / FAST (XEP-0388, XEP-0386, XEP-0484) and channel-binding advertisement (XEP-0440):
 *    downstream authentication is the proxy's own;
 *  - anything the proxy already negotiated itself (starttls, mechanisms).
 */
const DROPPED = new Set([NS_SM_2, NS_SM_3, NS_SASL2, NS_BIND2, NS_FAST, NS_SASL_CB, NS_TLS, NS_SASL]);

/** The server's post-auth features without those above, then `extra` (the proxy's own, serialised). */
export function filterPostAuthFeatures(features: Element, extra: readonly string[] = []): string {
  const out = new Element("stream:features");
  for (const child of features.children) {
    if (typeof child === "string") continue;
    if (DROPPED.has(child.attrs.xmlns as string)) continue;
    out.cnode(clone(child));
  }
  // XEP-0352: the proxy applies CSI to the room traffic it fans out whether or not the server
  // offers it (docs/architecture.md §8.5), so it is always offered
  if (!offersCsi(features)) out.c("csi", { xmlns: NS_CSI });
  const s = out.toString();
  if (extra.length === 0) return s;
  // ltx writes an empty element as <stream:features/>
  const open = s.endsWith("/>") ? `${s.slice(0, -2)}>` : s.slice(0, -"</stream:features>".length);
  return `${open}${extra.join("")}</stream:features>`;
}

/** The server's own post-auth features offer XEP-0352: <active/>/<inactive/> may go to it. */
export function offersCsi(features: Element): boolean {
  return features.getChild("csi", NS_CSI) !== undefined;
}
