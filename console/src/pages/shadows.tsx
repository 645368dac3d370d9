import { useEffect, useRef, useState } from 'preact/hooks';
import { call, enc, type ShadowsReport } from '../api.ts';
import { BarChart, LineChart, type Group, type Series } from '../charts.tsx';
import { ErrorBox, Page, Table, time } from '../ui.tsx';

/** How often the page asks again; gateways report every SIBYL_REPORT_INTERVAL_MS (30 s by default) and on change. */
const POLL_MS = 5_000;
/** Samples kept per pair and replica. */
const KEEP = 120;

type Pair = {
  liveModel?: string;
  liveVersion?: string;
  shadowModel?: string;
  shadowVersion?: string;
  executed?: string | number;
  shed?: string | number;
  errors?: Record<string, string | number>;
  latencyMs?: { p50?: number; p90?: number; p99?: number; max?: number };
  outputs?: Record<string, { kind?: string; count?: string | number; meanAbsDiff?: number; absDiff?: { p50?: number; p90?: number; p99?: number; max?: number }; agreement?: number }>;
};

interface Sample {
  t: number;
  executed: number;
  shed: number;
  errors: number;
}

const n = (v: unknown) => Number(v ?? 0) || 0;

/**
 * The live-versus-shadow comparison of one model: per pair and replica (cell), shadow latency percentiles, the
 * difference distribution of numeric outputs and the agreement of labels, executions, errors and shed counts, and
 * those counts over time as this page samples the replicas' reports (the tower keeps each replica's latest).
 */
export function ShadowsPage({ name }: { name: string }) {
  const [report, setReport] = useState<ShadowsReport>();
  const [error, setError] = useState<unknown>();
  const history = useRef(new Map<string, Sample[]>());
  const [, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const poll = () =>
      call<ShadowsReport>('GET', `/v1/models/${enc(name)}/shadows`).then(
        (r) => {
          if (!live) return;
          const now = Date.now();
          for (const rep of r.replicas) {
            for (const p of rep.pairs as unknown as Pair[]) {
              const key = pairKey(rep.cell, rep.replica, p);
              const list = history.current.get(key) ?? [];
              list.push({ t: now, executed: n(p.executed), shed: n(p.shed), errors: Object.values(p.errors ?? {}).reduce((a: number, b) => a + n(b), 0) });
              history.current.set(key, list.slice(-KEEP));
            }
          }
          setReport(r);
          setError(undefined);
          setTick((t) => t + 1);
        },
        (e) => live && setError(e),
      );
    void poll();
    const timer = setInterval(poll, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [name]);

  const entries = (report?.replicas ?? []).flatMap((rep) => (rep.pairs as unknown as Pair[]).map((p) => ({ rep, p, key: pairKey(rep.cell, rep.replica, p) })));
  const latency: Group[] = entries.map(({ key, p }) => ({
    label: key,
    bars: [
      { name: 'p50', value: n(p.latencyMs?.p50) },
      { name: 'p90', value: n(p.latencyMs?.p90) },
      { name: 'p99', value: n(p.latencyMs?.p99) },
      { name: 'max', value: n(p.latencyMs?.max) },
    ],
  }));
  const counts: Group[] = entries.map(({ key, p }) => ({
    label: key,
    bars: [
      { name: 'executed', value: n(p.executed) },
      { name: 'shed', value: n(p.shed) },
      ...Object.entries(p.errors ?? {}).map(([code, c]) => ({ name: `error ${code}`, value: n(c) })),
    ],
  }));
  const outputs = entries.flatMap(({ key, p }) => Object.entries(p.outputs ?? {}).map(([out, o]) => ({ key, out, o })));
  const diffs: Group[] = outputs
    .filter((x) => x.o.kind !== 'label')
    .map(({ key, out, o }) => ({
      label: `${out} · ${key}`,
      bars: [
        { name: 'mean', value: n(o.meanAbsDiff) },
        { name: 'p50', value: n(o.absDiff?.p50) },
        { name: 'p90', value: n(o.absDiff?.p90) },
        { name: 'p99', value: n(o.absDiff?.p99) },
        { name: 'max', value: n(o.absDiff?.max) },
      ],
    }));
  const agreement: Group[] = outputs.filter((x) => x.o.kind === 'label').map(({ key, out, o }) => ({ label: `${out} · ${key}`, bars: [{ name: 'agreement %', value: n(o.agreement) * 100 }] }));
  const over = (field: keyof Omit<Sample, 't'>): Series[] => entries.map(({ key }) => ({ name: key, points: (history.current.get(key) ?? []).map((s) => ({ t: s.t, v: s[field] })) }));

  return (
    <Page title={`Shadows of ${name}`} actions={<a href={`#/models/${enc(name)}`}>Back to {name}</a>}>
      <ErrorBox error={error} />
      {report ? (
        <>
          <h2>Configured</h2>
          <ul class="plain">
            {report.configured.map((c) => (
              <li key={c.cell}>
                <strong>{c.cell}</strong>: {c.shadows.length ? c.shadows.map((s) => `${s.model} ${s.version}`).join(', ') : 'no shadows'}
              </li>
            ))}
          </ul>
          {entries.length === 0 ? (
            <p data-testid="no-comparison">No replica has reported a comparison yet: it appears after live traffic, when the gateway next reports.</p>
          ) : (
            <>
              <Table label="Pairs">
                <thead>
                  <tr>
                    <th scope="col">Cell / replica</th>
                    <th scope="col">Live → shadow</th>
                    <th scope="col">Executed</th>
                    <th scope="col">Shed</th>
                    <th scope="col">Errors</th>
                    <th scope="col">Reported</th>
                  </tr>
                </thead>
                <tbody>
                  {entries.map(({ rep, p, key }) => (
                    <tr key={key}>
                      <td>
                        {rep.cell} / {rep.replica}
                      </td>
                      <td>
                        {p.liveModel} {p.liveVersion} → {p.shadowModel} {p.shadowVersion}
                      </td>
                      <td>{n(p.executed)}</td>
                      <td>{n(p.shed)}</td>
                      <td>{Object.entries(p.errors ?? {}).map(([c, v]) => `${c}: ${n(v)}`).join(', ') || '0'}</td>
                      <td>{time(rep.received)}</td>
                    </tr>
                  ))}
                </tbody>
              </Table>
              <div class="charts">
                <BarChart testId="chart-latency" title="Shadow latency percentiles" unit="ms" groups={latency} />
                {diffs.length ? <BarChart testId="chart-diff" title="Absolute difference from live, per numeric output" unit="|diff|" groups={diffs} /> : null}
                {agreement.length ? <BarChart testId="chart-agreement" title="Label agreement with live" unit="%" groups={agreement} /> : null}
                <BarChart testId="chart-counts" title="Executions, errors and shed" unit="count" groups={counts} />
                <LineChart testId="chart-executed" title="Shadow executions over time (as sampled by this page)" unit="count" series={over('executed')} />
                <LineChart testId="chart-errors" title="Errors and shed over time" unit="count" series={[...over('errors').map((s) => ({ ...s, name: `errors ${s.name}` })), ...over('shed').map((s) => ({ ...s, name: `shed ${s.name}` }))]} />
              </div>
            </>
          )}
        </>
      ) : null}
    </Page>
  );
}

function pairKey(cell: string, replica: string, p: Pair): string {
  return `${cell}/${replica}: ${p.shadowModel === p.liveModel ? '' : `${p.shadowModel} `}${p.liveVersion}→${p.shadowVersion}`;
}
