/** Human tables (kubectl style: upper-case headers, columns padded) and JSON output. */
export function printTable(
  rows: readonly object[],
  headers: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): void {
  const keys = rows.length ? Object.keys(rows[0]!) : [];
  out(
    formatColumns(
      headers,
      rows.map((r) => keys.map((k) => fmtCell((r as Record<string, unknown>)[k]))),
    ),
  );
  if (rows.length === 0) out('(none)\n');
}

/** Rows of cells under headers, each column padded to its widest cell (the last one is not). */
export function formatColumns(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: readonly string[]) =>
    `${cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd()}\n`;
  return [line(headers), ...rows.map(line)].join('');
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
