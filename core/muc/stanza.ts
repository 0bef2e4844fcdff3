import { Element, clone } from "ltx";
import { NS_DELAY } from "../xml/ns.js";

/** Deep copy (ltx 3 elements have no clone method; its clone() function copies attrs and children). */
export function copyOf(el: Element): Element {
  return clone(el);
}

/** String attribute or undefined (ltx types attrs as any). */
export function attr(el: Element, name: string): string | undefined {
  const v: unknown = el.attrs[name];
  return typeof v === "string" ? v : undefined;
}

/** A copy of `el` addressed to `to`; everything else (id, from, children) unchanged. */
export function addressedTo(el: Element, to: string): Element {
  const c = copyOf(el);
  c.attrs.to = to;
  return c;
}

/** Sets or removes the id attribute in place; returns the element. */
export function withId(el: Element, id: string | undefined): Element {
  if (id === undefined) delete el.attrs.id;
  else el.attrs.id = id;
  return el;
}

/** A copy prepared for the account session's stream: `from` removed (the proxy sets it). */
export function forUpstream(el: Element): Element {
  const c = copyOf(el);
  delete c.attrs.from;
  return c;
}

/** Direct element children with a given name and namespace (ltx getChildren matches inherited ns too). */
export function removeChildren(el: Element, name: string, xmlns?: string): void {
  for (const child of el.getChildren(name, xmlns)) el.remove(child);
}

export function hasDelay(el: Element): boolean {
  return el.getChild("delay", NS_DELAY) !== undefined;
}

/** XEP-0082 DateTime with millisecond precision (allowed fractional seconds). */
export function isoStamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** Serialisation used to compare stanzas for "did it change" decisions, ignoring routing attributes. */
export function contentKey(el: Element): string {
  const c = copyOf(el);
  delete c.attrs.to;
  delete c.attrs.from;
  delete c.attrs.id;
  return c.toString();
}
