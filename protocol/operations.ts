// How a zygote is operated: its log (format, level, file), how long a stop drains running
// children, and where it serves metrics. Part of the zygote's configuration (protocol/config.ts),
// set by `zygote serve` flags, a config file or ZYGOTE_* variables (zygote/serve-config.ts).
import { InvalidOptionError } from './errors.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Severities, least verbose first: a log at a level writes that level and those before it. */
export const LOG_LEVELS = ['error', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogConfig {
  format: LogFormat;
  level: LogLevel;
  /** Append to this file (reopened on SIGHUP, for logrotate) instead of stderr. */
  file: string | null;
}

/** Where metrics are served: a TCP address, or a Unix socket path. */
export type MetricsAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface OperationsConfig {
  log: LogConfig;
  /** On SIGTERM: how long running children may go on before they are killed ('shutdown'). */
  drainMs: number;
  metrics: MetricsAddress | null;
}

export const DEFAULT_LOG: LogConfig = { format: 'text', level: 'info', file: null };
/** `zygote serve`'s drain bound; an embedded zygote stops at once (its client is gone). */
export const DEFAULT_DRAIN_MS = 10_000;
/** The longest drain a stop may ask: supervisors kill long before (systemd's default is 90 s). */
export const MAX_DRAIN_MS = 600_000;

/** Parses `host:port`, `[v6]:port` or `unix:/path`; throws naming what is wrong. */
export function parseMetricsAddress(value: string): MetricsAddress {
  if (value.startsWith('unix:')) {
    const path = value.slice(5);
    if (!path.startsWith('/')) throw new InvalidOptionError(`a metrics address unix:PATH needs an absolute path, got ${JSON.stringify(value)}`);
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new InvalidOptionError(`a metrics address is HOST:PORT (port 1-65535) or unix:/PATH, got ${JSON.stringify(value)}`);
  return { kind: 'tcp', host: m[1] ?? m[2], port };
}

export function formatMetricsAddress(a: MetricsAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Checks a decoded operations config, filling what is absent with the defaults. */
export function normalizeOperations(raw: unknown, drainDefault: number): OperationsConfig {
  const o = (raw ?? {}) as Partial<OperationsConfig>;
  if (typeof o !== 'object') throw new InvalidOptionError('Expected `operations` to be an object');
  const log = { ...DEFAULT_LOG, ...(o.log ?? {}) };
  if (!LOG_FORMATS.includes(log.format)) throw new InvalidOptionError(`Expected \`log.format\` to be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(log.format)}`);
  if (!LOG_LEVELS.includes(log.level)) throw new InvalidOptionError(`Expected \`log.level\` to be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(log.level)}`);
  if (log.file !== null && (typeof log.file !== 'string' || !log.file.startsWith('/'))) throw new InvalidOptionError(`Expected \`log.file\` to be an absolute path, got ${JSON.stringify(log.file)}`);
  const drainMs = o.drainMs ?? drainDefault;
  if (!Number.isInteger(drainMs) || drainMs < 0 || drainMs > MAX_DRAIN_MS) throw new InvalidOptionError(`Expected \`drainMs\` to be an integer from 0 to ${MAX_DRAIN_MS}, got ${JSON.stringify(drainMs)}`);
  let metrics: MetricsAddress | null = null;
  if (o.metrics != null) metrics = parseMetricsAddress(formatMetricsAddress(o.metrics as MetricsAddress));
  return { log: { format: log.format, level: log.level, file: log.file }, drainMs, metrics };
}
