// The checks every options object gets at a public boundary: no key that is not known (a typo
// such as `limitz` must never silently run a child without limits), and how a bad value is shown.

/**
 * Throws a TypeError naming the first own key of obj that is not in known, where it was
 * (`startZygote()`, `spawn()`...) and what is known. path is the object's place in the options
 * (`limits.`, `mounts[0].`), so the message names the key as the caller wrote it.
 */
export function refuseUnknownKeys(obj: object, known: readonly string[], where: string, path = ''): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new TypeError(`Unknown option \`${path}${key}\` in ${where}; known: ${known.join(', ')}`);
  }
}

/** Whether v is an object that options may be read from (not null, not an array). */
export function isOptionsObject<T>(v: T): v is T & object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as an option's error message shows it. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `${JSON.stringify(v)} (string)`;
  if (typeof v === 'object') return `an object`;
  return `${String(v)} (${typeof v})`;
}
