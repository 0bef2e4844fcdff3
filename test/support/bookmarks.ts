/**
 * Bookmark changes as a client makes them (XEP-0402 §3.2 publish with the node configuration the XEP
 * asks for; retract), for the suites about the account following its bookmarks (bookmarks.test.ts,
 * cluster-marks.test.ts).
 */
import { xml, type TestClient } from "./client.js";

export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_BM = "urn:xmpp:bookmarks:1";

/** XEP-0402 §3.2: publish (or replace) a bookmark, with the node configuration the XEP asks for. */
export async function publishBookmark(c: TestClient, room: string, autojoin: boolean, nick?: string, kind = "prosody"): Promise<void> {
  const field = (v: string, value: string, type?: string) => xml("field", type ? { var: v, type } : { var: v }, xml("value", {}, value));
  const conference = xml("conference", { xmlns: NS_BM, autojoin: String(autojoin), name: room.split("@")[0] }, ...(nick ? [xml("nick", {}, nick)] : []));
  await c.xmpp.iqCaller.set(
    xml("pubsub", { xmlns: NS_PUBSUB },
      xml("publish", { node: NS_BM }, xml("item", { id: room }, conference)),
      xml("publish-options", {}, xml("x", { xmlns: "jabber:x:data", type: "submit" },
        field("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options", "hidden"),
        field("pubsub#persist_items", "true"),
        // ejabberd 23.01 refuses these fields in publish-options (resource-constraint "Unknown field")
        ...(kind === "ejabberd" ? [] : [field("pubsub#max_items", "max"), field("pubsub#send_last_published_item", "never")]),
        field("pubsub#access_model", "whitelist")))),
  );
  if (kind !== "ejabberd") return;
  // ejabberd 23.01 creates the node keeping one item: configure it as XEP-0402 §3.2 asks (XEP-0060 §8.2.4), as clients do
  await c.xmpp.iqCaller.set(
    xml("pubsub", { xmlns: `${NS_PUBSUB}#owner` },
      xml("configure", { node: NS_BM }, xml("x", { xmlns: "jabber:x:data", type: "submit" },
        field("FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config", "hidden"),
        field("pubsub#max_items", "1000")))),
  );
}

export async function retractBookmark(c: TestClient, room: string): Promise<void> {
  await c.xmpp.iqCaller.set(xml("pubsub", { xmlns: NS_PUBSUB }, xml("retract", { node: NS_BM, notify: "true" }, xml("item", { id: room }))));
}
