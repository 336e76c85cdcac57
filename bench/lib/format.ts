// Plain-text formatting for the bench's console output.
export function formatMs(ms: number): string {
  return Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '—';
}

export function formatMiB(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : '—';
}

/** Renders rows as an aligned table; the first row is the header. Numbers align right. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}

/** Long spans in seconds, short ones in milliseconds. */
export function formatDuration(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : formatMs(ms);
}
