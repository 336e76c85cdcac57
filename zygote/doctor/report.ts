// Pure formatting of a doctor report: a plain-text table for people, JSON for programs.
import type { DoctorReport, ProbeResult } from './types.js';

export interface TableOptions {
  /** Wrap the detail column so lines stay within this many characters (default 110). */
  width?: number;
}

/** Greedy word wrap; a word longer than width stays whole on its own line. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.length ? lines : [''];
}

function layerList(report: DoctorReport, names: string[]): string {
  return names.map((n) => `${n} (${report.results.find((r) => r.layer === n)?.status ?? '?'})`).join(', ');
}

/** The summary sentences under the table (also what the exit code means). */
export function formatSummary(report: DoctorReport): string {
  const required = report.results.filter((r) => r.required);
  const lines: string[] = [];
  if (report.failing.length === 0) {
    lines.push(`All ${required.length} required layers are available: the sandbox can be enforced on this host (exit 0).`);
  } else {
    lines.push(`${report.failing.length} of ${required.length} required layers are not available: ${layerList(report, report.failing)}. The sandbox cannot be enforced on this host (exit 1).`);
  }
  if (report.warnings.length) lines.push(`Warnings: ${layerList(report, report.warnings)}; see their fix lines.`);
  return lines.join('\n');
}

/** The table: one row per layer, its fix (if any) on the lines under it, then the summary. */
export function formatTable(report: DoctorReport, options: TableOptions = {}): string {
  const width = options.width ?? 110;
  const head = { layer: 'LAYER', status: 'STATUS', need: 'NEED' };
  const need = (r: ProbeResult) => (r.required ? 'required' : 'advisory');
  const wLayer = Math.max(head.layer.length, ...report.results.map((r) => r.layer.length));
  const wStatus = Math.max(head.status.length, ...report.results.map((r) => r.status.length));
  const wNeed = Math.max(head.need.length, ...report.results.map((r) => need(r).length));
  const indent = wLayer + wStatus + wNeed + 6;
  const detailWidth = Math.max(30, width - indent);
  const pad = ' '.repeat(indent);
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(wLayer)}  ${b.padEnd(wStatus)}  ${c.padEnd(wNeed)}  ${d}`.trimEnd();

  const out: string[] = [];
  const h = report.host;
  out.push(`zygote doctor: Linux ${h.kernel} ${h.arch}, Node ${h.node}, euid ${h.euid}`);
  out.push('');
  out.push(row(head.layer, head.status, head.need, 'DETAIL'));
  for (const r of report.results) {
    const [first, ...rest] = wrap(r.detail, detailWidth);
    out.push(row(r.layer, r.status, need(r), first));
    for (const l of rest) out.push(pad + l);
    if (r.fix) {
      // "fix: " and then the text, its continuation lines aligned under the text.
      const [f1, ...frest] = wrap(r.fix, detailWidth - 5);
      out.push(`${pad}fix: ${f1}`);
      for (const l of frest) out.push(`${pad}     ${l}`);
    }
  }
  out.push('');
  for (const line of formatSummary(report).split('\n')) out.push(...wrap(line, width));
  return `${out.join('\n')}\n`;
}

/** The whole report as JSON (host, results with their data, failing, warnings, exitCode). */
export function formatJson(report: DoctorReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
