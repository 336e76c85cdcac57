// The soak's client processes, from the parent's side: each a fork of soak-client.ts running as
// the client uid, driven a phase at a time over IPC. Every wait is bounded: a client that says
// nothing for longer than any one of its spawns may take is hung, and is killed.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { within } from './lib/waits.js';
import type { ClientConfig, FromClient, ToClient } from './soak-messages.js';

const CLIENT_ENTRY = fileURLToPath(new URL('./soak-client.js', import.meta.url));

export type Done = Extract<FromClient, { type: 'done' }>;

export interface ClientExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It did not exit within the bound when told to close and was SIGKILLed. */
  killed: boolean;
}

export class SoakClient {
  private readonly exit: Promise<ClientExit>;
  private exited: ClientExit | null = null;

  private constructor(
    readonly index: number,
    private readonly cp: ChildProcess,
  ) {
    this.exit = new Promise((resolve) =>
      cp.once('exit', (code, signal) => {
        this.exited = { code, signal, killed: false };
        resolve(this.exited);
      }),
    );
  }

  /** Forks client index as uid (and gid uid), connecting to config.socket. */
  static start(config: ClientConfig, uid: number): SoakClient {
    const cp = fork(CLIENT_ENTRY, [JSON.stringify(config)], { uid, gid: uid, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    return new SoakClient(config.index, cp);
  }

  get pid(): number {
    return this.cp.pid!;
  }

  /** Resolves once it is connected; rejects with what it said, if it exits, or after boundMs. */
  ready(boundMs: number): Promise<Extract<FromClient, { type: 'ready' }>> {
    return this.await((m) => (m.type === 'ready' ? m : undefined), boundMs, 'to connect');
  }

  /**
   * Runs a phase; resolves with its counts. Rejects if the client reports an error, exits, or
   * sends nothing (it reports every spawn's end) for stallMs: it is then killed.
   */
  run(m: Extract<ToClient, { type: 'run' }>, stallMs: number, onProgress: (done: number) => void): Promise<Done> {
    this.cp.send(m);
    return this.await(
      (msg) => {
        if (msg.type === 'progress' && msg.phase === m.phase) onProgress(msg.done);
        return msg.type === 'done' && msg.phase === m.phase ? msg : undefined;
      },
      stallMs,
      `to report progress in the ${m.phase} phase`,
    );
  }

  /** Tells it to close and waits up to boundMs for its exit; SIGKILL (and a bounded wait) if it does not come. */
  async close(boundMs: number): Promise<ClientExit> {
    if (this.exited) return this.exited;
    if (this.cp.connected) this.cp.send({ type: 'close' } satisfies ToClient);
    try {
      return await within(this.exit, boundMs, `client ${this.index} to exit`);
    } catch {
      return this.kill();
    }
  }

  /** SIGKILL, and a bounded wait for the exit. */
  async kill(): Promise<ClientExit> {
    if (this.exited) return this.exited;
    this.cp.kill('SIGKILL');
    const e = await within(this.exit, 5_000, `client ${this.index} to exit after SIGKILL`);
    return { ...e, killed: true };
  }

  /**
   * Waits for the message pick accepts; every message restarts the clock of idleMs. An error
   * message, the client's exit, or silence rejects (silence kills it first).
   */
  private await<T>(pick: (m: FromClient) => T | undefined, idleMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          cleanup();
          void this.kill().catch(() => undefined).then(() => reject(new Error(`client ${this.index} (pid ${this.pid}) hung: nothing from it for ${idleMs} ms waiting for it ${what}; killed`)));
        }, idleMs);
      };
      const onMessage = (m: FromClient) => {
        arm();
        if (m.type === 'error') {
          cleanup();
          reject(new Error(`client ${this.index}: ${m.message}`));
          return;
        }
        const v = pick(m);
        if (v !== undefined) {
          cleanup();
          resolve(v);
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        cleanup();
        reject(new Error(`client ${this.index} (pid ${this.pid}) exited (code ${code}, signal ${signal}) waiting for it ${what}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.cp.off('message', onMessage);
        this.cp.off('exit', onExit);
      };
      if (this.exited) return onExit(this.exited.code, this.exited.signal);
      this.cp.on('message', onMessage);
      this.cp.on('exit', onExit);
      arm();
    });
  }
}
