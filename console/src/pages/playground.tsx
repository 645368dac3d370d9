import { strFromU8 } from 'fflate';
import { useEffect, useState } from 'preact/hooks';
import { parse as parseYaml } from 'yaml';
import { bytes, call, enc, inspect, publish, type ModelDetail, type ModelList, type UploadResult, type Verdict } from '../api.ts';
import { unzip, zipFiles } from '../bundle.ts';
import { CodeEditor } from '../editor.tsx';
import { ErrorBox, Notice, Page, useCanWrite, useLoad } from '../ui.tsx';
import { VerdictView } from '../verdict.tsx';

const MANIFESTS = ['sibyl.yaml', 'sibyl.yml', 'sibyl.json'];

export const TEMPLATE_MANIFEST = `name: basket-fee
version: '1'
runtime: rules
description: delivery fee from the basket value and distance
features:
  - {name: basket_value, dtype: float32, source: request, default: 0}
  - {name: distance_km, dtype: float32, source: request, default: 3}
outputs:
  - {name: fee, dtype: float64}
  - {name: free, dtype: bool}
rules:
  file: rule.js
  timeoutMs: 50
  memoryMb: 32
tests:
  - name: small basket, near
    features: {basket_value: 12, distance_km: 2}
    expected: {fee: 3, free: false}
  - name: small basket, far
    features: {basket_value: 12, distance_km: 8}
    expected: {fee: 6, free: false}
  - name: big basket
    features: {basket_value: 60, distance_km: 8}
    expected: {fee: 0, free: true}
`;

export const TEMPLATE_RULE = `// Runs in the gateway's rules sandbox: one row of features in, the declared outputs out.
export function predict(f, ctx) {
  if (f.basket_value >= 50) return { fee: 0, free: true };
  const fee = 2 + 0.5 * Math.max(0, f.distance_km);
  return { fee, free: false };
}
`;

const TEMPLATE_ROWS = `[
  { "name": "checkout", "features": { "basket_value": 30, "distance_km": 4 } }
]
`;

interface Draft {
  manifest: string;
  manifestFile: string;
  code: string;
  /** Files of the loaded bundle other than the manifest and the rule, kept as they were. */
  others: Record<string, Uint8Array>;
}

function ruleFileOf(manifestText: string): string {
  try {
    const m = parseYaml(manifestText) as { rules?: { file?: string } } | null;
    return m?.rules?.file ?? 'rule.js';
  } catch {
    return 'rule.js';
  }
}

/** The version line raised by one (numbers), for publishing the edit as a new version. */
export function nextVersion(manifestText: string): string {
  return manifestText.replace(/^version:\s*['"]?([^'"\n]+)['"]?\s*$/m, (line, v: string) => {
    const parts = v.split('.');
    const last = Number(parts.at(-1));
    if (!Number.isInteger(last)) return line;
    parts[parts.length - 1] = String(last + 1);
    return `version: '${parts.join('.')}'`;
  });
}

/**
 * The rule playground: a rule's code, manifest (features, outputs, test cases, composed models, limits) and
 * free-form rows, run by the tower in the gateway's sandbox with the same limits without storing anything
 * (POST /v1/validations); publishes through the normal upload gate.
 */
export function PlaygroundPage({ model, version }: { model?: string | undefined; version?: string | undefined }) {
  const canWrite = useCanWrite();
  const [draft, setDraft] = useState<Draft>({ manifest: TEMPLATE_MANIFEST, manifestFile: 'sibyl.yaml', code: TEMPLATE_RULE, others: {} });
  const [rows, setRows] = useState(TEMPLATE_ROWS);
  const [verdict, setVerdict] = useState<Verdict>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState<string>();
  const [published, setPublished] = useState<UploadResult>();
  const [makeDefault, setMakeDefault] = useState(true);
  const rulesModels = useLoad(async () => {
    const { models } = await call<ModelList>('GET', '/v1/models');
    const details = await Promise.all(models.map((m) => call<ModelDetail>('GET', `/v1/models/${enc(m.name)}`)));
    return details.flatMap((d) => d.versions.filter((v) => v.runtime === 'rules').map((v) => `${d.name}/${v.version}`));
  }, []);

  useEffect(() => {
    if (!model || !version) return;
    setBusy(`Loading ${model} ${version}…`);
    bytes(`/v1/models/${enc(model)}/versions/${enc(version)}/bundle`)
      .then((zip) => {
        const files = unzip(zip);
        const manifestFile = MANIFESTS.find((f) => f in files) ?? 'sibyl.yaml';
        const manifest = strFromU8(files[manifestFile] ?? new Uint8Array());
        const ruleFile = ruleFileOf(manifest);
        const others = Object.fromEntries(Object.entries(files).filter(([p]) => p !== manifestFile && p !== ruleFile && !p.endsWith('/')));
        setDraft({ manifest, manifestFile, code: strFromU8(files[ruleFile] ?? new Uint8Array()), others });
        setVerdict(undefined);
        setPublished(undefined);
      }, setError)
      .finally(() => setBusy(undefined));
  }, [model, version]);

  const bundle = () => zipFiles({ ...draft.others, [draft.manifestFile]: new TextEncoder().encode(draft.manifest), [ruleFileOf(draft.manifest)]: new TextEncoder().encode(draft.code) });
  const run = async () => {
    setError(undefined);
    setPublished(undefined);
    let parsedRows: unknown[];
    try {
      parsedRows = rows.trim() ? (JSON.parse(rows) as unknown[]) : [];
    } catch (err) {
      setError(new Error(`rows: ${(err as Error).message}`));
      return;
    }
    setBusy('Running in the sandbox…');
    try {
      setVerdict(await inspect(bundle(), parsedRows));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
    }
  };
  const doPublish = async () => {
    setError(undefined);
    setBusy('Publishing through the upload gate…');
    try {
      setPublished(await publish(bundle(), { makeDefault, cells: 'all' }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
    }
  };

  if (!canWrite) {
    return (
      <Page title="Rule playground">
        <p>The playground runs code in the tower's sandbox and needs the publisher role; this token is a viewer.</p>
      </Page>
    );
  }
  return (
    <Page title="Rule playground">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label for="pg-open">Open a rules version</label>
        <select
          id="pg-open"
          value={model && version ? `${model}/${version}` : ''}
          onChange={(e) => {
            const v = e.currentTarget.value;
            location.hash = v ? `#/playground/${v.split('/').map(enc).join('/')}` : '#/playground';
          }}
        >
          <option value="">new rule (template)</option>
          {(rulesModels.data ?? []).map((mv) => (
            <option key={mv} value={mv}>
              {mv}
            </option>
          ))}
        </select>
      </form>
      <div class="playground">
        <div class="pane">
          <h2 id="pg-code-h">Rule ({ruleFileOf(draft.manifest)})</h2>
          <CodeEditor id="pg-code" label="Rule code" language="javascript" value={draft.code} onChange={(code) => setDraft((d) => ({ ...d, code }))} />
        </div>
        <div class="pane">
          <h2 id="pg-manifest-h">Manifest: features, outputs, test cases, composed models</h2>
          <CodeEditor id="pg-manifest" label="Manifest" language="yaml" value={draft.manifest} onChange={(manifest) => setDraft((d) => ({ ...d, manifest }))} />
        </div>
        <div class="pane">
          <h2 id="pg-rows-h">Free-form rows</h2>
          <p class="hint">
            JSON: <code>[{'{'} "name", "features": {'{'}…{'}'}, "models": {'{'}…{'}'} {'}'}]</code>; missing features take their defaults.
          </p>
          <CodeEditor id="pg-rows" label="Rows" language="json" value={rows} onChange={setRows} />
        </div>
      </div>
      <div class="buttons">
        <button type="button" onClick={run} disabled={!!busy}>
          Run test cases and rows
        </button>
        <button type="button" onClick={() => setDraft((d) => ({ ...d, manifest: nextVersion(d.manifest) }))}>
          Next version
        </button>
        <label class="check">
          <input type="checkbox" checked={makeDefault} onChange={(e) => setMakeDefault(e.currentTarget.checked)} /> make it the default
        </label>
        <button type="button" onClick={doPublish} disabled={!!busy}>
          Publish
        </button>
      </div>
      {busy ? (
        <p class="loading" role="status">
          {busy}
        </p>
      ) : null}
      <ErrorBox error={error} />
      {published ? (
        <Notice>
          Published {published.name} {published.version}
          {published.changed.length ? ` (changed ${published.changed.map((c) => c.cell).join(', ')})` : ''}. <a href={`#/models/${enc(published.name)}`}>Open {published.name}</a>
        </Notice>
      ) : null}
      {verdict ? <VerdictView verdict={verdict} /> : null}
    </Page>
  );
}
