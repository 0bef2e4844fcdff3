/**
 * SCRAM credentials from a XEP-0227 (PIEFXIS) export, as `ejabberdctl export_piefxis DIR` and
 * `export_piefxis_host DIR HOST` write them (ejabberd 23.01; a main file that xi:includes one file
 * per host), and other servers' exporters:
 *
 *   <host xmlns='urn:xmpp:pie:0' jid='localhost'>
 *     <user name='alice'>
 *       <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>
 *         <iter-count>4096</iter-count><salt>…</salt><server-key>…</server-key><stored-key>…</stored-key>
 *       </scram-credentials>
 *     </user>
 *   </host>
 *
 * XEP-0227 (since 1.1) gives salt and keys in base64. ejabberd 23.01 base64-encodes its own base64 strings
 * once more (its #scram record holds them base64-encoded): a key whose decoded length fits no hash
 * but whose decoding is itself base64 of the right length is read that way, and then so is the rest
 * of that element. A user with only a `password` attribute has a plain-text password on the server:
 * reported, not imported. The caller reads the files; includes come back as names to resolve.
 */
import { Element, parse } from "ltx";
import { hashLength, parseScramMechanism } from "../sasl/scram-primitives.js";
import type { ScramVerifierRecord } from "../sasl/scram-server.js";
import { CredentialError } from "./errors.js";
import type { ImportedAccount } from "./merge.js";
import { normalizeAccount } from "./record.js";

const NS_PIE = ["urn:xmpp:pie:0", "http://www.xmpp.org/extensions/xep-0227.html#ns"];
const NS_SCRAM = "urn:xmpp:pie:0#scram";
const NS_XINCLUDE = "http://www.w3.org/2001/XInclude";

export type Xep0227Skip = { user: string; host: string; reason: "plain-password" | "no-credentials" | "not-a-served-host" };

export interface Xep0227Import {
  accounts: ImportedAccount[];
  skipped: Xep0227Skip[];
  /** xi:include hrefs of the file, for the caller to read (relative to the file). */
  includes: string[];
}

const bad = (detail: string): CredentialError => new CredentialError("CREDENTIAL_FORMAT", detail);

export function xep0227Accounts(xml: string, served: readonly string[]): Xep0227Import {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw bad("a document type declaration is not accepted");
  let root: Element;
  try {
    const el = parse(xml);
    if (!(el instanceof Element)) throw new Error("no element");
    root = el;
  } catch {
    throw bad("not well-formed XML");
  }
  const out: Xep0227Import = { accounts: [], skipped: [], includes: [] };
  const local = (el: Element): string => el.name.slice(el.name.indexOf(":") + 1);
  if (local(root) === "server-data" && NS_PIE.includes(root.attrs["xmlns"] as string)) {
    for (const child of root.children) {
      if (typeof child === "string") continue;
      if (local(child) === "host") readHost(child, served, out);
      else if (local(child) === "include" && isXInclude(child, root)) {
        const href = child.attrs["href"];
        if (typeof href !== "string" || href === "") throw bad("xi:include without href");
        out.includes.push(href);
      }
    }
  } else if (local(root) === "host" && NS_PIE.includes(root.attrs["xmlns"] as string)) {
    readHost(root, served, out);
  } else {
    throw bad("not a XEP-0227 export (no server-data or host element in urn:xmpp:pie:0)");
  }
  return out;
}

function isXInclude(el: Element, root: Element): boolean {
  const prefix = el.name.includes(":") ? el.name.slice(0, el.name.indexOf(":")) : "";
  const ns = prefix === "" ? el.attrs["xmlns"] : (el.attrs[`xmlns:${prefix}`] ?? root.attrs[`xmlns:${prefix}`]);
  return ns === NS_XINCLUDE;
}

function readHost(host: Element, served: readonly string[], out: Xep0227Import): void {
  const jid = host.attrs["jid"];
  if (typeof jid !== "string" || jid === "") throw bad("host without jid");
  const domain = jid.toLowerCase().replace(/\.$/, "");
  for (const user of host.getChildren("user")) {
    const name = user.attrs["name"];
    if (typeof name !== "string" || name === "") throw bad("user without name");
    if (!served.includes(domain)) {
      out.skipped.push({ user: name, host: domain, reason: "not-a-served-host" });
      continue;
    }
    const account = normalizeAccount(`${name}@${domain}`);
    if (account === null) throw bad("user name and host do not make a JID");
    const records: ImportedAccount["records"] = {};
    for (const sc of user.getChildren("scram-credentials", NS_SCRAM)) {
      const mech = parseScramMechanism(String(sc.attrs["mechanism"] ?? ""));
      if (mech === null || mech.plus) continue; // not a verifier the proxy can use
      records[mech.hash] = readScram(sc, hashLength(mech.hash));
    }
    if (Object.keys(records).length > 0) out.accounts.push({ account, records });
    else out.skipped.push({ user: name, host: domain, reason: typeof user.attrs["password"] === "string" && user.attrs["password"] !== "" ? "plain-password" : "no-credentials" });
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function b64(text: string, what: string): Buffer {
  const t = text.replace(/\s+/g, "");
  if (t === "" || !BASE64.test(t)) throw bad(`${what} is not base64`);
  return Buffer.from(t, "base64");
}

function readScram(sc: Element, len: number): ScramVerifierRecord {
  const text = (name: string): string => {
    const t = sc.getChildText(name);
    if (t === null) throw bad(`scram-credentials without ${name}`);
    return t;
  };
  const iterText = text("iter-count").trim();
  if (!/^[1-9][0-9]{0,8}$/.test(iterText)) throw bad("iter-count is not a positive integer");
  let storedKey = b64(text("stored-key"), "stored-key");
  let serverKey = b64(text("server-key"), "server-key");
  let salt = b64(text("salt"), "salt");
  if (storedKey.length !== len) {
    // ejabberd 23.01: base64 of its base64 strings
    const inner = storedKey.toString("latin1");
    if (!BASE64.test(inner) || Buffer.from(inner, "base64").length !== len) throw bad("stored-key length does not fit the mechanism");
    storedKey = Buffer.from(inner, "base64");
    serverKey = b64(serverKey.toString("latin1"), "server-key");
    salt = b64(salt.toString("latin1"), "salt");
  }
  if (serverKey.length !== len) throw bad("server-key length does not fit the mechanism");
  return { salt, iterations: Number(iterText), storedKey, serverKey };
}
