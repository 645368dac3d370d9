import type { CaseResult, Verdict } from './api.ts';
import { json, shortSha, Table } from './ui.tsx';

/** The gate's verdict: each check in order, then every test case with its diff, then free-form rows. */
export function VerdictView({ verdict }: { verdict: Verdict }) {
  const m = verdict.manifest as { name?: string; version?: string } | undefined;
  const failed = verdict.cases.filter((c) => c.problems.length > 0).length;
  return (
    <section class="verdict" aria-label="Verdict">
      <h2 class={verdict.ok ? 'pass' : 'fail'} data-testid="verdict">
        {verdict.ok ? 'Passed' : 'Failed'}
        {m?.name ? `: ${m.name} ${m.version}` : ''}
      </h2>
      <p class="muted">
        sha256 <code title={verdict.sha256}>{shortSha(verdict.sha256)}</code>, {verdict.sizeBytes} bytes. {verdict.ok ? '' : 'Nothing was stored.'}
      </p>
      <h3>Checks</h3>
      <ol class="checks">
        {verdict.checks.map((c) => (
          <li key={c.name} class={c.ok ? 'pass' : 'fail'}>
            <span class="mark" aria-hidden="true">
              {c.ok ? '✓' : '✗'}
            </span>{' '}
            <strong>{c.name}</strong> <span class="sr-only">{c.ok ? 'passed' : 'failed'}</span>
            {c.message ? <pre class="message">{c.message}</pre> : null}
          </li>
        ))}
      </ol>
      {verdict.cases.length ? (
        <>
          <h3>
            Test cases <span class="muted">({verdict.cases.length - failed} of {verdict.cases.length} passed)</span>
          </h3>
          <Cases cases={verdict.cases} label="Test cases" />
        </>
      ) : null}
      {verdict.rows.length ? (
        <>
          <h3>Rows</h3>
          <Cases cases={verdict.rows} label="Rows" />
        </>
      ) : null}
    </section>
  );
}

function Cases({ cases, label }: { cases: readonly CaseResult[]; label: string }) {
  return (
    <Table label={label}>
      <thead>
        <tr>
          <th scope="col">Case</th>
          <th scope="col">Result</th>
          <th scope="col">Output</th>
          <th scope="col">Expected</th>
          <th scope="col">Actual</th>
          <th scope="col">Time</th>
        </tr>
      </thead>
      <tbody>
        {cases.flatMap((c) => {
          const names = [...new Set([...Object.keys(c.expected), ...Object.keys(c.outputs ?? {})])];
          const bad = c.problems.length > 0;
          const head = (
            <tr key={c.name} class={bad ? 'fail' : 'pass'} data-case={c.name}>
              <th scope="row" rowSpan={Math.max(1, names.length) + (bad ? 1 : 0)}>
                {c.name}
              </th>
              <td rowSpan={Math.max(1, names.length) + (bad ? 1 : 0)}>{bad ? <span class="fail">✗ failed</span> : <span class="pass">✓ {Object.keys(c.expected).length ? 'passed' : 'ran'}</span>}</td>
              {cells(c, names[0])}
              <td rowSpan={Math.max(1, names.length)}>{c.ms.toFixed(2)} ms</td>
            </tr>
          );
          const rest = names.slice(1).map((n) => (
            <tr key={`${c.name}/${n}`} class={bad ? 'fail' : 'pass'}>
              {cells(c, n)}
            </tr>
          ));
          const diff = bad ? (
            <tr key={`${c.name}/diff`} class="fail">
              <td colSpan={4}>
                <ul class="problems diff">
                  {c.problems.map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                </ul>
              </td>
            </tr>
          ) : null;
          return [head, ...rest, ...(diff ? [diff] : [])];
        })}
      </tbody>
    </Table>
  );
}

function cells(c: CaseResult, name: string | undefined) {
  if (name === undefined) {
    return (
      <>
        <td colSpan={3}>{c.error ? `${c.error.code}: ${c.error.message}` : ''}</td>
      </>
    );
  }
  const has = name in c.expected;
  const differs = c.problems.some((p) => p.startsWith(`${name}:`) || p.startsWith(`${name}[`));
  return (
    <>
      <td>
        <code>{name}</code>
      </td>
      <td>{has ? <code class="wrap">{json(c.expected[name])}</code> : <span class="muted">—</span>}</td>
      <td class={differs ? 'differs' : ''}>
        {c.outputs && name in c.outputs ? <code class="wrap">{json(c.outputs[name])}</code> : <span class="muted">{c.error ? c.error.code : 'none'}</span>}
      </td>
    </>
  );
}
