import { useState } from 'preact/hooks';
import { call, enc, type ModelDetail, type ModelList } from '../api.ts';
import { ErrorBox, Page, Table, useLoad } from '../ui.tsx';

/** Every model with its runtime, and per cell its deployed versions, default and aliases; searchable. */
export function ModelsPage() {
  const { data, error, loading } = useLoad(async () => {
    const list = await call<ModelList>('GET', '/v1/models');
    return Promise.all(list.models.map((m) => call<ModelDetail>('GET', `/v1/models/${enc(m.name)}`)));
  }, []);
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const rows = (data ?? []).filter((m) => !needle || m.name.toLowerCase().includes(needle) || runtimes(m).includes(needle));
  return (
    <Page title="Models">
      <div class="toolbar">
        <label for="model-search">Search</label>
        <input id="model-search" type="search" placeholder="name or runtime" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </div>
      <ErrorBox error={error} />
      {loading && !data ? <p class="loading">Loading…</p> : null}
      {data ? (
        <Table label="Models">
          <caption class="sr-only">Models and what each cell serves</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Runtime</th>
              <th scope="col">Versions</th>
              <th scope="col">Per cell: deployed, default, aliases</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((m) => (
              <tr key={m.name}>
                <td>
                  <a href={`#/models/${enc(m.name)}`}>{m.name}</a>
                </td>
                <td>{runtimes(m)}</td>
                <td>{m.versions.map((v) => v.version).join(', ')}</td>
                <td>
                  {m.cells.length === 0 ? <span class="muted">not deployed</span> : null}
                  <ul class="plain">
                    {m.cells.map((c) => (
                      <li key={c.cell}>
                        <strong>{c.cell}</strong>: {c.versions.join(', ')}; default <span class="badge">{c.defaultVersion}</span>
                        {Object.entries(c.aliases).map(([a, v]) => (
                          <span key={a} class="alias">
                            {' '}
                            {a}→{v}
                          </span>
                        ))}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </Table>
      ) : null}
      {data && rows.length === 0 ? <p>No model matches “{q}”.</p> : null}
    </Page>
  );
}

function runtimes(m: ModelDetail): string {
  return [...new Set(m.versions.map((v) => v.runtime))].join(', ');
}
