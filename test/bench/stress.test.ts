// The stress run at test scale: heavy children forked in sequence and concurrently all succeed,
// and the zygote leaks neither fds nor zombies.
import { beforeAll, describe, expect, it } from 'vitest';
import { runStress, type StressReport } from '../../dist/bench/stress.js';

describe('a zygote under stress (150 children in sequence, then 100 at concurrency 8)', () => {
  let report: StressReport;

  beforeAll(async () => {
    report = await runStress({ sequential: 150, concurrent: 100, concurrency: 8 });
  }, 600_000);

  const failures = () => JSON.stringify(report.failures.slice(0, 5), null, 2);

  it('runs every child to a clean exit with the expected digest', () => {
    expect(report.totals, failures()).toEqual({ ok: 250, hung: 0, crashed: 0, wrong: 0, spawnFailed: 0 });
  });

  it('runs both phases in full', () => {
    expect(report.phases.map((p) => [p.name, p.children, p.counts.ok])).toEqual([
      ['sequential', 150, 150],
      ['concurrent', 100, 100],
    ]);
  });

  it('leaves the zygote with no more open fds than before', () => {
    expect(report.after.zygoteFds).toBeLessThanOrEqual(report.before.zygoteFds);
  });

  it('leaves the client with no more open fds than before', () => {
    expect(report.after.clientFds).toBeLessThanOrEqual(report.before.clientFds);
  });

  it('leaves no zombie children behind', () => {
    expect(report.zombies).toEqual([]);
  });

  it('reports no problems', () => {
    expect(report.problems).toEqual([]);
  });
});
