import { appendFile, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpillLog } from '../../gateway/log/spill-log.ts';

describe('spill log', () => {
  it('reads back appended lines oldest first, across segments and a reopen, honouring the cursor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sibyl-spill-'));
    const log = new SpillLog({ dir, segmentBytes: 100 });
    expect(await log.open()).toBe(0);
    const lines = Array.from({ length: 30 }, (_, i) => `{"n":${i}}`);
    for (let i = 0; i < 30; i += 5) await log.append(lines.slice(i, i + 5));
    const first = await log.nextSegment();
    expect(first?.lines).toEqual(lines.slice(0, first!.lines.length));
    await log.ack(first!.name, 2);
    await log.close();

    // A new process: leftovers come back minus the acknowledged lines; a torn last line is skipped.
    const files = (await readdir(dir)).filter((n) => n.startsWith('spill-')).sort();
    expect(files.length).toBeGreaterThan(1);
    await appendFile(join(dir, files.at(-1)!), '{"torn":');
    const reopened = new SpillLog({ dir, segmentBytes: 100 });
    expect(await reopened.open()).toBe(28);
    const seen: string[] = [];
    for (let seg = await reopened.nextSegment(); seg !== undefined; seg = await reopened.nextSegment()) {
      seen.push(...seg.lines);
      await reopened.remove(seg.name);
    }
    expect(seen).toEqual(lines.slice(2));
    expect(reopened.empty).toBe(true);
    expect((await readdir(dir)).filter((n) => n.startsWith('spill-') || n === 'cursor')).toEqual([]);
  });
});
