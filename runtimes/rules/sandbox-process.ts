/**
 * Entry point of a rule's sandbox process (forked by process-sandbox.ts with `--no-node-snapshot`): holds one
 * RuleSandbox, answers `init`, `run`, `cancel` and `ping` messages, and exits when the gateway goes away. Nothing
 * here is reachable from the rule: the rule lives in an isolate inside this process.
 *
 * At start it raises its own OOM score to the maximum, so that under memory pressure outside its cgroup the kernel
 * kills a sandbox before the gateway.
 */
import { writeFileSync } from 'node:fs';
import { SibylError, toSibylError } from '../../core/errors.ts';
import { RuleSandbox, messageOf } from './rule-sandbox.ts';
import type { FromSandbox, ToSandbox } from './sandbox-protocol.ts';

let sandbox: RuleSandbox | undefined;
const cancelled = new Set<number>();

try {
  writeFileSync('/proc/self/oom_score_adj', '1000');
} catch {
  // not Linux, or /proc not mounted: nothing to raise
}

function send(msg: FromSandbox): void {
  process.send?.(msg);
}

function fail(id: number | undefined, err: unknown, dropped?: boolean): void {
  const e = toSibylError(err);
  const cause = e.cause === undefined ? undefined : messageOf(e.cause).slice(0, 500);
  send({ t: 'fail', id, code: e.code, message: e.message, cause, ...(dropped ? { dropped } : {}) });
}

process.on('message', function onMessage(msg: ToSandbox) {
  switch (msg.t) {
    case 'init':
      RuleSandbox.create(msg.options).then(
        (s) => {
          sandbox = s;
          send({ t: 'ready' });
        },
        (err: unknown) => fail(undefined, err),
      );
      return;
    case 'cancel':
      cancelled.add(msg.id);
      return;
    case 'ping': {
      const n = msg.n;
      (sandbox?.settled() ?? Promise.resolve(true)).then((idle) => send({ t: 'pong', n, busy: !idle }));
      return;
    }
    case 'run': {
      const s = sandbox;
      if (!s) return fail(msg.id, new SibylError('UNAVAILABLE', 'rule sandbox is not ready'));
      const id = msg.id;
      const drops = s.drops;
      s.run(msg.rows, msg.models, () => cancelled.delete(id)).then(
        (rows) => send({ t: 'done', id, rows }),
        (err: unknown) => fail(id, err, s.drops !== drops),
      );
      return;
    }
  }
});

process.on('disconnect', function onGatewayGone() {
  sandbox?.dispose();
  process.exit(0);
});
