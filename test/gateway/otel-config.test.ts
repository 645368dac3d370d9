/** The OpenTelemetry SDK's standard variables and the access log, read once by gateway/config.ts. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../gateway/config.ts';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('OTEL_* configuration', () => {
  it('defaults: service sibyl-gateway, no extra resource attributes, parentbased_always_on, access log off', () => {
    const c = loadConfig({});
    expect(c.otel).toEqual({ serviceName: 'sibyl-gateway', resourceAttributes: {}, sampler: { name: 'parentbased_always_on', ratio: 1 } });
    expect(c.accessLogRatio).toBe(0);
    expect(Object.isFrozen(c.otel.sampler)).toBe(true);
  });

  it('reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (percent-decoded; the service name wins)', () => {
    const c = loadConfig({
      OTEL_SERVICE_NAME: 'eta-gateway',
      OTEL_RESOURCE_ATTRIBUTES: ' deployment.environment.name = prod ,service.name=ignored,team=ml%20platform%2Cpricing,,k8s.pod.name=gw-1',
    });
    expect(c.otel.serviceName).toBe('eta-gateway');
    expect(c.otel.resourceAttributes).toEqual({
      'deployment.environment.name': 'prod',
      'service.name': 'ignored',
      team: 'ml platform,pricing',
      'k8s.pod.name': 'gw-1',
    });
    expect(loadConfig({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes' }).otel.serviceName).toBe('from-attributes');
    expect(loadConfig({ OTEL_SERVICE_NAME: '  ' }).otel.serviceName).toBe('sibyl-gateway');
  });

  it('reads the sampler and its ratio', () => {
    expect(loadConfig({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).otel.sampler).toEqual({ name: 'traceidratio', ratio: 0.25 });
    expect(loadConfig({ OTEL_TRACES_SAMPLER: 'ParentBased_TraceIdRatio', OTEL_TRACES_SAMPLER_ARG: '0' }).otel.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0 });
    expect(loadConfig({ OTEL_TRACES_SAMPLER: 'always_off' }).otel.sampler).toEqual({ name: 'always_off', ratio: 1 });
    expect(loadConfig({ OTEL_TRACES_SAMPLER: '', OTEL_TRACES_SAMPLER_ARG: '' }).otel.sampler).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(loadConfig({ SIBYL_ACCESS_LOG_RATIO: '0.01' }).accessLogRatio).toBe(0.01);
  });

  it('reports every invalid OTEL_* variable at once', () => {
    const found = problems({
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_TRACES_SAMPLER_ARG: '1.5',
      OTEL_RESOURCE_ATTRIBUTES: 'team=ml,broken',
      SIBYL_ACCESS_LOG_RATIO: '-1',
    });
    expect(found).toHaveLength(4);
    expect(found.find((p) => p.startsWith('OTEL_TRACES_SAMPLER:'))).toMatch(/is not a sampler: use one of always_on, .*parentbased_traceidratio/);
    expect(found.find((p) => p.startsWith('OTEL_TRACES_SAMPLER_ARG:'))).toMatch(/1\.5/);
    expect(found.find((p) => p.startsWith('OTEL_RESOURCE_ATTRIBUTES:'))).toMatch(/"broken" is not a key=value pair/);
    expect(found.find((p) => p.startsWith('SIBYL_ACCESS_LOG_RATIO:'))).toBeDefined();
    expect(problems({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })[0]).toMatch(/OTEL_TRACES_SAMPLER: is not supported/);
    expect(problems({ OTEL_RESOURCE_ATTRIBUTES: 'a=%E0%A4%A' })[0]).toMatch(/"a" is not valid percent-encoding/);
    expect(problems({ OTEL_RESOURCE_ATTRIBUTES: '=x' })[0]).toMatch(/"=x" is not a key=value pair/);
  });
});
