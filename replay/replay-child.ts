/**
 * The control tower's replay process (forked by control-tower/replay/replays.ts): one replay, so that the candidate
 * model (untrusted like any upload) and the replay's CPU stay out of the tower's process. argv[2]: a
 * ReplayChildRequest as JSON. Sends progress messages, then one ReplayChildReply, on the IPC channel; exits 0.
 */
import { readFile } from 'node:fs/promises';
import { toSibylError, type CodeName } from '../core/errors.ts';
import type { ReplayReport } from './replay.ts';
import { runReplay, type RunReplayOptions } from './run-replay.ts';

export interface ReplayChildRequest {
  readonly zipFile: string;
  readonly options: Omit<RunReplayOptions, 'signal' | 'onProgress'>;
}

export type ReplayChildMessage =
  | { readonly kind: 'progress'; readonly records: number; readonly rows: number }
  | { readonly kind: 'done'; readonly report: ReplayReport & { readonly groupId: string } }
  | { readonly kind: 'failed'; readonly code: CodeName; readonly message: string };

const send = (m: ReplayChildMessage, then?: () => void) => (then ? process.send!(m, undefined, undefined, then) : process.send!(m));

async function main(request: ReplayChildRequest): Promise<void> {
  const zip = await readFile(request.zipFile);
  const report = await runReplay(zip, { ...request.options, onProgress: (p) => send({ kind: 'progress', ...p }) });
  send({ kind: 'done', report }, () => process.exit(0));
}

main(JSON.parse(process.argv[2]!) as ReplayChildRequest).catch((err: unknown) => {
  const e = toSibylError(err);
  if (e.code === 'INTERNAL') process.stderr.write(`replay failed: ${String((err as Error)?.stack ?? err)}\n`);
  send({ kind: 'failed', code: e.code, message: e.code === 'INTERNAL' ? 'the replay failed unexpectedly' : e.message }, () => process.exit(0));
});
