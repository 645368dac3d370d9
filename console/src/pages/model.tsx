import { useState } from 'preact/hooks';
import { call, enc, type ChangeResult, type ModelDetail, type VersionDetail } from '../api.ts';
import { ErrorBox, json, Notice, Page, pretty, shortSha, Table, time, useCanWrite, useLoad } from '../ui.tsx';

type CellModel = ModelDetail['cells'][number];

/** A model: its versions (manifest, features, test cases, hash, uploader), and per cell default, aliases, split, shadows. */
export function ModelPage({ name }: { name: string }) {
  const { data, error, reload } = useLoad(() => call<ModelDetail>('GET', `/v1/models/${enc(name)}`), [name]);
  const [done, setDone] = useState<string>();
  const changed = (what: string) => (r: ChangeResult) => {
    setDone(`${what}: ${r.cells.length ? r.cells.map((c) => `${c.cell} at revision ${c.revision}`).join(', ') : 'nothing changed'}`);
    reload();
  };
  return (
    <Page
      title={`Model ${name}`}
      actions={
        <p class="links">
          <a href={`#/shadows/${enc(name)}`}>Shadow comparison</a>
          {data?.versions.some((v) => v.runtime === 'rules') ? <a href={`#/playground/${enc(name)}/${enc(data.versions.at(-1)!.version)}`}>Open in playground</a> : null}
        </p>
      }
    >
      <ErrorBox error={error} />
      {done ? <Notice>{done}</Notice> : null}
      {data ? (
        <>
          <Versions model={data} />
          {data.cells.length === 0 ? <p>Not deployed in any cell: set a default to deploy it.</p> : null}
          {data.cells.map((c) => (
            <CellControls key={c.cell} model={data} cell={c} onChanged={changed} />
          ))}
          {data.cells.length === 0 ? <DefaultControl model={data} cell={undefined} onChanged={changed} /> : null}
        </>
      ) : null}
    </Page>
  );
}

function Versions({ model }: { model: ModelDetail }) {
  const [open, setOpen] = useState<string>();
  return (
    <section aria-labelledby="versions-h">
      <h2 id="versions-h">Versions</h2>
      <Table label="Versions">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Runtime</th>
            <th scope="col">sha256</th>
            <th scope="col">Uploaded by</th>
            <th scope="col">At</th>
            <th scope="col">Cells</th>
            <th scope="col">
              <span class="sr-only">Details</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {[...model.versions].reverse().map((v) => (
            <tr key={v.version} class={v.retiredAt ? 'retired' : ''}>
              <td>{v.version}{v.retiredAt ? ' (retired)' : ''}</td>
              <td>{v.runtime}</td>
              <td>
                <code title={v.sha256}>{shortSha(v.sha256)}</code>
              </td>
              <td>{v.createdBy}</td>
              <td>{time(v.createdAt)}</td>
              <td>{v.cells.join(', ') || <span class="muted">none</span>}</td>
              <td>
                <button type="button" class="small" aria-expanded={open === v.version} onClick={() => setOpen(open === v.version ? undefined : v.version)}>
                  {open === v.version ? 'Hide' : 'Show'} {v.version}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
      {open ? <VersionView name={model.name} version={open} /> : null}
    </section>
  );
}

type Feature = { name: string; dtype: string; source: string; default: unknown; entity?: string; description?: string };
type TestCase = { name: string; features: Record<string, unknown>; expected: Record<string, unknown>; tolerance?: number; models?: unknown };

function VersionView({ name, version }: { name: string; version: string }) {
  const { data, error } = useLoad(() => call<VersionDetail>('GET', `/v1/models/${enc(name)}/versions/${enc(version)}`), [name, version]);
  if (error) return <ErrorBox error={error} />;
  if (!data) return <p class="loading">Loading {version}…</p>;
  const m = data.manifest as { features?: Feature[]; outputs?: { name: string; dtype: string; kind?: string }[]; tests?: TestCase[]; description?: string; owner?: string };
  return (
    <section class="card" aria-label={`Version ${version}`}>
      <h3>
        {name} {version}
      </h3>
      <p>
        {m.description} {m.owner ? <span class="muted">owner {m.owner}</span> : null}
      </p>
      <p>
        sha256 <code>{data.sha256}</code>, {data.sizeBytes} bytes, uploaded by {data.createdBy} at {time(data.createdAt)}
      </p>
      <h4>Features</h4>
      <Table label={`Features of ${version}`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">dtype</th>
            <th scope="col">Source</th>
            <th scope="col">Default</th>
          </tr>
        </thead>
        <tbody>
          {(m.features ?? []).map((f) => (
            <tr key={f.name}>
              <td>{f.name}</td>
              <td>{f.dtype}</td>
              <td>{f.source === 'store' ? `store (${f.entity ?? ''})` : f.source}</td>
              <td>{json(f.default)}</td>
            </tr>
          ))}
        </tbody>
      </Table>
      <h4>Test cases</h4>
      <Table label={`Test cases of ${version}`}>
        <thead>
          <tr>
            <th scope="col">Case</th>
            <th scope="col">Features</th>
            <th scope="col">Expected</th>
          </tr>
        </thead>
        <tbody>
          {(m.tests ?? []).map((t) => (
            <tr key={t.name}>
              <td>{t.name}</td>
              <td>
                <code class="wrap">{json(t.features)}</code>
              </td>
              <td>
                <code class="wrap">{json(t.expected)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </Table>
      <details>
        <summary>Manifest</summary>
        <pre>{pretty(data.manifest)}</pre>
      </details>
    </section>
  );
}

interface ControlProps {
  model: ModelDetail;
  cell: CellModel;
  onChanged: (what: string) => (r: ChangeResult) => void;
}

function CellControls({ model, cell, onChanged }: ControlProps) {
  const canWrite = useCanWrite();
  const [error, setError] = useState<unknown>();
  const run = (what: string, p: Promise<ChangeResult>) => p.then(onChanged(what), setError);
  const base = `/v1/models/${enc(model.name)}`;
  return (
    <section class="card" aria-labelledby={`cell-${cell.cell}`}>
      <h2 id={`cell-${cell.cell}`}>Cell {cell.cell}</h2>
      <ErrorBox error={error} />
      <dl class="facts">
        <dt>Deployed</dt>
        <dd>{cell.versions.join(', ')}</dd>
        <dt>Default</dt>
        <dd data-testid={`default-${cell.cell}`}>{cell.defaultVersion}</dd>
      </dl>
      {canWrite ? <DefaultControl model={model} cell={cell} onChanged={onChanged} /> : null}
      <h3>Aliases</h3>
      {Object.keys(cell.aliases).length === 0 ? <p class="muted">No aliases.</p> : null}
      <ul class="plain">
        {Object.entries(cell.aliases).map(([a, v]) => (
          <li key={a}>
            <code>{a}</code> → {v}{' '}
            {canWrite ? (
              <button type="button" class="small" onClick={() => run(`alias ${a} removed`, call('DELETE', `${base}/aliases/${enc(a)}?cells=${enc(cell.cell)}`))}>
                Remove alias {a}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {canWrite ? <AliasForm model={model} cell={cell} run={run} /> : null}
      <SplitEditor model={model} cell={cell} run={run} canWrite={canWrite} />
      <ShadowsEditor model={model} cell={cell} run={run} canWrite={canWrite} />
    </section>
  );
}

function DefaultControl({ model, cell, onChanged }: { model: ModelDetail; cell: CellModel | undefined; onChanged: ControlProps['onChanged'] }) {
  const versions = model.versions.filter((v) => !v.retiredAt).map((v) => v.version);
  const [version, setVersion] = useState(cell?.defaultVersion ?? versions.at(-1) ?? '');
  const [error, setError] = useState<unknown>();
  const id = `default-select-${cell?.cell ?? 'all'}`;
  const submit = (e: Event) => {
    e.preventDefault();
    call<ChangeResult>('PUT', `/v1/models/${enc(model.name)}/default`, { version, ...(cell ? { cells: [cell.cell] } : {}) }).then(onChanged(`default ${version}`), setError);
  };
  return (
    <form class="inline" onSubmit={submit}>
      <label for={id}>Default version{cell ? ` in ${cell.cell}` : ''}</label>
      <select id={id} value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
        {versions.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
      <button type="submit">Set default</button>
      <ErrorBox error={error} />
    </form>
  );
}

type Run = (what: string, p: Promise<ChangeResult>) => void;

function AliasForm({ model, cell, run }: { model: ModelDetail; cell: CellModel; run: Run }) {
  const [alias, setAlias] = useState('');
  const [version, setVersion] = useState(cell.versions[0] ?? '');
  const submit = (e: Event) => {
    e.preventDefault();
    run(`alias ${alias} → ${version}`, call('PUT', `/v1/models/${enc(model.name)}/aliases/${enc(alias)}`, { version, cells: [cell.cell] }));
  };
  return (
    <form class="inline" onSubmit={submit}>
      <label for={`alias-${cell.cell}`}>Alias</label>
      <input id={`alias-${cell.cell}`} value={alias} onInput={(e) => setAlias(e.currentTarget.value)} required pattern="[a-z0-9][a-z0-9._-]*" title="lowercase letters, digits, . _ -" />
      <label for={`alias-v-${cell.cell}`}>points at</label>
      <select id={`alias-v-${cell.cell}`} value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
        {cell.versions.map((v) => (
          <option key={v}>{v}</option>
        ))}
      </select>
      <button type="submit">Set alias</button>
    </form>
  );
}

interface Arm {
  version: string;
  weight: string;
  arm: string;
}

/** Problems with the arms as typed: each weight a number >= 0, at least one above 0, versions deployed and distinct. */
export function splitProblems(arms: readonly Arm[], deployed: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  arms.forEach((a, i) => {
    const w = Number(a.weight);
    if (a.weight.trim() === '' || !Number.isFinite(w) || w < 0) problems.push(`arm ${i + 1}: the weight must be a number of 0 or more`);
    if (!deployed.includes(a.version)) problems.push(`arm ${i + 1}: version ${a.version || '(none)'} is not deployed in this cell`);
    const name = a.arm.trim() || a.version;
    if (seen.has(name)) problems.push(`arm ${i + 1}: arm "${name}" appears twice`);
    seen.add(name);
  });
  if (arms.length > 0 && problems.length === 0 && arms.reduce((t, a) => t + Number(a.weight), 0) <= 0) problems.push('the weights must add up to more than 0');
  return problems;
}

function SplitEditor({ model, cell, run, canWrite }: { model: ModelDetail; cell: CellModel; run: Run; canWrite: boolean }) {
  const [arms, setArms] = useState<Arm[]>(cell.split.map((a) => ({ version: a.version, weight: String(a.weight), arm: a.arm === a.version ? '' : a.arm })));
  const problems = splitProblems(arms, cell.versions);
  const total = arms.reduce((t, a) => t + (Number(a.weight) || 0), 0);
  const set = (i: number, patch: Partial<Arm>) => setArms(arms.map((a, j) => (i === j ? { ...a, ...patch } : a)));
  const save = (e: Event) => {
    e.preventDefault();
    if (problems.length) return;
    const body = { arms: arms.map((a) => ({ version: a.version, weight: Number(a.weight), ...(a.arm.trim() ? { arm: a.arm.trim() } : {}) })), cells: [cell.cell] };
    run(arms.length ? 'split saved' : 'split removed', call('PUT', `/v1/models/${enc(model.name)}/split`, body));
  };
  const id = `split-${cell.cell}`;
  if (!canWrite) {
    return (
      <>
        <h3>Traffic split</h3>
        {cell.split.length === 0 ? <p class="muted">No split: the default serves requests that name no version.</p> : null}
        <ul class="plain">
          {cell.split.map((a) => (
            <li key={a.arm}>
              {a.arm}: version {a.version}, weight {a.weight}
            </li>
          ))}
        </ul>
      </>
    );
  }
  return (
    <form onSubmit={save} aria-labelledby={id}>
      <h3 id={id}>Traffic split</h3>
      <p class="hint">Requests that name no version are spread over the arms by weight (sticky by routing key). No arms: the default serves them.</p>
      {arms.map((a, i) => (
        <fieldset key={i} class="inline arm">
          <legend>Arm {i + 1}</legend>
          <label for={`${id}-v-${i}`}>Version</label>
          <select id={`${id}-v-${i}`} value={a.version} onChange={(e) => set(i, { version: e.currentTarget.value })}>
            {cell.versions.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
          <label for={`${id}-w-${i}`}>Weight</label>
          <input id={`${id}-w-${i}`} class="num" inputMode="decimal" value={a.weight} onInput={(e) => set(i, { weight: e.currentTarget.value })} />
          <span class="muted">{total > 0 && Number(a.weight) >= 0 ? `${((Number(a.weight) / total) * 100).toFixed(1)}%` : ''}</span>
          <label for={`${id}-a-${i}`}>Arm name</label>
          <input id={`${id}-a-${i}`} value={a.arm} placeholder={a.version} onInput={(e) => set(i, { arm: e.currentTarget.value })} />
          <button type="button" class="small" onClick={() => setArms(arms.filter((_, j) => j !== i))}>
            Remove arm {i + 1}
          </button>
        </fieldset>
      ))}
      {problems.length ? (
        <ul class="problems" role="alert">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      ) : null}
      <div class="buttons">
        <button type="button" onClick={() => setArms([...arms, { version: cell.versions[0] ?? '', weight: '1', arm: '' }])}>
          Add arm
        </button>
        <button type="submit" disabled={problems.length > 0}>
          {arms.length ? 'Save split' : 'Remove split'}
        </button>
      </div>
    </form>
  );
}

function ShadowsEditor({ model, cell, run, canWrite }: { model: ModelDetail; cell: CellModel; run: Run; canWrite: boolean }) {
  const [shadowModel, setShadowModel] = useState(model.name);
  const [version, setVersion] = useState('');
  const put = (what: string, shadows: { model: string; version: string }[]) => run(what, call('PUT', `/v1/models/${enc(model.name)}/shadows`, { shadows, cells: [cell.cell] }));
  const add = (e: Event) => {
    e.preventDefault();
    put(`shadow ${shadowModel}/${version} added`, [...cell.shadows, { model: shadowModel, version }]);
  };
  const id = `shadows-${cell.cell}`;
  return (
    <section aria-labelledby={id}>
      <h3 id={id}>Shadows</h3>
      {cell.shadows.length === 0 ? <p class="muted">No shadows.</p> : null}
      <ul class="plain">
        {cell.shadows.map((s) => (
          <li key={`${s.model}/${s.version}`}>
            {s.model} {s.version}{' '}
            {canWrite ? (
              <button type="button" class="small" onClick={() => put(`shadow ${s.model}/${s.version} removed`, cell.shadows.filter((x) => x !== s))}>
                Remove shadow {s.model} {s.version}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {canWrite ? (
        <form class="inline" onSubmit={add}>
          <label for={`${id}-m`}>Shadow model</label>
          <input id={`${id}-m`} value={shadowModel} onInput={(e) => setShadowModel(e.currentTarget.value)} required />
          <label for={`${id}-v`}>version</label>
          <input id={`${id}-v`} class="num" value={version} onInput={(e) => setVersion(e.currentTarget.value)} required />
          <button type="submit">Add shadow</button>
        </form>
      ) : null}
    </section>
  );
}
