// CSV input for `zygote run --input FILE.csv`: read as a stream by csv-parse (RFC 4180: quoted
// fields may hold commas, quotes and newlines; a BOM is dropped), a header row, and a type per
// column inferred from its values (integer, number, boolean, else text; an empty field is null).
// The file is never held whole as text; the table it becomes is, as any input table is.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { vectorFromArray, Bool, Float64, Int32, Table, Utf8, type DataType, type Vector } from 'apache-arrow';

/** A table from a CSV file with a header row; every row must have the header's width. */
export function csvFileToTable(path: string): Promise<Table> {
  return csvToTable(createReadStream(path));
}

/** The same from a stream or a string; rejects naming the row or line of what is wrong. */
export async function csvToTable(input: Readable | string): Promise<Table> {
  const source = typeof input === 'string' ? Readable.from([input]) : input;
  // Widths are checked here, not by csv-parse, so the error can name the header's width.
  const parser = source.pipe(parse({ bom: true, skip_empty_lines: true, relax_column_count: true }));
  let header: string[] | null = null;
  let columns: string[][] = [];
  let row = 1;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (header === null) {
        header = record;
        checkHeader(header);
        columns = header.map(() => []);
        continue;
      }
      row++;
      if (record.length !== header.length) throw new Error(`CSV: row ${row} has ${record.length} fields; the header has ${header.length}`);
      record.forEach((cell, c) => columns[c]!.push(cell));
    }
  } catch (err) {
    source.destroy();
    throw csvError(err as CsvError);
  }
  if (header === null) throw new Error('CSV: no header row');
  const out: Record<string, Vector> = {};
  header.forEach((name, c) => {
    const [type, values] = inferColumn(columns[c]!);
    out[name] = vectorFromArray(values as never, type) as Vector;
  });
  return new Table(out);
}

function checkHeader(header: string[]): void {
  if (header.length === 0 || (header.length === 1 && header[0] === '')) throw new Error('CSV: no header row');
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) throw new Error(`CSV: column ${JSON.stringify(name)} appears twice in the header`);
    seen.add(name);
  }
}

/** csv-parse's errors in this reader's words (ours pass through). */
function csvError(err: CsvError | Error): Error {
  if (!('code' in err)) return err;
  if (err.code === 'CSV_QUOTE_NOT_CLOSED') return new Error(`CSV: a quoted field never closes (from line ${err.lines})`, { cause: err });
  return new Error(`CSV: ${err.message}`, { cause: err });
}

function inferColumn(cells: string[]): [DataType, unknown[]] {
  const present = cells.filter((c) => c !== '');
  const nullable = <T>(f: (c: string) => T) => cells.map((c) => (c === '' ? null : f(c)));
  if (present.length > 0 && present.every((c) => /^-?\d{1,9}$/.test(c))) return [new Int32(), nullable(Number)];
  if (present.length > 0 && present.every((c) => c.trim() !== '' && Number.isFinite(Number(c)))) return [new Float64(), nullable(Number)];
  if (present.length > 0 && present.every((c) => c === 'true' || c === 'false')) return [new Bool(), nullable((c) => c === 'true')];
  return [new Utf8(), nullable((c) => c)];
}
