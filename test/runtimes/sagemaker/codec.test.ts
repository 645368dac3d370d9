import { describe, expect, it } from 'vitest';
import { SibylError } from '../../../core/errors.ts';
import { validateManifest } from '../../../runtimes/manifest.ts';
import { sageMakerOptionsFromEnv } from '../../../runtimes/sagemaker/options-from-env.ts';
import { createRequestEncoder } from '../../../runtimes/sagemaker/request-encoder.ts';
import { createResponseDecoder } from '../../../runtimes/sagemaker/response-decoder.ts';
import { parseSageMakerSettings } from '../../../runtimes/sagemaker/settings.ts';
import { scoreManifest } from './fixtures.ts';

function failure(fn: () => unknown): SibylError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SibylError);
    return err as SibylError;
  }
  throw new Error('expected a throw');
}

const settingsOf = (sm: Record<string, unknown> = {}, o: Record<string, unknown> = {}) => parseSageMakerSettings(validateManifest(scoreManifest(sm, o)));
const encoderOf = (sm: Record<string, unknown> = {}, o: Record<string, unknown> = {}) => {
  const m = validateManifest(scoreManifest(sm, o));
  const encode = createRequestEncoder(parseSageMakerSettings(m), m);
  return (rows: Parameters<typeof encode>[0]) => encode(rows).toString('utf8');
};
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('sagemaker settings', () => {
  it('fills the defaults: accept follows contentType, every feature in declared order, 3 attempts, 60 s, 6 MiB', () => {
    const s = settingsOf();
    expect(s).toMatchObject({
      endpoint: 'scorer-prod',
      region: 'eu-west-1',
      variant: undefined,
      contentType: 'application/json',
      accept: 'application/json',
      columns: ['a', 'b', 'c'],
      jsonKey: 'instances',
      jsonRows: 'arrays',
      responseKey: 'predictions',
      maxAttempts: 3,
      timeoutMs: 60_000,
      maxBodyBytes: 6 * 1024 * 1024,
    });
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('reports every problem at once, each with its path', () => {
    const e = failure(() => settingsOf({ endpoint: '-bad-', region: 'mars', contentType: 'text/xml', maxAttempts: 9, extra: 1, features: ['a', 'zz', 'a'] }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    for (const path of ['sagemaker.endpoint', 'sagemaker.region', 'sagemaker.contentType', 'sagemaker.maxAttempts']) expect(e.message).toContain(path);
    expect(e.message).toMatch(/extra/);
    // Feature names are checked against the manifest once the section's shape is right.
    const f = failure(() => settingsOf({ features: ['a', 'zz', 'a'] }));
    expect(f.message).toContain('sagemaker.features.1: names undeclared feature "zz"');
    expect(f.message).toContain('sagemaker.features.2: duplicate feature "a"');
  });

  it('refuses a manifest without a sagemaker section or of another runtime', () => {
    const m = validateManifest(scoreManifest());
    expect(failure(() => parseSageMakerSettings({ ...m, sagemaker: undefined })).message).toContain('sagemaker: is required');
    expect(failure(() => parseSageMakerSettings({ ...m, runtime: 'rules' })).code).toBe('INVALID_ARGUMENT');
  });
});

describe('sagemaker request encoding', () => {
  it('JSON: {"instances": [[...]]} in column order, absent values from the defaults', () => {
    expect(encoderOf()([{ a: 1, b: 2, c: 3 }, { a: -0.5, b: 0 }])).toBe('{"instances":[[1,2,3],[-0.5,0,1]]}');
    expect(encoderOf({ features: ['c', 'a'] })([{ a: 1, b: 2, c: 3 }])).toBe('{"instances":[[3,1]]}');
  });

  it('JSON: a configurable key, a bare array, or objects keyed by feature', () => {
    expect(encoderOf({ json: { key: 'inputs' } })([{ a: 1, b: 2, c: 3 }])).toBe('{"inputs":[[1,2,3]]}');
    expect(encoderOf({ json: { key: null } })([{ a: 1, b: 2, c: 3 }])).toBe('[[1,2,3]]');
    expect(encoderOf({ json: { rows: 'objects' } })([{ a: 1, b: 2, c: 3 }])).toBe('{"instances":[{"a":1,"b":2,"c":3}]}');
  });

  it('CSV: one line per row in column order, booleans as 1/0, strings quoted only when needed', () => {
    const features = [
      { name: 'n', dtype: 'int64', source: 'request', default: 0 },
      { name: 'flag', dtype: 'bool', source: 'request', default: false },
      { name: 'city', dtype: 'string', source: 'request', default: '' },
    ];
    const enc = encoderOf({ contentType: 'text/csv' }, { features });
    expect(enc([{ n: 3, flag: true, city: 'Pune' }, { n: -1, flag: false, city: 'a,"b"' }])).toBe('3,1,Pune\n-1,0,"a,""b"""');
  });

  it('rejects a value that does not fit its dtype with INVALID_ARGUMENT naming row and feature', () => {
    const enc = encoderOf();
    let e = failure(() => enc([{ a: 1, b: 2, c: 3 }, { a: 'x', b: 2, c: 3 }]));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('rows[1].a');
    e = failure(() => enc([{ a: Number.NaN, b: 2, c: 3 }]));
    expect(e.message).toContain('rows[0].a');
    const ints = encoderOf({}, { features: [{ name: 'n', dtype: 'int32', source: 'request', default: 0 }] });
    expect(failure(() => ints([{ n: 1.5 }])).message).toContain('rows[0].n');
  });

  it('refuses a body above maxBodyBytes before sending it', () => {
    const enc = encoderOf({ maxBodyBytes: 64 });
    expect(enc([{ a: 1, b: 2, c: 3 }])).toBe('{"instances":[[1,2,3]]}');
    const rows = Array.from({ length: 20 }, () => ({ a: 1, b: 2, c: 3 }));
    const e = failure(() => enc(rows));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/above the endpoint's limit of 64/);
  });
});

describe('sagemaker response decoding', () => {
  const decode = createResponseDecoder(settingsOf());

  it('reads {"predictions": [...]} and bare arrays, with objects, lists or scalars per row', () => {
    expect(decode(utf8('{"predictions":[{"score":1.5,"label":1},{"score":-2,"label":0}]}'), 'application/json', 2)).toEqual([
      { score: 1.5, label: 1 },
      { score: -2, label: 0 },
    ]);
    expect(decode(utf8('[[1.5,1],[-2,0]]'), 'application/json', 2)).toEqual([
      { score: 1.5, label: 1 },
      { score: -2, label: 0 },
    ]);
    const single = createResponseDecoder(settingsOf({}, { outputs: [{ name: 'p' }] }));
    expect(single(utf8('{"predictions":[0.25,[0.5]]}'), 'application/json', 2)).toEqual([{ p: 0.25 }, { p: 0.5 }]);
    const vector = createResponseDecoder(settingsOf({}, { outputs: [{ name: 'probs', kind: 'vector' }] }));
    expect(vector(utf8('{"predictions":[[0.1,0.9]]}'), 'application/json', 1)).toEqual([{ probs: [0.1, 0.9] }]);
  });

  it('reads CSV: one line per row, or one line with a value per row for a single scalar output', () => {
    expect(decode(utf8('1.5,1\n-2,0\n'), 'text/csv', 2)).toEqual([
      { score: 1.5, label: 1 },
      { score: -2, label: 0 },
    ]);
    const single = createResponseDecoder(settingsOf({ contentType: 'text/csv' }, { outputs: [{ name: 'p' }] }));
    expect(single(utf8('0.1,0.2,0.3'), 'text/csv', 3)).toEqual([{ p: 0.1 }, { p: 0.2 }, { p: 0.3 }]);
    // Without a usable Content-Type the declared accept decides.
    expect(single(utf8('0.7\n'), undefined, 1)).toEqual([{ p: 0.7 }]);
  });

  it('rejects a response that does not fit the declared outputs with INTERNAL, without echoing its content', () => {
    const cases: [string, number][] = [
      ['{"predictions":[{"score":1,"label":1}]}', 2], // too few answers
      ['{"predictions":[{"score":1}]}', 1], // missing output
      ['{"predictions":[{"score":"secret-token","label":1}]}', 1], // wrong type
      ['{"predictions":[{"score":1,"label":0.5}]}', 1], // not an integer
      ['{"outputs":[[1,1]]}', 1], // wrong key
      ['not json secret-token', 1],
      ['[[1,2,3]]', 1], // wrong arity
    ];
    for (const [body, rows] of cases) {
      const e = failure(() => decode(utf8(body), 'application/json', rows));
      expect(e.code).toBe('INTERNAL');
      expect(e.message).toMatch(/does not match the declared outputs/);
      expect(e.message).not.toContain('secret-token');
    }
  });
});

describe('sagemaker options from the environment', () => {
  it('takes the most specific endpoint URL and static credentials when both keys are set', () => {
    expect(sageMakerOptionsFromEnv({})).toEqual({ endpointUrl: undefined, credentials: undefined });
    expect(sageMakerOptionsFromEnv({ AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_SAGEMAKER: 'http://b:2' }).endpointUrl).toBe('http://b:2');
    expect(sageMakerOptionsFromEnv({ AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: 'https://c' }).endpointUrl).toBe('https://c');
    expect(sageMakerOptionsFromEnv({ AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't' }).credentials).toEqual({
      accessKeyId: 'id',
      secretAccessKey: 's',
      sessionToken: 't',
    });
  });

  it('reports a bad URL and a half key pair together', () => {
    const e = failure(() => sageMakerOptionsFromEnv({ AWS_ENDPOINT_URL: 'localhost:5055', AWS_ACCESS_KEY_ID: 'id' }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('AWS_ENDPOINT_URL: must be an http(s) URL');
    expect(e.message).toContain('AWS_SECRET_ACCESS_KEY');
  });
});
