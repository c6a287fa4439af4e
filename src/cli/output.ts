/** Human tables (kubectl style: upper-case headers, columns padded) and JSON output. */
export function printTable(
  rows: readonly object[],
  headers: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): void {
  const keys = rows.length ? Object.keys(rows[0]!) : [];
  const cells = rows.map((r) => keys.map((k) => fmtCell((r as Record<string, unknown>)[k])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (cols: string[]) =>
    `${cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')}\n`;
  out(line(headers));
  for (const c of cells) out(line(c));
  if (rows.length === 0) out('(none)\n');
}

function fmtCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`);
}
