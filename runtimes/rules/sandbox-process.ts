/**
 * Entry point of a rule's sandbox process (forked by process-sandbox.ts with `--no-node-snapshot`): holds one
 * RuleSandbox, answers `init`, `run` and `cancel` messages, and exits when the gateway goes away. Nothing here is
 * reachable from the rule: the rule lives in an isolate inside this process.
 */
import { SibylError, toSibylError } from '../../core/errors.ts';
import { RuleSandbox, messageOf } from './rule-sandbox.ts';
import type { FromSandbox, ToSandbox } from './sandbox-protocol.ts';

let sandbox: RuleSandbox | undefined;
const cancelled = new Set<number>();

function send(msg: FromSandbox): void {
  process.send?.(msg);
}

function fail(id: number | undefined, err: unknown): void {
  const e = toSibylError(err);
  const cause = e.cause === undefined ? undefined : messageOf(e.cause).slice(0, 500);
  send({ t: 'fail', id, code: e.code, message: e.message, cause });
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
    case 'run': {
      const s = sandbox;
      if (!s) return fail(msg.id, new SibylError('UNAVAILABLE', 'rule sandbox is not ready'));
      const id = msg.id;
      s.run(msg.rows, msg.models, () => cancelled.delete(id)).then(
        (rows) => send({ t: 'done', id, rows }),
        (err: unknown) => fail(id, err),
      );
      return;
    }
  }
});

process.on('disconnect', function onGatewayGone() {
  sandbox?.dispose();
  process.exit(0);
});
