/** Hand-made SVG line charts: no dependency, just enough axes, ticks, legends and error bars. */

export interface Point {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
}

export interface Series {
  name: string;
  color: string;
  points: Point[];
  /** Draw markers (default true) and lines (default true). */
  markers?: boolean;
  line?: boolean;
  dash?: string;
}

export interface PanelOptions {
  title: string;
  xlabel: string;
  ylabel: string;
  xlog?: boolean;
  ylog?: boolean;
  series: Series[];
  hlines?: { y: number; label: string; color?: string }[];
  xmin?: number;
  xmax?: number;
  ymin?: number;
  ymax?: number;
  xticks?: number[];
  /** Legend corner: top-left (default) or bottom-right. */
  legend?: "tl" | "br";
}

export const COLORS = { direct: "#1f77b4", relay: "#7f7f7f", proxy: "#d62728", extra: "#2ca02c" };

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  if (a >= 1 || a === 0) return String(Number(v.toPrecision(3)));
  return String(Number(v.toPrecision(2)));
}

/** One chart panel at (x, y) of size w × h, as an SVG group. */
export function panel(x: number, y: number, w: number, h: number, o: PanelOptions): string {
  const pts = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = pts.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]).concat((o.hlines ?? []).map((l) => l.y));
  let x0 = o.xmin ?? Math.min(...pts.map((p) => p.x));
  let x1 = o.xmax ?? Math.max(...pts.map((p) => p.x));
  let y0 = o.ymin ?? (o.ylog ? Math.min(...ys) : Math.min(0, ...ys));
  let y1 = o.ymax ?? Math.max(...ys);
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (o.xlog) {
    x0 = Math.max(x0, 1e-9) / 1.3;
    x1 *= 1.3;
  } else if (x1 === x0) {
    x1 = x0 + 1;
  }
  if (o.ylog) {
    y0 = Math.max(Math.min(y0, y1), 1e-9) / 1.5;
    y1 *= 1.5;
  } else {
    y1 = y1 + (y1 - y0) * 0.08 || 1;
  }
  const L = 62, R = 12, T = 26, B = 42;
  const pw = w - L - R;
  const ph = h - T - B;
  const sx = (v: number): number => L + (o.xlog ? (Math.log(v) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) : (v - x0) / (x1 - x0)) * pw;
  const sy = (v: number): number => T + ph - (o.ylog ? (Math.log(Math.max(v, 1e-12)) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) : (v - y0) / (y1 - y0)) * ph;
  const out: string[] = [`<g transform="translate(${x},${y})" font-family="sans-serif" font-size="11">`];
  out.push(`<rect x="0" y="0" width="${w}" height="${h}" fill="#fff"/>`);
  out.push(`<text x="${w / 2}" y="15" text-anchor="middle" font-size="13" font-weight="bold">${esc(o.title)}</text>`);
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  const xt = o.xticks ?? (o.xlog ? logTicks(x0, x1) : niceTicks(x0, x1));
  for (const v of xt) {
    if (v < x0 || v > x1) continue;
    const px = sx(v).toFixed(1);
    out.push(`<line x1="${px}" y1="${T}" x2="${px}" y2="${T + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px}" y="${T + ph + 14}" text-anchor="middle">${label(v)}</text>`);
  }
  for (const v of o.ylog ? logTicks(y0, y1) : niceTicks(y0, y1)) {
    const py = sy(v).toFixed(1);
    out.push(`<line x1="${L}" y1="${py}" x2="${L + pw}" y2="${py}" stroke="#eee"/>`);
    out.push(`<text x="${L - 5}" y="${Number(py) + 4}" text-anchor="end">${label(v)}</text>`);
  }
  out.push(`<text x="${L + pw / 2}" y="${h - 8}" text-anchor="middle">${esc(o.xlabel)}</text>`);
  out.push(`<text transform="translate(14,${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.ylabel)}</text>`);
  for (const l of o.hlines ?? []) {
    const py = sy(l.y).toFixed(1);
    out.push(`<line x1="${L}" y1="${py}" x2="${L + pw}" y2="${py}" stroke="${l.color ?? "#2ca02c"}" stroke-dasharray="6 3"/>`);
    out.push(`<text x="${L + pw - 4}" y="${Number(py) - 4}" text-anchor="end" fill="${l.color ?? "#2ca02c"}">${esc(l.label)}</text>`);
  }
  out.push(`<clipPath id="c${x}_${y}"><rect x="${L}" y="${T}" width="${pw}" height="${ph}"/></clipPath><g clip-path="url(#c${x}_${y})">`);
  for (const s of o.series) {
    const ps = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (s.line !== false && ps.length > 1) {
      const d = ps.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    }
    for (const p of ps) {
      if (p.lo !== undefined && p.hi !== undefined) {
        const px = sx(p.x).toFixed(1);
        out.push(`<line x1="${px}" y1="${sy(p.lo).toFixed(1)}" x2="${px}" y2="${sy(p.hi).toFixed(1)}" stroke="${s.color}"/>`);
      }
      if (s.markers !== false) out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    }
  }
  out.push("</g>");
  // legend
  const lw = Math.max(...o.series.map((s) => s.name.length)) * 6.2 + 40;
  const lh = o.series.length * 14 + 6;
  const lx = o.legend === "br" ? L + pw - lw - 4 : L + 4;
  const ly0 = o.legend === "br" ? T + ph - lh - 4 : T + 4;
  out.push(`<rect x="${lx}" y="${ly0}" width="${lw}" height="${lh}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>`);
  o.series.forEach((s, i) => {
    const ly = ly0 + 14 + i * 14;
    out.push(`<line x1="${lx + 6}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push("</g>");
  return out.join("\n");
}

export function svgDoc(w: number, h: number, body: string[], title: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">\n<title>${esc(title)}</title>\n<rect width="100%" height="100%" fill="#fff"/>\n${body.join("\n")}\n</svg>\n`;
}
