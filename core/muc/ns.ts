/** XML namespaces the room state machine reads and writes. */
export const NS_MUC = "http://jabber.org/protocol/muc"; // XEP-0045 §7.2: join request
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user"; // XEP-0045 §7.2.3: occupant items, status codes
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"; // XEP-0045 §8-§9: role/affiliation changes
export const NS_DELAY = "urn:xmpp:delay"; // XEP-0203: delayed delivery stamps on history
export const NS_PING = "urn:xmpp:ping"; // XEP-0199 / XEP-0410
export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"; // RFC 6120 §8.3 error conditions
export const NS_SID = "urn:xmpp:sid:0"; // XEP-0359: stanza-id / origin-id
