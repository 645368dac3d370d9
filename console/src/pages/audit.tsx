import { useState } from 'preact/hooks';
import { call, type AuditLog } from '../api.ts';
import { ErrorBox, json, Page, Table, time, useLoad } from '../ui.tsx';

/** The audit log, newest first, filtered by model, actor and action (over the latest 1000 entries). */
export function AuditPage() {
  const { data, error } = useLoad(() => call<AuditLog>('GET', '/v1/audit?limit=1000'), []);
  const [model, setModel] = useState('');
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const entries = data?.entries ?? [];
  const actors = [...new Set(entries.map((e) => e.actor))].sort();
  const actions = [...new Set(entries.map((e) => e.action))].sort();
  const m = model.trim();
  const shown = entries.filter((e) => (!m || e.target === m || e.target.startsWith(`${m}/`) || e.target.startsWith(`${m}@`) || e.target.includes(m)) && (!actor || e.actor === actor) && (!action || e.action === action));
  return (
    <Page title="Audit log">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="audit-model">Model</label>
        <input id="audit-model" type="search" value={model} onInput={(e) => setModel(e.currentTarget.value)} />
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
      <ErrorBox error={error} />
      <p class="muted" role="status">
        {shown.length} of {entries.length} entries
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
