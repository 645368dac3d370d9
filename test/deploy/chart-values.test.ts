/**
 * The Helm charts' values stay in step with the configuration the processes read: every variable the charts let a
 * values file set (`gateway.env`, the tower's `env`) and every variable their templates write is one that
 * gateway/config.ts or control-tower/config.ts reads. Rendering and strict validation of the charts themselves run
 * in scripts/deploy/check-chart.sh (helm and the Kubernetes API types), which CI calls after `npm test`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The variable names a config module's zod `Env` object declares (`NAME: z...`). */
function declared(path: string): Set<string> {
  return new Set([...read(path).matchAll(/^\s+([A-Z][A-Z0-9_]+):\s/gm)].map((m) => m[1]!));
}

/**
 * The environment variable names a chart's templates set for Sibyl (`- name: X` followed by `value`/`valueFrom` on
 * the next line; the in-chart Kafka's settings are written inline and are not Sibyl's).
 */
function written(chart: string): Set<string> {
  const dir = join('deploy/helm', chart, 'templates');
  const names = new Set<string>();
  for (const file of readdirSync(join(root, dir))) {
    for (const m of read(join(dir, file)).matchAll(/- name: ([A-Z][A-Z0-9_]+)\s*\n\s*value/g)) names.add(m[1]!);
  }
  return names;
}

describe('chart values and the configuration they feed', () => {
  const gateway = declared('gateway/config.ts');
  const tower = declared('control-tower/config.ts');

  it('reads the config modules', () => {
    expect(gateway.has('SIBYL_DRAIN_TIMEOUT_MS')).toBe(true);
    expect(tower.has('SIBYL_CELLS')).toBe(true);
  });

  it('sibyl-cell: gateway.env offers and the templates write only variables the gateway reads', () => {
    const schema = JSON.parse(read('deploy/helm/sibyl-cell/values.schema.json'));
    const offered: string[] = schema.properties.gateway.properties.env.propertyNames.enum;
    expect(offered.filter((v) => !gateway.has(v))).toEqual([]);
    expect([...written('sibyl-cell')].filter((v) => !gateway.has(v))).toEqual([]);
    // The chart sets these itself; values may not override them.
    for (const v of ['SIBYL_CELL', 'SIBYL_CONTROL_TOWER_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'SIBYL_DRAIN_GRACE_MS', 'SIBYL_DRAIN_TIMEOUT_MS']) {
      expect(offered).not.toContain(v);
    }
  });

  it('sibyl-tower: env offers and the templates write only variables the tower reads', () => {
    const schema = JSON.parse(read('deploy/helm/sibyl-tower/values.schema.json'));
    const offered: string[] = schema.properties.env.propertyNames.enum;
    expect(offered.filter((v) => !tower.has(v))).toEqual([]);
    expect([...written('sibyl-tower')].filter((v) => !tower.has(v))).toEqual([]);
  });
});
