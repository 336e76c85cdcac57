// A small CSV reader for `zygote run --input FILE.csv`: RFC 4180 (quoted fields may hold commas,
// quotes and newlines), a header row, and a type per column inferred from its values (integer,
// number, boolean, else text; an empty field is null).
import { vectorFromArray, Bool, Float64, Int32, Table, Utf8, type DataType, type Vector } from 'apache-arrow';

/** Splits CSV text into rows of fields; throws naming the line of an unterminated quote. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let quoteLine = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
      quoteLine = line;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      line++;
    } else field += c;
  }
  if (quoted) throw new Error(`CSV: the quoted field opened on line ${quoteLine} never closes`);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

/** A table from CSV text with a header row; every row must have the header's width. */
export function csvToTable(text: string): Table {
  const [header, ...rows] = parseCsv(text);
  if (!header || header.length === 0) throw new Error('CSV: no header row');
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new Error(`CSV: column ${JSON.stringify(name)} appears twice in the header`);
    seen.add(name);
  }
  rows.forEach((r, i) => {
    if (r.length !== header.length) throw new Error(`CSV: row ${i + 2} has ${r.length} fields; the header has ${header.length}`);
  });
  const columns: Record<string, Vector> = {};
  header.forEach((name, c) => {
    const cells = rows.map((r) => r[c]!);
    const [type, values] = inferColumn(cells);
    columns[name] = vectorFromArray(values as never, type) as Vector;
  });
  return new Table(columns);
}

function inferColumn(cells: string[]): [DataType, unknown[]] {
  const present = cells.filter((c) => c !== '');
  const nullable = <T>(f: (c: string) => T) => cells.map((c) => (c === '' ? null : f(c)));
  if (present.length > 0 && present.every((c) => /^-?\d{1,9}$/.test(c))) return [new Int32(), nullable(Number)];
  if (present.length > 0 && present.every((c) => c.trim() !== '' && Number.isFinite(Number(c)))) return [new Float64(), nullable(Number)];
  if (present.length > 0 && present.every((c) => c === 'true' || c === 'false')) return [new Bool(), nullable((c) => c === 'true')];
  return [new Utf8(), nullable((c) => c)];
}
