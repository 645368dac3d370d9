import { useRef, useState } from 'preact/hooks';
import { inspect, publish, type UploadResult, type Verdict } from '../api.ts';
import { fromDrop, fromFiles, type PickedBundle } from '../bundle.ts';
import { ErrorBox, Notice, Page, useCanWrite } from '../ui.tsx';
import { VerdictView } from '../verdict.tsx';

/**
 * Upload: drop a zip or a bundle folder (or pick one); the tower runs it through the upload gate without storing
 * it and the verdict shows per check and per test case; a bundle that passed can then be published.
 */
export function UploadPage() {
  const canWrite = useCanWrite();
  const [picked, setPicked] = useState<PickedBundle>();
  const [verdict, setVerdict] = useState<Verdict>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [over, setOver] = useState(false);
  const [makeDefault, setMakeDefault] = useState(false);
  const [deployAll, setDeployAll] = useState(true);
  const [published, setPublished] = useState<UploadResult>();
  const zipInput = useRef<HTMLInputElement>(null);
  const dirInput = useRef<HTMLInputElement>(null);

  const check = async (get: () => Promise<PickedBundle>) => {
    setBusy(true);
    setError(undefined);
    setVerdict(undefined);
    setPublished(undefined);
    try {
      const p = await get();
      setPicked(p);
      setVerdict(await inspect(p.zip));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const doPublish = async () => {
    if (!picked) return;
    setBusy(true);
    try {
      setPublished(await publish(picked.zip, { makeDefault, ...(deployAll ? { cells: 'all' } : {}) }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (!canWrite) {
    return (
      <Page title="Upload">
        <p>Uploading needs the publisher role; this token is a viewer.</p>
      </Page>
    );
  }
  return (
    <Page title="Upload a bundle">
      <div
        class={`dropzone${over ? ' over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => (e.preventDefault(), setOver(true))}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          if (e.dataTransfer) void check(() => fromDrop(e.dataTransfer!));
        }}
      >
        <p>
          <strong>Drop a bundle zip or a bundle folder here</strong> (a folder with <code>sibyl.yaml</code> and the files it names).
        </p>
        <p>It is validated by the same gate as an upload: nothing is stored until you publish a bundle that passed.</p>
        <div class="buttons">
          <button type="button" onClick={() => zipInput.current?.click()}>
            Choose a zip…
          </button>
          <button type="button" onClick={() => dirInput.current?.click()}>
            Choose a folder…
          </button>
        </div>
        <input ref={zipInput} hidden type="file" accept=".zip,application/zip" onChange={(e) => e.currentTarget.files?.length && check(() => fromFiles([...e.currentTarget.files!]))} />
        <input
          ref={dirInput}
          hidden
          type="file"
          {...{ webkitdirectory: true }}
          onChange={(e) => e.currentTarget.files?.length && check(() => fromFiles([...e.currentTarget.files!]))}
        />
      </div>
      {busy ? <p class="loading" role="status">Validating {picked?.label ?? ''}…</p> : null}
      <ErrorBox error={error} />
      {verdict ? <VerdictView verdict={verdict} /> : null}
      {verdict?.ok && !published ? (
        <section class="card" aria-label="Publish">
          <label class="check">
            <input type="checkbox" checked={deployAll} onChange={(e) => setDeployAll(e.currentTarget.checked)} /> Deploy to every cell
          </label>
          <label class="check">
            <input type="checkbox" checked={makeDefault} onChange={(e) => setMakeDefault(e.currentTarget.checked)} /> Make it the default
          </label>
          <button type="button" disabled={busy} onClick={doPublish}>
            Publish {picked?.label}
          </button>
        </section>
      ) : null}
      {published ? (
        <Notice>
          Published {published.name} {published.version} ({published.created ? 'new' : 'identical to the stored version'})
          {published.changed.length ? `; changed ${published.changed.map((c) => `${c.cell} (revision ${c.revision})`).join(', ')}` : ''}.{' '}
          <a href={`#/models/${encodeURIComponent(published.name)}`}>Open {published.name}</a>
        </Notice>
      ) : null}
    </Page>
  );
}
