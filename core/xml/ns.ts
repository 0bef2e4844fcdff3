/** Every XML namespace the proxy reads or writes: the one place they are spelled out. */

// RFC 6120: streams, negotiation, errors
export const NS_STREAM = "http://etherx.jabber.org/streams"; // §4.8.1: the stream: prefix
export const NS_CLIENT = "jabber:client"; // §4.8.2: content namespace of a c2s stream
export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"; // §5: STARTTLS
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"; // §6: SASL
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"; // §7: resource binding
export const NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"; // §4.9.3: stream error conditions
export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"; // §8.3: stanza error conditions

// RFC 7395: XMPP over WebSocket
export const NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing";

// XEP-0045 Multi-User Chat
export const NS_MUC = "http://jabber.org/protocol/muc"; // §7.2: join request
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user"; // §7.2.3: occupant items, status codes
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"; // §8-§9: role/affiliation changes

// Other extensions
export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"; // XEP-0030
export const NS_PING = "urn:xmpp:ping"; // XEP-0199 / XEP-0410
export const NS_CSI = "urn:xmpp:csi:0"; // XEP-0352 client state indication
export const NS_CHATSTATES = "http://jabber.org/protocol/chatstates"; // XEP-0085 chat states
export const NS_OCCUPANT_ID = "urn:xmpp:occupant-id:0"; // XEP-0421: stable occupant ids on room stanzas
export const NS_EME = "urn:xmpp:eme:0"; // XEP-0380: explicit message encryption
export const NS_OMEMO_LEGACY = "eu.siacs.conversations.axolotl"; // XEP-0384 OMEMO before 0.4 (Conversations)
export const NS_OMEMO = "urn:xmpp:omemo:2"; // XEP-0384 OMEMO 0.8+
export const NS_OPENPGP = "urn:xmpp:openpgp:0"; // XEP-0373 OpenPGP for XMPP
export const NS_PGP_LEGACY = "jabber:x:encrypted"; // XEP-0027 legacy OpenPGP
export const NS_CONFERENCE = "jabber:x:conference"; // XEP-0249 direct MUC invitations
export const NS_DATA = "jabber:x:data"; // XEP-0004 data forms (XEP-0045 §8.6 voice requests)
export const NS_JINGLE_MESSAGE_0 = "urn:xmpp:jingle-message:0"; // XEP-0353 call propose/retract/accept
export const NS_JINGLE_MESSAGE_1 = "urn:xmpp:jingle-message:1"; // XEP-0353 1.0 namespace
export const NS_OOB = "jabber:x:oob"; // XEP-0066 out-of-band data (a shared file's URL)
export const NS_SFS = "urn:xmpp:sfs:0"; // XEP-0447 stateless file sharing
export const NS_DELAY = "urn:xmpp:delay"; // XEP-0203: delayed delivery stamps on history
export const NS_SID = "urn:xmpp:sid:0"; // XEP-0359: stanza-id / origin-id
export const NS_MAM_2 = "urn:xmpp:mam:2"; // XEP-0313: archive query results
export const NS_HINTS = "urn:xmpp:hints"; // XEP-0334: message processing hints (no-store, no-permanent-store)
export const NS_CARBONS = "urn:xmpp:carbons:2"; // XEP-0280 message carbons
export const NS_FORWARD = "urn:xmpp:forward:0"; // XEP-0297: stanza forwarding (inside carbons)
export const NS_SM_2 = "urn:xmpp:sm:2"; // XEP-0198 stream management, old version
export const NS_SM_3 = "urn:xmpp:sm:3"; // XEP-0198 stream management
export const NS_SASL2 = "urn:xmpp:sasl:2"; // XEP-0388
export const NS_BIND2 = "urn:xmpp:bind:0"; // XEP-0386
export const NS_FAST = "urn:xmpp:fast:0"; // XEP-0484
export const NS_SASL_CB = "urn:xmpp:sasl-cb:0"; // XEP-0440: channel-binding types
export const NS_PUSH = "urn:xmpp:push:0"; // XEP-0357 push notifications: <enable/>, <disable/>, <notification/>
export const NS_PUBSUB = "http://jabber.org/protocol/pubsub"; // XEP-0060: the publish a push is (XEP-0357 §7)
export const NS_BOOKMARKS = "urn:xmpp:bookmarks:1"; // XEP-0402 PEP native bookmarks (node and payload)
export const NS_BOOKMARKS_COMPAT = "urn:xmpp:bookmarks:1#compat"; // XEP-0402 §3.3: server keeps XEP-0048 in sync
export const NS_BOOKMARKS_LEGACY = "storage:bookmarks"; // XEP-0048 bookmark storage
export const NS_PRIVATE = "jabber:iq:private"; // XEP-0049 private XML storage (XEP-0048's home)
export const NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"; // XEP-0060 §7.1.2 notifications
