// Judging figures measured before and after a long run: each may grow by its own noise at most.
export interface Figure {
  name: string;
  unit: 'bytes' | 'count';
  before: number;
  after: number;
  /** The growth allowed (after - before), in the figure's unit. */
  noise: number;
}

export interface JudgedFigure extends Figure {
  growth: number;
  /** Whether it grew beyond its noise (or could not be measured: NaN). */
  grew: boolean;
}

export function judgeGrowth(figures: readonly Figure[]): JudgedFigure[] {
  return figures.map((f) => {
    const growth = f.after - f.before;
    return { ...f, growth, grew: !(growth <= f.noise) };
  });
}

const MiB = 1024 * 1024;

/**
 * A process's RSS may move by 10% or 8 MiB (the larger) between two idle moments without any
 * leak: V8 grows and shrinks its heap on its own schedule, which another process cannot force,
 * and malloc keeps freed memory in its arenas. A leak of a kilobyte per spawn over 10,000 spawns
 * (about 10 MiB) still shows against the zygote's ~75 MiB.
 */
export function rssNoise(beforeBytes: number): number {
  return Math.max(8 * MiB, Math.round(beforeBytes * 0.1));
}
