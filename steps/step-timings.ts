// runStep's optional timestamps (`timings: true`): performance.now() at each boundary of one
// step, so a renderer or the bench can see where its milliseconds go from what the code
// recorded, not from guesses. Off (the default), nothing here runs.
import { Transform, type Readable, type Writable } from 'node:stream';

/** Milliseconds each part of one runStep took; null: the step never reached that part's end. */
export interface StepTimings {
  /** Options checked, step module shown, an in-memory input encoded (or a file input's placeholder made). */
  prepareMs: number | null;
  /** zygote.spawn() until the zygote reported the child spawned. */
  spawnMs: number | null;
  /** An in-memory input written into the child's output filesystem, the request written to its stdin and stdin ended (its 'finish'). */
  requestMs: number | null;
  /** Request written until the first byte on the child's stdout: it read the request, mapped the input, imported and ran the step, wrote the output file. */
  firstByteMs: number | null;
  /** First byte until the child's stdout ended: the whole result is in (the child ends stdout by exiting). */
  resultMs: number | null;
  /** stdout ended until the zygote reported the child's exit (reaped). */
  exitMs: number | null;
  /** Exit until the outcome was built: output file opened, mapped and validated. */
  outputMs: number | null;
  /** The temp directory removed. */
  cleanupMs: number | null;
  /** runStep called until it returned. */
  totalMs: number;
}

/** The boundaries, in order; each part of StepTimings ends at one. */
const MARKS = ['prepared', 'spawned', 'requested', 'firstByte', 'stdoutEnded', 'exited', 'outputDone', 'cleaned'] as const;
type Mark = (typeof MARKS)[number];
const PARTS = ['prepareMs', 'spawnMs', 'requestMs', 'firstByteMs', 'resultMs', 'exitMs', 'outputMs', 'cleanupMs'] as const;

/** The child's stdio as runStep hands it to talkToStep. */
interface WatchedIO<E> {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<E>;
  kill(): void;
}

export class StepClock {
  private readonly at: Partial<Record<Mark, number>> = {};
  /** Filled in place when runStep ends, so the outcome that holds it gets the cleanup too. */
  private readonly timings = {} as StepTimings;

  constructor(private readonly start: number) {}

  mark(m: Mark): void {
    this.at[m] ??= performance.now();
  }

  /**
   * The same stdio with the boundaries talkToStep passes marked: stdin's 'finish', the first
   * chunk and end of stdout (through a pass-through stream: readMessage wants a stream nobody
   * else reads), the exit.
   */
  watch<E>(io: WatchedIO<E>): WatchedIO<E> {
    io.stdin.once('finish', () => this.mark('requested'));
    const clock = this;
    const stdout = new Transform({
      transform(chunk, _encoding, done) {
        clock.mark('firstByte');
        done(null, chunk);
      },
      flush(done) {
        clock.mark('stdoutEnded');
        done();
      },
    });
    io.stdout.on('error', (err) => stdout.destroy(err));
    io.stdout.pipe(stdout);
    const exited = io.exited.then((e) => (this.mark('exited'), e));
    return { ...io, stdout, exited };
  }

  /** The outcome with its timings (the cleanup part is filled in by finish()). */
  attach<T extends object>(outcome: T): T & { timings: StepTimings } {
    this.mark('outputDone');
    return { ...outcome, timings: this.timings };
  }

  /** After the last part: fills in the timings every attached outcome holds. */
  finish(): void {
    this.mark('cleaned');
    let prev: number | undefined = this.start;
    MARKS.forEach((m, i) => {
      const t = this.at[m];
      this.timings[PARTS[i]] = t !== undefined && prev !== undefined ? t - prev : null;
      prev = t;
    });
    this.timings.totalMs = this.at.cleaned! - this.start;
  }
}
