/**
 * Small SVG charts for the shadow comparison: grouped bars and lines over time. Drawn here (a few dozen lines)
 * rather than with a charting library: they show a handful of numbers per pair, and every colour comes from the
 * stylesheet (classes s0..s5), so the page needs no inline style under its CSP. Each chart is an image with a
 * text alternative listing its numbers.
 */
export interface Bar {
  readonly name: string;
  readonly value: number;
}
export interface Group {
  readonly label: string;
  readonly bars: readonly Bar[];
}

const W = 560;
const H = 220;
const PAD = { left: 56, right: 12, top: 26, bottom: 40 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / p) * p;
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

export function BarChart({ title, unit, groups, testId }: { title: string; unit: string; groups: readonly Group[]; testId?: string }) {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const max = niceMax(Math.max(0, ...groups.flatMap((g) => g.bars.map((b) => b.value))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const gw = plotW / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, names.length);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const alt = `${title}: ${groups.map((g) => `${g.label}: ${g.bars.map((b) => `${b.name} ${fmt(b.value)} ${unit}`).join(', ')}`).join('; ')}`;
  return (
    <figure class="chart" data-testid={testId} data-points={groups.reduce((t, g) => t + g.bars.length, 0)}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={alt}>
        <ValueAxis max={max} y={y} />
        {groups.map((g, gi) => (
          <g key={g.label}>
            {g.bars.map((b) => {
              const i = names.indexOf(b.name);
              const h = (Math.max(0, b.value) / max) * plotH;
              return <rect key={b.name} class={`s${i % 6}`} x={PAD.left + gi * gw + gw * 0.1 + i * bw} y={PAD.top + plotH - h} width={Math.max(1, bw - 2)} height={h} />;
            })}
            <text class="axis middle" x={PAD.left + gi * gw + gw / 2} y={H - PAD.bottom + 16}>
              {g.label.length > 28 ? `${g.label.slice(0, 27)}…` : g.label}
            </text>
          </g>
        ))}
        <text class="axis" x={PAD.left} y={12}>
          {unit}
        </text>
      </svg>
      <Legend names={names} />
    </figure>
  );
}

/** Grid lines and labels at 0, half and the top of a chart's value axis. */
function ValueAxis({ max, y }: { max: number; y: (v: number) => number }) {
  return (
    <>
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={y(max * f)} y2={y(max * f)} />
          <text class="axis end" x={PAD.left - 6} y={y(max * f) + 4}>
            {fmt(max * f)}
          </text>
        </g>
      ))}
    </>
  );
}

export interface Series {
  readonly name: string;
  readonly points: readonly { t: number; v: number }[];
}

export function LineChart({ title, unit, series, testId }: { title: string; unit: string; series: readonly Series[]; testId?: string }) {
  const all = series.flatMap((s) => s.points);
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(t0 + 1, ...all.map((p) => p.t));
  const max = niceMax(Math.max(0, ...all.map((p) => p.v)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const alt = `${title}: ${series.map((s) => `${s.name} ${s.points.length ? fmt(s.points.at(-1)!.v) : 0} ${unit} at the last sample`).join('; ')}`;
  return (
    <figure class="chart" data-testid={testId} data-points={all.length}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={alt}>
        <ValueAxis max={max} y={y} />
        {series.map((s, i) => (
          <g key={s.name}>
            <polyline class={`line s${i % 6}`} points={s.points.map((p) => `${x(p.t)},${y(p.v)}`).join(' ')} />
            {s.points.map((p) => (
              <circle key={p.t} class={`s${i % 6}`} cx={x(p.t)} cy={y(p.v)} r={2.5} />
            ))}
          </g>
        ))}
        <text class="axis" x={PAD.left} y={H - PAD.bottom + 16}>
          {all.length ? new Date(t0).toISOString().slice(11, 19) : ''}
        </text>
        <text class="axis end" x={W - PAD.right} y={H - PAD.bottom + 16}>
          {all.length ? new Date(t1).toISOString().slice(11, 19) : ''} UTC
        </text>
        <text class="axis" x={PAD.left} y={12}>
          {unit}
        </text>
      </svg>
      <Legend names={series.map((s) => s.name)} />
    </figure>
  );
}

function Legend({ names }: { names: readonly string[] }) {
  return (
    <ul class="legend" aria-hidden="true">
      {names.map((n, i) => (
        <li key={n}>
          <span class={`swatch s${i % 6}`} />
          {n}
        </li>
      ))}
    </ul>
  );
}
