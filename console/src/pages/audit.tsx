import { useState } from 'preact/hooks';
import { call, type AuditLog } from '../api.ts';
import { ErrorBox, json, Page, Table, time, useLoad } from '../ui.tsx';

/** The audit log, newest first, filtered by the tower by model, actor and action (the latest 1000 matches). */
export function AuditPage() {
  const [model, setModel] = useState('');
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  // The choices offered come from the latest 1000 entries; the entries shown are the tower's filtered answer.
  const recent = useLoad(() => call<AuditLog>('GET', '/v1/audit?limit=1000'), []);
  const m = model.trim();
  const { data, error } = useLoad(() => {
    const q = new URLSearchParams({ limit: '1000' });
    if (m) q.set('model', m);
    if (actor) q.set('actor', actor);
    if (action) q.set('action', action);
    return call<AuditLog>('GET', `/v1/audit?${q}`);
  }, [m, actor, action]);
  const all = recent.data?.entries ?? [];
  const actors = [...new Set(all.map((e) => e.actor))].sort();
  const actions = [...new Set(all.map((e) => e.action))].sort();
  const shown = data?.entries ?? [];
  return (
    <Page title="Audit log">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="audit-model">Model</label>
        <input id="audit-model" type="search" value={model} onChange={(e) => setModel(e.currentTarget.value)} onInput={(e) => setModel(e.currentTarget.value)} />
        <label for="audit-actor">Actor</label>
        <select id="audit-actor" value={actor} onChange={(e) => setActor(e.currentTarget.value)}>
          <option value="">any</option>
          {actors.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
        <label for="audit-action">Action</label>
        <select id="audit-action" value={action} onChange={(e) => setAction(e.currentTarget.value)}>
          <option value="">any</option>
          {actions.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
      </form>
      <ErrorBox error={error ?? recent.error} />
      <p class="muted" role="status">
        {shown.length} {shown.length === 1 ? 'entry' : 'entries'}
      </p>
      <Table label="Audit entries">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr key={e.id}>
              <td>{time(e.time)}</td>
              <td>{e.actor}</td>
              <td>{e.action}</td>
              <td>{e.target}</td>
              <td>
                <code class="wrap">{json(e.details)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
    </Page>
  );
}
