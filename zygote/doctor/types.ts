// The shape of one doctor finding, shared by every probe and the report.

/**
 * - `ok`: the layer works on this host as the sandbox needs it.
 * - `degraded`: it works, but weaker than it should (the detail says how).
 * - `missing`: this host does not offer it (the fix says how to get it).
 * - `unknown`: the doctor could not tell (a tool or a probe was unavailable).
 */
export type Status = 'ok' | 'missing' | 'degraded' | 'unknown';

export interface ProbeResult {
  /** Stable name, e.g. "seccomp", "cgroup-memory" (see layers.ts). */
  layer: string;
  status: Status;
  /**
   * Whether the sandbox relies on this layer. A required layer that is `missing` or `unknown`
   * makes `zygote doctor` exit 1; the others (host hardening, defence in depth) only warn.
   */
  required: boolean;
  /** What was found, in one sentence or two. */
  detail: string;
  /** For anything not ok: how to get it. */
  fix?: string;
  /** The raw facts behind the verdict, for --json readers. */
  data?: Record<string, unknown>;
}

/** What a probe returns before layers.ts stamps `required` on it. */
export type Finding = Omit<ProbeResult, 'required'>;

export interface HostInfo {
  kernel: string;
  /** uname -m, e.g. x86_64. */
  arch: string;
  node: string;
  euid: number;
}

export interface DoctorReport {
  host: HostInfo;
  results: ProbeResult[];
  /** Required layers that are missing or unknown, by name. */
  failing: string[];
  /** Layers that are degraded, and optional layers that are missing or unknown. */
  warnings: string[];
  /** 0 when every required layer is available (ok or degraded), 1 otherwise. */
  exitCode: 0 | 1;
}
