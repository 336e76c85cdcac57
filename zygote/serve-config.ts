// `zygote serve`'s options from three places besides its flags: ZYGOTE_* environment variables
// and a config file (`--config FILE` or ZYGOTE_CONFIG, JSON or TOML, keys are the flags' long
// names in camelCase). Precedence: flags > environment > file > defaults. Every value goes
// through its flag's own parser, so a bad one is refused with the same message, naming where it
// came from; an unknown file key is an error. An unknown ZYGOTE_* variable is only warned about:
// the environment is shared with other tools (the renderer's own ZYGOTE_SOCKET, say).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command, Option } from 'commander';
import { parse as parseToml } from 'smol-toml';

/** Where a serve option's value may come from besides the command line. */
export interface ServeConfigSources {
  env: Readonly<Record<string, string | undefined>>;
  /** Options that may be given more than once: a list in the file, a JSON array in the environment. */
  repeatable: ReadonlySet<string>;
}

/** The variable that names a flag: --max-children is ZYGOTE_MAX_CHILDREN. */
export function envNameOf(option: Option): string {
  return `ZYGOTE_${option.long!.slice(2).toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Fills the values cmd's command line left unset, from the environment, then the config file.
 * Returns warnings for the log; throws an Error naming the variable or key that is wrong.
 */
export function applyConfigSources(cmd: Command, sources: ServeConfigSources): string[] {
  const warnings: string[] = [];
  const options = cmd.options.filter((o) => o.long !== undefined && o.long !== '--config' && o.long !== '--help');
  const byEnv = new Map(options.map((o) => [envNameOf(o), o]));
  for (const name of Object.keys(sources.env)) {
    if (name.startsWith('ZYGOTE_') && name !== 'ZYGOTE_CONFIG' && !byEnv.has(name) && sources.env[name] !== undefined) {
      warnings.push(`ignoring the environment variable ${name}: no zygote serve flag is named so`);
    }
  }
  const path = cmd.getOptionValueSource('config') === 'cli' ? (cmd.getOptionValue('config') as string) : (sources.env.ZYGOTE_CONFIG ?? null);
  const file = path === null ? {} : readConfigFile(path);
  const byKey = new Map(options.map((o) => [o.attributeName(), o]));
  for (const key of Object.keys(file)) {
    if (!byKey.has(key)) throw new Error(`config file ${path}: unknown key \`${key}\` (known: ${[...byKey.keys()].join(', ')})`);
  }
  for (const option of options) {
    const key = option.attributeName();
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    const envName = envNameOf(option);
    const fromEnv = sources.env[envName];
    if (fromEnv !== undefined) {
      cmd.setOptionValueWithSource(key, valueOf(option, envValue(option, fromEnv, sources.repeatable.has(key), envName), sources.repeatable.has(key), envName), 'env');
    } else if (key in file) {
      cmd.setOptionValueWithSource(key, valueOf(option, file[key], sources.repeatable.has(key), `config file ${path}: \`${key}\``), 'config');
    }
  }
  return warnings;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const ext = extname(path).toLowerCase();
  let parsed: unknown;
  try {
    if (ext === '.json') parsed = JSON.parse(text);
    else if (ext === '.toml') parsed = parseToml(text);
    else throw new Error('its name must end in .json or .toml');
  } catch (err) {
    throw new Error(`config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`config file ${path}: expected a table of options at its top level`);
  return parsed as Record<string, unknown>;
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

/** An environment value as the file would give it: a JSON array for a repeatable option. */
function envValue(option: Option, raw: string, repeatable: boolean, where: string): unknown {
  if (!takesValue(option)) {
    if (raw === '1' || raw === 'true') return true;
    if (raw === '0' || raw === 'false') return false;
    throw new Error(`${where}: expected true, false, 1 or 0, got ${JSON.stringify(raw)}`);
  }
  if (repeatable && raw.trimStart().startsWith('[')) {
    try {
      return JSON.parse(raw) as unknown;
    } catch (err) {
      throw new Error(`${where}: not a JSON array: ${(err as Error).message}`, { cause: err });
    }
  }
  return raw;
}

/** A file or environment value through the flag's own parser, as if given on the command line. */
function valueOf(option: Option, value: unknown, repeatable: boolean, where: string): unknown {
  if (!takesValue(option)) {
    if (typeof value !== 'boolean') throw new Error(`${where}: expected true or false, got ${JSON.stringify(value)}`);
    return value;
  }
  const one = (v: unknown, previous: unknown): unknown => {
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${where}: expected a string or a number, got ${JSON.stringify(v)}`);
    const text = String(v);
    if (!option.parseArg) return text;
    try {
      return option.parseArg(text, previous as never);
    } catch (err) {
      throw new Error(`${where}: ${JSON.stringify(text)}: ${(err as Error).message}`, { cause: err });
    }
  };
  if (!repeatable) return one(value, undefined);
  // --env may also be a table: { LC_ALL = "C.UTF-8" }.
  const items = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.entries(value).map(([k, v]) => `${k}=${String(v)}`) : [value];
  let acc: unknown = undefined;
  for (const item of items) acc = one(item, acc);
  return acc;
}
