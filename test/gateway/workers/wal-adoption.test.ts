import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptOrphanLogs } from '../../../gateway/workers/wal-adoption.ts';
import { WriteAheadLog } from '../../../gateway/log/write-ahead-log.ts';

const seg = (no: number, ext: 'log' | 'acks') => `wal-${String(no).padStart(16, '0')}.${ext}`;

function write(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

/** What a WriteAheadLog opened on `dir` finds left to send: lines not acknowledged, by segment. */
async function pending(dir: string): Promise<number> {
  const wal = new WriteAheadLog({ dir, segmentBytes: 1 << 20, syncMs: 0, onFailing: () => {}, onRecovered: () => {}, onError: () => {} });
  const { pending: n } = await wal.load();
  await wal.close();
  return n;
}

describe('write-ahead logs of workers that are gone', () => {
  it('go to the remaining workers, after their own segments, with their acknowledgements; emptied directories go', async () => {
    const base = mkdtempSync(join(tmpdir(), 'sibyl-adopt-'));
    write(join(base, '0'), { [seg(4, 'log')]: 'a\nb\n', [seg(4, 'acks')]: '0 1\n' });
    // Worker 2 of an earlier run with three: two segments, the first half acknowledged; a stray acks file.
    write(join(base, '2'), { [seg(0, 'log')]: 'c\nd\n', [seg(0, 'acks')]: '0 1\n', [seg(1, 'log')]: 'e\nf\ng\n', [seg(7, 'acks')]: '0 9\n' });
    const adopted = adoptOrphanLogs(base, [join(base, '0'), join(base, '1')]);
    expect(adopted).toEqual([{ from: join(base, '2'), into: join(base, '0'), segments: 2 }]);
    expect(readdirSync(join(base, '0')).sort()).toEqual([seg(4, 'acks'), seg(4, 'log'), seg(5, 'acks'), seg(5, 'log'), seg(6, 'log')]);
    expect(readFileSync(join(base, '0', seg(6, 'log')), 'utf8')).toBe('e\nf\ng\n');
    expect(existsSync(join(base, '2'))).toBe(false);
    // b, d, e, f, g are still to be sent by worker 0.
    expect(await pending(join(base, '0'))).toBe(5);
  });

  it('moves a single process\'s log into worker 0, and the workers\' logs back into one process', async () => {
    const base = mkdtempSync(join(tmpdir(), 'sibyl-adopt-'));
    write(base, { [seg(0, 'log')]: 'a\n' });
    adoptOrphanLogs(base, [join(base, '0'), join(base, '1')]);
    expect(readdirSync(join(base, '0'))).toEqual([seg(0, 'log')]);
    write(join(base, '1'), { [seg(3, 'log')]: 'b\nc\n' });
    const back = adoptOrphanLogs(base, [base]);
    expect(back.map((a) => a.from).sort()).toEqual([join(base, '0'), join(base, '1')]);
    expect(readdirSync(base).sort()).toEqual([seg(0, 'log'), seg(1, 'log')]);
    expect(await pending(base)).toBe(3);
  });

  it('changes nothing when every directory has its owner', () => {
    const base = mkdtempSync(join(tmpdir(), 'sibyl-adopt-'));
    write(join(base, '0'), { [seg(0, 'log')]: 'a\n' });
    write(join(base, '1'), { [seg(0, 'log')]: 'b\n' });
    expect(adoptOrphanLogs(base, [join(base, '0'), join(base, '1')])).toEqual([]);
    expect(adoptOrphanLogs(join(base, 'missing'), [join(base, 'missing', '0')])).toEqual([]);
  });
});
