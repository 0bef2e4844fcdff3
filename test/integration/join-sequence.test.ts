import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { connectClient, xml, type Element, type TestClient } from "../support/client.js";
import { startProxy, type ProxyProcess } from "../support/proxy-process.js";
import { upstreamServers } from "../support/servers.js";
import { NS_MUC, NS_MUC_ADMIN, codes, createRoom, groupchat, isSelfPresence, uniqueRoom } from "../support/muc.js";

const cert = inject("proxyCert");
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_MAM = "urn:xmpp:mam:2";
const NS_PING = "urn:xmpp:ping";

interface SequenceResult {
  features: string[];
  self: Element;
  history: string[]; // bodies of groupchat messages delivered with the join
  subject: Element;
  mamBodies: string[];
  mamFin: Element;
  queryid: string;
  ping: Element;
}

/** Sends `iq` and resolves with the answer of that id (result or error), whatever its type. */
async function ask(c: TestClient, iq: Element): Promise<Element> {
  const id = randomUUID();
  iq.attrs.id = id;
  await c.send(iq);
  return c.waitFor((el) => el.is("iq") && el.attrs.id === id && (el.attrs.type === "result" || el.attrs.type === "error"));
}

/**
 * What Conversations does when it opens a room (its MucOptions / MessageArchiveService path):
 * disco#info to the room, a join asking for no history (`maxchars='0'`, the archive will
 * supply it), a MAM query (XEP-0313 §4) to the room for the latest page, then a self-ping
 * (XEP-0410) to its own occupant JID.
 */
async function conversationsSequence(c: TestClient, room: string, nick: string): Promise<SequenceResult> {
  const info = await ask(c, xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS_DISCO_INFO })));
  expect(info.attrs.type, info.toString()).toBe("result");
  const features = (info.getChild("query", NS_DISCO_INFO)?.getChildren("feature") ?? []).map((f) => String(f.attrs.var)).sort();

  const joinId = randomUUID();
  const start = c.received.length;
  await c.send(xml("presence", { to: `${room}/${nick}`, id: joinId },
    xml("c", { xmlns: "http://jabber.org/protocol/caps", hash: "sha-1", node: "http://conversations.im", ver: "test" }),
    xml("x", { xmlns: NS_MUC }, xml("history", { maxchars: "0" }))));
  const self = await c.waitFor((el) => el.is("presence") && String(el.attrs.from) === `${room}/${nick}` && (codes(el).includes("110") || el.attrs.type === "error"));
  expect(self.attrs.type, self.toString()).toBeUndefined();
  const subject = await c.waitFor((el) => el.is("message") && el.attrs.from !== undefined && String(el.attrs.from).startsWith(room) &&
    el.getChild("subject") !== undefined && el.getChild("body") === undefined);
  const history = c.received.slice(start).filter((el) => el.is("message") && el.attrs.type === "groupchat" && el.getChild("body") !== undefined)
    .map((el) => el.getChildText("body") ?? "");

  const queryid = randomUUID();
  const form = xml("x", { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS_MAM)));
  const mamStart = c.received.length;
  const mam = await ask(c, xml("iq", { type: "set", to: room },
    xml("query", { xmlns: NS_MAM, queryid }, form, xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, xml("max", {}, "50"), xml("before")))));
  expect(mam.attrs.type, mam.toString()).toBe("result");
  const mamBodies = c.received.slice(mamStart).flatMap((el) => {
    const r = el.is("message") ? el.getChild("result", NS_MAM) : undefined;
    if (!r || r.attrs.queryid !== queryid) return [];
    expect(el.attrs.from).toBe(room);
    expect(el.attrs.to).toBe(c.jid);
    return [r.getChild("forwarded", "urn:xmpp:forward:0")?.getChild("message")?.getChildText("body") ?? ""];
  });

  const ping = await ask(c, xml("iq", { type: "get", to: `${room}/${nick}` }, xml("ping", { xmlns: NS_PING })));
  return { features, self, history, subject, mamBodies, mamFin: mam.getChild("fin", NS_MAM)!, queryid, ping };
}

describe.each(upstreamServers())("Conversations' join sequence against a real $kind", (server) => {
  let proxy: ProxyProcess;
  const clients: TestClient[] = [];

  async function connect(user: "alice" | "bob" | "carol", resource: string, port: number): Promise<TestClient> {
    const c = await connectClient({ port, username: user, password: `${user}pass`, resource: `${resource}-${randomUUID().slice(0, 4)}` });
    clients.push(c);
    await c.send(xml("presence"));
    return c;
  }

  beforeAll(async () => {
    proxy = await startProxy({ upstreamPort: server.port, upstreamCa: server.certFile, cert: cert.certFile, key: cert.keyFile });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await proxy?.stop();
  });

  for (const membersOnly of [false, true]) {
    it(`${membersOnly ? "members-only" : "open"} room: disco#info, join with maxchars='0', MAM, self-ping answered through the proxy as directly, for a first and a second session`, async () => {
      const room = uniqueRoom(server.muc, membersOnly ? "convmembers" : "convopen");
      const bob = await connect("bob", "owner", server.port);
      await createRoom(bob, room, "bob", membersOnly ? { "muc#roomconfig_membersonly": "1" } : {});
      if (membersOnly) {
        // XEP-0045 §9.5: the owner makes alice and carol members (one item per request: Prosody 0.12 reads only the first)
        for (const u of ["alice", "carol"]) {
          await bob.xmpp.iqCaller.set(xml("query", { xmlns: NS_MUC_ADMIN }, xml("item", { affiliation: "member", jid: `${u}@localhost` })), room);
        }
      }
      for (let i = 0; i < 3; i++) await groupchat(bob, room, `archived ${i}`);
      await bob.waitFor((el) => el.is("message") && el.getChildText("body") === "archived 2");

      // the yardstick: carol straight on the server
      const carol = await connect("carol", "direct", server.port);
      const direct = await conversationsSequence(carol, room, "carol");
      // through the proxy: the phone joins first (upstream), the laptop second (answered from state)
      const phone = await connect("alice", "phone", proxy.port);
      const viaFirst = await conversationsSequence(phone, room, "alice");
      const laptop = await connect("alice", "laptop", proxy.port);
      const viaSecond = await conversationsSequence(laptop, room, "alice");

      expect(direct.features).toContain(membersOnly ? "muc_membersonly" : "muc_open");
      expect(direct.features).toContain(NS_MAM);
      for (const [via, c] of [[viaFirst, phone], [viaSecond, laptop]] as const) {
        expect(via.features).toEqual(direct.features);
        expect(isSelfPresence(via.self, room)).toBe(true);
        expect(via.self.attrs.to).toBe(c.jid);
        expect(via.history).toEqual(direct.history); // maxchars='0': none
        expect(via.subject.attrs.to).toBe(c.jid);
        expect(via.mamBodies).toEqual(direct.mamBodies);
        expect(via.mamFin.attrs.complete ?? "false").toBe(direct.mamFin.attrs.complete ?? "false");
        expect(via.ping.attrs.type).toBe(direct.ping.attrs.type);
        expect(via.ping.attrs.from).toBe(`${room}/alice`);
      }
      // each session's archive page reached that session only (the query went out on its own leg)
      for (const [via, c] of [[viaFirst, phone], [viaSecond, laptop]] as const) {
        const pages = c.received.flatMap((el) => (el.is("message") ? [el.getChild("result", NS_MAM)?.attrs.queryid] : [])).filter((q) => q !== undefined);
        expect(new Set(pages)).toEqual(new Set([via.queryid]));
      }
      expect(direct.history).toEqual([]);
      expect(direct.mamBodies).toEqual(["archived 0", "archived 1", "archived 2"]);
      expect(direct.ping.attrs.type).toBe("result");
    });
  }
});
