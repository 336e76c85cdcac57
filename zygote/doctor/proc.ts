// Read-only looks into /proc and /sys for the doctor: missing files are facts, not errors.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

/** A file's text, or null when it does not exist or cannot be read. */
export function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** A sysctl-style file's value without its trailing newline, or null when absent. */
export function readValue(path: string): string | null {
  const text = readText(path);
  return text === null ? null : text.trim();
}

/** A sysctl-style file's integer value, or null when absent or not a number. */
export function readInt(path: string): number | null {
  const value = readValue(path);
  if (value === null || !/^-?\d+$/.test(value)) return null;
  return Number(value);
}

export function exists(path: string): boolean {
  return existsSync(path);
}

/** Whether this process may write into path: null when it may, else the errno's code. */
export function writeDenied(path: string): string | null {
  try {
    accessSync(path, constants.W_OK);
    return null;
  } catch (e) {
    return errorCode(e);
  }
}

export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(e);
}

/** The "Name:\tvalue" fields of a /proc/<pid>/status text. */
export function parseStatus(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** This process's /proc/self/status fields (empty when /proc is not mounted). */
export function selfStatus(): Map<string, string> {
  return parseStatus(readText('/proc/self/status') ?? '');
}

/** "6.18.44-fc-v657" -> [6, 18, 44]; null when the release does not start with a version. */
export function parseKernelVersion(rel: string = release()): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(rel);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

/** Whether the running kernel is at least major.minor (false when it cannot be told). */
export function kernelAtLeast(major: number, minor: number, rel: string = release()): boolean {
  const v = parseKernelVersion(rel);
  return v !== null && (v[0] > major || (v[0] === major && v[1] >= minor));
}
