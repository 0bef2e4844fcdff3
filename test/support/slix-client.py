#!/usr/bin/python3
"""
A client driven by the tests, written with slixmpp (Debian's python3-slixmpp): another client library
than the suite's @xmpp/client, with its own habits (STARTTLS, its SASL choice, XEP-0198 with resumption,
XEP-0045 joins). Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout.

    slix-client.py JID PASSWORD HOST PORT CA_FILE [starttls|direct]

Commands: {"op": "join", "room": R, "nick": N} · {"op": "say", "room": R, "body": B, "id": I}
          {"op": "post", "room": R, "nick": N, "body": B, "id": I} (join, say, leave back to back)
          {"op": "leave", "room": R, "nick": N} · {"op": "cut"} (drop the TCP connection as a dead
          network does, then connect again: slixmpp resumes the stream if it can) · {"op": "quit"}
Events:   ready (session started: jid, SASL mechanism) · sm (XEP-0198 enabled: resumable) · joined (room, occupants) ·
          groupchat (room, nick, body, id) · presence (from, type, codes) · resumed · error (text)
"""
import asyncio
import json
import logging
import os
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath


def emit(ev, **fields):
    sys.stdout.write(json.dumps({"ev": ev, **fields}) + "\n")
    sys.stdout.flush()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, ca_file):
        super().__init__(jid, password)
        self.ca_certs = ca_file
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0198")
        self.mechanism = None
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("session_resumed", lambda _e: emit("resumed", jid=str(self.boundjid)))
        self.add_event_handler("sm_enabled", lambda _e: emit("sm", resumable=bool(self.plugin["xep_0198"].sm_id)))
        self.add_event_handler("groupchat_message", self.on_groupchat)
        # every presence as it arrives: slixmpp's own events skip a room's answer to a leave (the room
        # is forgotten when the leave is sent) and roster updates for room JIDs
        self.register_handler(Callback("test presence", StanzaPath("presence"), self.on_presence))
        self.add_event_handler("auth_success", self.on_auth)
        self.add_event_handler("failed_all_auth", lambda _e: emit("error", text="authentication failed"))
        self.add_event_handler("stream_error", lambda e: emit("error", text=f"stream error {e['condition']}"))

    def on_auth(self, _event):
        self.mechanism = getattr(self.plugin["feature_mechanisms"], "mech", None)
        self.mechanism = getattr(self.mechanism, "name", None)

    async def on_start(self, _event):
        emit("ready", jid=str(self.boundjid), mechanism=self.mechanism)

    def on_groupchat(self, msg):
        emit("groupchat", room=str(msg["from"].bare), nick=msg["mucnick"], body=msg["body"], id=msg["id"])

    def on_presence(self, pres):
        codes = [int(s.attrib["code"]) for s in pres.xml.iter("{http://jabber.org/protocol/muc#user}status") if "code" in s.attrib]
        emit("presence", **{"from": str(pres["from"]), "type": pres["type"], "codes": codes})


async def commands(c):
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "join":
                # slixmpp waits for the self-presence, then the subject (XEP-0045 §7.2.15: always sent)
                own, subject, occupants, _history = await c.plugin["xep_0045"].join_muc_wait(
                    slixmpp.JID(cmd["room"]), cmd["nick"], maxstanzas=0, timeout=30)
                emit("joined", room=cmd["room"], nick=own["from"].resource, subject=subject["subject"],
                     occupants=sorted({str(p["from"].resource) for p in occupants} | {own["from"].resource}))
            elif op == "post":
                # a bot's habit (go-sendxmpp, notification scripts): join, say, leave, without waiting
                # (stanzas built by hand: the plugin's join_muc sends its presence later, and its
                # leave_muc refuses a room it has not seen joined)
                occupant = f'{cmd["room"]}/{cmd["nick"]}'
                p = c.make_presence(pto=occupant)
                p.enable("muc_join")
                p["muc_join"]["history"]["maxstanzas"] = "0"
                p.send()
                m = c.make_message(mto=cmd["room"], mbody=cmd["body"], mtype="groupchat")
                m["id"] = cmd["id"]
                m.send()
                c.make_presence(pto=occupant, ptype="unavailable").send()
            elif op == "say":
                m = c.make_message(mto=cmd["room"], mbody=cmd["body"], mtype="groupchat")
                m["id"] = cmd["id"]
                m.send()
            elif op == "leave":
                c.plugin["xep_0045"].leave_muc(slixmpp.JID(cmd["room"]), cmd["nick"])
            elif op == "cut":
                # the network goes away under the stream: no </stream:stream>, no TLS close_notify
                address = c.address
                direct_tls = c.use_ssl

                async def again(_event):
                    await asyncio.sleep(0)
                    c.connect(address=address, use_ssl=direct_tls)
                c.add_event_handler("disconnected", again, disposable=True)
                c.transport.abort()
            elif op == "quit":
                c.disconnect()
                await c.disconnected
                break
        except (IqError, IqTimeout, PresenceError, asyncio.TimeoutError) as e:
            emit("error", text=f"{op}: {type(e).__name__} {e}")


def main():
    jid, password, host, port, ca_file = sys.argv[1:6]
    direct = len(sys.argv) > 6 and sys.argv[6] == "direct"  # XEP-0368 direct TLS, not STARTTLS
    logging.basicConfig(level=logging.DEBUG if os.environ.get("SLIX_DEBUG") else logging.ERROR, stream=sys.stderr)
    c = Client(jid, password, ca_file)
    c.connect(address=(host, int(port)), use_ssl=direct)
    asyncio.get_event_loop().run_until_complete(commands(c))


if __name__ == "__main__":
    main()
