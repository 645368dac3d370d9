import { describe, expect, it } from 'vitest';
import { mergeExpositions, withLabel } from '../../../gateway/workers/pod-metrics.ts';

const worker = (n: number) => `# HELP sibyl_requests_total Requests.
# TYPE sibyl_requests_total counter
sibyl_requests_total{model="a",code="OK"} ${n}
# HELP up_seconds Uptime.
# TYPE up_seconds gauge
up_seconds ${n * 10}
# HELP d_seconds Duration.
# TYPE d_seconds histogram
d_seconds_bucket{le="0.1"} ${n}
d_seconds_bucket{le="+Inf"} ${n}
d_seconds_sum ${n / 100}
d_seconds_count ${n}
`;

describe('the pod exposition', () => {
  it('labels every sample with its worker and lists each family once, its samples together', () => {
    const text = mergeExpositions([{ worker: 0, text: worker(3) }, { worker: 1, text: worker(5) }], '# TYPE sibyl_workers gauge\nsibyl_workers 2');
    expect(text).toBe(`# HELP sibyl_requests_total Requests.
# TYPE sibyl_requests_total counter
sibyl_requests_total{worker="0",model="a",code="OK"} 3
sibyl_requests_total{worker="1",model="a",code="OK"} 5
# HELP up_seconds Uptime.
# TYPE up_seconds gauge
up_seconds{worker="0"} 30
up_seconds{worker="1"} 50
# HELP d_seconds Duration.
# TYPE d_seconds histogram
d_seconds_bucket{worker="0",le="0.1"} 3
d_seconds_bucket{worker="0",le="+Inf"} 3
d_seconds_sum{worker="0"} 0.03
d_seconds_count{worker="0"} 3
d_seconds_bucket{worker="1",le="0.1"} 5
d_seconds_bucket{worker="1",le="+Inf"} 5
d_seconds_sum{worker="1"} 0.05
d_seconds_count{worker="1"} 5
# TYPE sibyl_workers gauge
sibyl_workers 2
`);
  });
  it('keeps families only one worker has, and label values with braces and spaces', () => {
    const text = mergeExpositions([
      { worker: 0, text: '# TYPE a counter\na_total 1\n' },
      { worker: 2, text: '# TYPE b gauge\nb{path="/x {y} z"} 7 1700000000000\nb{} 1\n' },
    ]);
    expect(text).toBe('# TYPE a counter\na_total{worker="0"} 1\n# TYPE b gauge\nb{worker="2",path="/x {y} z"} 7 1700000000000\nb{worker="2"} 1\n');
    expect(withLabel('x 1', 'worker', '0')).toBe('x{worker="0"} 1');
  });
});
