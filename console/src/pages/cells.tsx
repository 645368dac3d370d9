import { call, enc, type CellList, type CellStatus } from '../api.ts';
import { ErrorBox, Page, shortSha, Table, time, useLoad } from '../ui.tsx';

/** Every cell with its revision, and each replica's state against the desired one. */
export function CellsPage() {
  const { data, error } = useLoad(async () => {
    const { cells } = await call<CellList>('GET', '/v1/cells');
    return Promise.all(cells.map((c) => call<CellStatus>('GET', `/v1/cells/${enc(c.name)}`).then((s) => ({ ...c, status: s }))));
  }, []);
  return (
    <Page title="Cells">
      <ErrorBox error={error} />
      {data ? (
        <Table label="Cells">
          <thead>
            <tr>
              <th scope="col">Cell</th>
              <th scope="col">Revision</th>
              <th scope="col">Updated</th>
              <th scope="col">Replicas</th>
              <th scope="col">In sync</th>
              <th scope="col">Load errors</th>
            </tr>
          </thead>
          <tbody>
            {data.map((c) => (
              <tr key={c.name}>
                <td>
                  <a href={`#/cells/${enc(c.name)}`}>{c.name}</a>
                </td>
                <td>{c.revision}</td>
                <td>{time(c.updated)}</td>
                <td>{c.status.replicas.length}</td>
                <td>{c.status.replicas.filter((r) => r.inSync && !r.stale).length} of {c.status.replicas.length}</td>
                <td>{c.status.replicas.reduce((t, r) => t + r.errors.length, 0)}</td>
              </tr>
            ))}
          </tbody>
        </Table>
      ) : null}
    </Page>
  );
}

type Desired = { revision?: string | number; models?: { name: string; versions?: { version: string; bundleSha256?: string }[]; defaultVersion?: string }[] };

/** One cell: the desired versions against what each replica loaded, missed or failed to load, and when it was last seen. */
export function CellPage({ cell }: { cell: string }) {
  const { data, error } = useLoad(() => call<CellStatus>('GET', `/v1/cells/${enc(cell)}`), [cell]);
  const desired = (data?.desired ?? {}) as Desired;
  const wanted = (desired.models ?? []).flatMap((m) => (m.versions ?? []).map((v) => ({ model: m.name, version: v.version, sha: v.bundleSha256 ?? '', isDefault: m.defaultVersion === v.version })));
  return (
    <Page title={`Cell ${cell}`}>
      <ErrorBox error={error} />
      {data ? (
        <>
          <p>
            Desired revision <strong>{String(desired.revision ?? 0)}</strong>, {wanted.length} versions.
          </p>
          <h2>Replicas</h2>
          {data.replicas.length === 0 ? <p>No replica has reported yet.</p> : null}
          <Table label="Replicas">
            <thead>
              <tr>
                <th scope="col">Replica</th>
                <th scope="col">Revision</th>
                <th scope="col">In sync</th>
                <th scope="col">Last seen</th>
                <th scope="col">Loaded</th>
                <th scope="col">Missing</th>
                <th scope="col">Load errors</th>
              </tr>
            </thead>
            <tbody>
              {data.replicas.map((r) => (
                <tr key={r.replica}>
                  <td>{r.replica}</td>
                  <td>{r.revision}</td>
                  <td>{r.stale ? <span class="fail">stale</span> : r.inSync ? <span class="pass">in sync</span> : <span class="fail">behind</span>}</td>
                  <td>{time(r.lastSeen)}</td>
                  <td>{r.loaded.length}</td>
                  <td>{r.missing.join(', ') || '—'}</td>
                  <td>
                    {r.errors.map((e) => (
                      <div key={`${e.model}/${e.version}`}>
                        {e.model} {e.version}: {e.message}
                      </div>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </Table>
          <h2>Desired against actual</h2>
          <Table label="Desired versions per replica">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Version</th>
                <th scope="col">sha256</th>
                {data.replicas.map((r) => (
                  <th scope="col" key={r.replica}>
                    {r.replica}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {wanted.map((w) => (
                <tr key={`${w.model}/${w.version}`}>
                  <td>{w.model}</td>
                  <td>
                    {w.version}
                    {w.isDefault ? <span class="badge">default</span> : null}
                  </td>
                  <td>
                    <code title={w.sha}>{shortSha(w.sha)}</code>
                  </td>
                  {data.replicas.map((r) => {
                    const err = r.errors.find((e) => e.model === w.model && e.version === w.version);
                    const ok = r.loaded.some((l) => l.model === w.model && l.version === w.version && l.bundleSha256 === w.sha);
                    return (
                      <td key={r.replica} class={err ? 'fail' : ok ? 'pass' : 'fail'}>
                        {err ? `✗ ${err.message}` : ok ? '✓ loaded' : '✗ not loaded'}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </Table>
        </>
      ) : null}
    </Page>
  );
}
