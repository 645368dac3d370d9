import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FeatureFileError, loadFeatureFile, formatOf } from '../../gateway/features/feature-file.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

async function failure(name: string, format?: 'csv' | 'jsonl'): Promise<FeatureFileError> {
  try {
    await loadFeatureFile(fixture(name), 'sibyl', format);
  } catch (err) {
    expect(err).toBeInstanceOf(FeatureFileError);
    return err as FeatureFileError;
  }
  throw new Error(`${name} loaded without error`);
}

describe('feature files', () => {
  it('reads JSON lines into prefixed keys with string values, skipping nulls and blank lines', async () => {
    expect(await loadFeatureFile(fixture('features.jsonl'), 'sibyl')).toEqual([
      { key: 'sibyl:restaurant:r1', fields: { prep_time_avg_7d: '14.2', orders_last_30m: '11', cuisine: 'thai', is_open: 'true' } },
      { key: 'sibyl:restaurant:r2', fields: { prep_time_avg_7d: '9.5', orders_last_30m: '0' } },
      { key: 'sibyl:customer:42', fields: { orders_30d: '3' } },
    ]);
  });

  it('reads CSV with an entity,id header, skipping empty cells and honouring quotes', async () => {
    expect(await loadFeatureFile(fixture('features.csv'), 'p')).toEqual([
      { key: 'p:restaurant:r1', fields: { prep_time_avg_7d: '14.2', orders_last_30m: '11', cuisine: 'thai' } },
      { key: 'p:restaurant:r2', fields: { prep_time_avg_7d: '9.5', orders_last_30m: '0' } },
      { key: 'p:customer:42', fields: { cuisine: 'sushi, ramen' } },
    ]);
  });

  it('picks the format from the extension', () => {
    expect(formatOf('a/b.CSV')).toBe('csv');
    expect(formatOf('a/b.jsonl')).toBe('jsonl');
    expect(formatOf('a/b.ndjson')).toBe('jsonl');
  });

  it('names the line and the problem of a bad JSON value', async () => {
    const err = await failure('bad-value.jsonl');
    expect(err.line).toBe(2);
    expect(err.message).toMatch(/bad-value\.jsonl:2: feature "prep_time_avg_7d" must be a number, string, boolean or null \(got an array\)/);
  });

  it('names the line of invalid JSON, counting blank lines', async () => {
    const err = await failure('bad-json.jsonl');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/not valid JSON/);
  });

  it('names the line of a CSV row with too many cells', async () => {
    const err = await failure('bad-row.csv');
    expect(err.line).toBe(3);
  });

  it('requires entity and id columns in a CSV header', async () => {
    const err = await failure('no-id.csv');
    expect(err.line).toBe(1);
    expect(err.message).toMatch(/"entity" and "id"/);
  });

  it('reads a JSON-lines file as CSV only when told to, and then fails on its header', async () => {
    const err = await failure('features.jsonl', 'csv');
    expect(err.line).toBe(1);
  });
});
