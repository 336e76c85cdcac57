// A child's output filesystem as the client holds it (spawn({ output })): an O_PATH fd of the
// root of a tmpfs the zygote made for that child alone (zygote/sandbox/output.ts). It has no
// host path: this process reaches it through the fd (/proc/self/fd/N, or openat beneath it with
// readOutputFile / mapOutputFile), and the kernel frees it, with everything the step wrote, once
// the child is gone and the fd is closed. Its files are this process's uid's, whatever mode the
// step gave them.
import { statfsSync } from 'node:fs';
import { native } from '../native/index.js';
import { ZygoteClosedError } from './errors.js';

/** How full an output filesystem is (statfs). */
export interface OutputUsage {
  /** Bytes in use (whole pages) and the size (limits.outputBytes, rounded up to pages). */
  bytes: number;
  maxBytes: number;
  /** Files, directories and links in it, and how many it may hold (limits.outputFiles). */
  files: number;
  maxFiles: number;
  /** No byte or no inode left: a write or create there now fails with ENOSPC. */
  full: boolean;
}

export class ChildOutput {
  private fdValue: number;

  /** @internal Takes ownership of fd; onClose runs once, when it is closed. */
  constructor(fd: number, private readonly onClose: (o: ChildOutput) => void = () => {}) {
    this.fdValue = fd;
  }

  /** The fd of its root (O_PATH: a directory fd for openat-style calls), or -1 once closed. */
  get fd(): number {
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  /**
   * Its root as a path in this process, /proc/self/fd/N: any fs call works under it
   * (readdirSync(output.path), rmSync(join(output.path, name))). Valid until close(); not in
   * another process. Throws once closed.
   */
  get path(): string {
    return `/proc/self/fd/${this.open()}`;
  }

  /** How much of it is used (statfs). Throws once closed. */
  usage(): OutputUsage {
    const st = statfsSync(this.path);
    // tmpfs counts its root directory among its inodes; limits.outputFiles does not.
    return {
      bytes: (st.blocks - st.bfree) * st.bsize,
      maxBytes: st.blocks * st.bsize,
      files: Math.max(0, st.files - st.ffree - 1),
      maxFiles: Math.max(0, st.files - 1),
      full: st.bfree === 0 || st.ffree === 0,
    };
  }

  /**
   * Closes the fd. Once the child is gone too, the kernel frees the filesystem and what is in
   * it (a mapping of one of its files keeps that file's pages until it is unmapped). Calling
   * it again does nothing.
   */
  close(): void {
    if (this.fdValue < 0) return;
    native.close(this.fdValue);
    this.fdValue = -1;
    this.onClose(this);
  }

  /** @internal The fd, or an error naming what happened to it. */
  open(): number {
    if (this.fdValue < 0) throw new ZygoteClosedError('this output filesystem was closed (child.output.close(), or its zygote handle was closed)');
    return this.fdValue;
  }
}
