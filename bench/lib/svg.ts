// A hand-written SVG bar chart for the bench's results: groups of bars side by side, each bar
// a median with a p99 whisker, on a log or linear axis. No dependencies.

export interface Bar {
  series: string;
  /** The bar's height (a median); null: nothing measured (skipped). */
  value: number | null;
  /** The whisker's top (a p99), if any. */
  high?: number | null;
}

export interface Group {
  label: string;
  bars: Bar[];
}

export interface Panel {
  title: string;
  unit: string;
  log: boolean;
  groups: Group[];
  /** The series this panel shows, in the legend's order (default: all). */
  series?: string[];
}

const PALETTE = ['#1b9e77', '#7570b3', '#d95f02', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];
const W = 960;
const PANEL_H = 330;
const M = { left: 70, right: 20, top: 60, bottom: 50 };

/** Panels stacked, one legend of every series on top. */
export function chart(title: string, subtitle: string, series: string[], panels: Panel[]): string {
  const color = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length];
  const legendH = 24;
  const height = 50 + legendH + panels.length * PANEL_H;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);
  let x = M.left;
  for (const s of series) {
    out.push(`<rect x="${x}" y="52" width="12" height="12" fill="${color(s)}"/><text x="${x + 16}" y="62">${esc(s)}</text>`);
    x += 24 + s.length * 7;
  }
  panels.forEach((p, i) => out.push(panel(p, 50 + legendH + i * PANEL_H, series.filter((s) => !p.series || p.series.includes(s)), color)));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function panel(p: Panel, top: number, series: string[], color: (s: string) => string): string {
  const out: string[] = [];
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = top + PANEL_H - M.bottom;
  const y1 = top + 40;
  const values = p.groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.high])).filter((v): v is number => typeof v === 'number' && v > 0);
  const max = Math.max(1, ...values);
  const min = Math.min(max, ...values);
  // A decade or so below the lowest bar, so the lowest bar is still a bar.
  const lo = p.log ? niceFloor(min / 2) : 0;
  const hi = niceCeil(max);
  const y = (v: number) => (p.log ? y0 - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (y0 - y1) : y0 - (v / hi) * (y0 - y1));
  out.push(`<text x="${x0}" y="${top + 22}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  // Grid and axis labels.
  const ticks = p.log ? logTicks(lo, hi) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * hi);
  for (const t of ticks) {
    out.push(`<line x1="${x0}" x2="${x1}" y1="${y(Math.max(t, lo || t)).toFixed(1)}" y2="${y(Math.max(t, lo || t)).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${(y(Math.max(t, lo || t)) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(t)}</text>`);
  }
  out.push(`<text transform="translate(${x0 - 52},${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" fill="#555">${esc(p.unit)}${p.log ? ' (log)' : ''}</text>`);
  out.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#333"/>`);
  const gw = (x1 - x0) / p.groups.length;
  p.groups.forEach((g, gi) => {
    const bw = (gw * 0.84) / series.length;
    const gx = x0 + gi * gw + gw * 0.08;
    out.push(`<text x="${(x0 + gi * gw + gw / 2).toFixed(1)}" y="${y0 + 18}" text-anchor="middle">${esc(g.label)}</text>`);
    series.forEach((s, si) => {
      const b = g.bars.find((bar) => bar.series === s);
      const bx = gx + si * bw;
      const cx = (bx + bw / 2).toFixed(1);
      if (!b || b.value === null || !(b.value > 0)) {
        out.push(`<text x="${cx}" y="${y0 - 4}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`);
        return;
      }
      const by = y(Math.max(b.value, lo || b.value));
      out.push(`<rect x="${(bx + 1).toFixed(1)}" y="${by.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y0 - by).toFixed(1)}" fill="${color(s)}"><title>${esc(`${s}, ${g.label}: ${fmt(b.value)} ${p.unit}${b.high != null ? `, p99 ${fmt(b.high)}` : ''}`)}</title></rect>`);
      let labelY = by - 4;
      if (b.high != null && b.high > b.value) {
        const hy = y(b.high);
        out.push(`<line x1="${cx}" x2="${cx}" y1="${by.toFixed(1)}" y2="${hy.toFixed(1)}" stroke="#222"/>`);
        out.push(`<line x1="${(bx + bw * 0.3).toFixed(1)}" x2="${(bx + bw * 0.7).toFixed(1)}" y1="${hy.toFixed(1)}" y2="${hy.toFixed(1)}" stroke="#222"/>`);
        labelY = hy - 4;
      }
      out.push(`<text x="${cx}" y="${labelY.toFixed(1)}" text-anchor="middle" font-size="9">${fmt(b.value)}</text>`);
    });
  });
  return out.join('\n');
}

/** 1, 2, 5 times the powers of ten from lo to hi. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = 10 ** Math.floor(Math.log10(lo)); e <= hi; e *= 10) {
    for (const m of [1, 2, 5]) if (m * e >= lo * 0.9999 && m * e <= hi * 1.0001) out.push(m * e);
  }
  return out;
}

function niceFloor(v: number): number {
  return 10 ** Math.floor(Math.log10(v));
}

function niceCeil(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1).replace(/\.0$/, '');
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
