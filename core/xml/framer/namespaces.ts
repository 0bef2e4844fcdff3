import { FramingError } from "../errors.js";

function badPrefix(message: string): FramingError {
  return new FramingError("XML_BAD_PREFIX", "bad-namespace-prefix", message);
}

/**
 * The namespace prefixes in scope (Namespaces in XML 1.0 §3, §5), so that a prefix used but never
 * declared is refused with <bad-namespace-prefix/> here, before it reaches the server, whose parser
 * would drop the whole stream. Only prefixes are tracked: which namespace they name does not
 * matter for that.
 */
export class NamespaceScopes {
  /** Prefixes declared (xmlns:p) by the open elements, innermost last, with their depth. */
  private scopes: { depth: number; prefixes: string[] }[] = [];

  clear(): void {
    this.scopes = [];
  }

  /**
   * Checks an element at `depth` whose tag declares `declared` prefixes and carries the prefixed
   * attribute names `prefixedAttrs` (xml:… excluded). Call only when there is something to check:
   * a declaration, a prefixed attribute, or a ':' in the element name.
   */
  check(name: string, declared: string[], prefixedAttrs: string[]): void {
    for (const p of declared) {
      if (p === "" || p.includes(":") || p === "xmlns") throw badPrefix("invalid namespace prefix declaration");
    }
    this.checkQName(name, false, declared);
    for (const a of prefixedAttrs) this.checkQName(a, true, declared);
  }

  /** An element at `depth` that declared `declared` was opened (not self-closing). */
  open(depth: number, declared: string[]): void {
    this.scopes.push({ depth, prefixes: declared });
  }

  /** The element at `depth` was closed: its declarations go out of scope. */
  close(depth: number): void {
    if (this.scopes.length !== 0 && this.scopes[this.scopes.length - 1]!.depth === depth) this.scopes.pop();
  }

  private checkQName(qname: string, isAttr: boolean, declared: string[]): void {
    const colon = qname.indexOf(":");
    if (colon < 0) return;
    const prefix = qname.slice(0, colon);
    if (colon === 0 || colon === qname.length - 1 || qname.indexOf(":", colon + 1) >= 0) {
      throw badPrefix("malformed qualified name");
    }
    if (prefix === "xml") return; // bound by definition (xml:lang)
    if (prefix === "xmlns") {
      if (isAttr) return;
      throw badPrefix("reserved prefix xmlns on an element");
    }
    if (declared.includes(prefix)) return;
    for (let k = this.scopes.length - 1; k >= 0; k--) if (this.scopes[k]!.prefixes.includes(prefix)) return;
    throw badPrefix("undeclared namespace prefix");
  }
}
