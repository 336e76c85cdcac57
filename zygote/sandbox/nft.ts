// Running the nft binary (nftables): a ruleset or a batch of changes on its stdin, applied as
// one transaction, with a bounded wait. The zygote's environment has no PATH (it is the
// children's), so the binary is looked for where distributions install it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const NFT_PATHS = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft', '/bin/nft'];
const NFT_TIMEOUT_MS = 5_000;

/** Where nft is, or null (apt-get install nftables). */
export function findNft(): string | null {
  return NFT_PATHS.find((p) => existsSync(p)) ?? null;
}

/**
 * Runs `nft -f -` with script on stdin; throws an Error naming what was being done and what
 * nft said. Each call is a fork and exec of nft, which blocks the zygote's serve loop: about
 * 3 ms from a small Node process, 5 to 7 ms from a warm zygote (measured: README, Network).
 * libnftables in-process would take well under 1 ms, at the price of a library in the zygote.
 */
export function runNft(nft: string, script: string, what: string): void {
  const r = spawnSync(nft, ['-f', '-'], { input: script, encoding: 'utf8', timeout: NFT_TIMEOUT_MS, killSignal: 'SIGKILL', env: {} });
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ETIMEDOUT') throw new Error(`${what}: ${nft} gave no answer within ${NFT_TIMEOUT_MS} ms`);
  if (r.error) throw new Error(`${what}: could not run ${nft}: ${code ?? r.error.message}`);
  if (r.signal) throw new Error(`${what}: ${nft} was killed by ${r.signal}`);
  if (r.status !== 0) throw new Error(`${what}: nft failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(0, 6).join(' | ')}`);
}

/** Every chain of this network namespace's ruleset, as "family table chain"; throws like runNft. */
export function listNftChains(nft: string): string[] {
  const r = spawnSync(nft, ['list', 'chains'], { encoding: 'utf8', timeout: NFT_TIMEOUT_MS, killSignal: 'SIGKILL', env: {} });
  if (r.error || r.status !== 0) throw new Error(`listing nftables chains failed: ${r.error?.message ?? r.stderr.trim()}`);
  const out: string[] = [];
  let table = '';
  for (const line of r.stdout.split('\n')) {
    const t = /^table (\S+) (\S+) \{$/.exec(line.trim());
    if (t) table = `${t[1]} ${t[2]}`;
    const c = /^chain (\S+) \{$/.exec(line.trim());
    if (c && table) out.push(`${table} ${c[1]}`);
  }
  return out;
}
