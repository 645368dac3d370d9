import { useState } from 'preact/hooks';
import type { z } from 'zod';
import type { RolloutList } from '../../../control-tower/api/rollouts-api.ts';
import { call, enc } from '../api.ts';
import { ErrorBox, Page, Table, time, useCanWrite, useLoad } from '../ui.tsx';

type Rollout = z.input<typeof RolloutList>['rollouts'][number];

/** Rollouts (newest first): each wave's cells, status and guard results; a publisher may halt an unfinished one. */
export function RolloutsPage() {
  const canWrite = useCanWrite();
  const { data, error, reload } = useLoad(() => call<z.input<typeof RolloutList>>('GET', '/v1/rollouts?limit=50'), []);
  const [failure, setFailure] = useState<unknown>();
  const halt = (r: Rollout) => call('POST', `/v1/rollouts/${enc(String(r.id))}:halt`, { reason: 'halted from the console' }).then(reload, setFailure);
  return (
    <Page title="Rollouts">
      <ErrorBox error={error ?? failure} />
      {data && data.rollouts.length === 0 ? <p>No rollouts yet (POST /v1/rollouts, or `sibyl rollout`).</p> : null}
      {(data?.rollouts ?? []).map((r) => (
        <section key={r.id} class="card" aria-label={`Rollout ${r.id}`}>
          <h2>
            #{r.id} <a href={`#/models/${enc(r.model)}`}>{r.model}</a> {r.version}: {r.state}
          </h2>
          <p class="muted">
            {r.mode === 'split' ? `split at ${r.weight}%` : 'as the default'}, bake {Math.round(r.bakeMs / 1000)} s per wave, started by {r.createdBy} at {time(r.createdAt)}
            {r.finishedAt ? `, finished ${time(r.finishedAt)}` : ''}
          </p>
          {r.haltReason ? <p class="fail">{r.haltReason}</p> : null}
          <Table label={`Waves of rollout ${r.id}`}>
            <thead>
              <tr>
                <th scope="col">Wave</th>
                <th scope="col">Cells</th>
                <th scope="col">Status</th>
                <th scope="col">Bake ends</th>
              </tr>
            </thead>
            <tbody>
              {r.waves.map((w) => (
                <tr key={w.name}>
                  <td>{w.name}</td>
                  <td>{w.cells.join(', ')}</td>
                  <td class={w.status === 'failed' || w.status === 'halted' ? 'fail' : w.status === 'passed' ? 'pass' : ''}>{w.status}</td>
                  <td>{time(w.bakeEndsAt)}</td>
                </tr>
              ))}
            </tbody>
          </Table>
          {canWrite && !r.finishedAt ? (
            <button type="button" onClick={() => halt(r)}>
              Halt rollout {r.id}
            </button>
          ) : null}
        </section>
      ))}
    </Page>
  );
}
