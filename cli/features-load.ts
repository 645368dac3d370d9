/**
 * `sibyl features load FILE [--redis-url URL] [--prefix sibyl] [--format csv|jsonl] [--batch-size 1000]`
 *
 * Checks the whole file first (a bad row fails the command with `FILE:LINE: problem` and nothing is written), then
 * writes one Redis hash per row (`{prefix}:{entity}:{id}`, HSET semantics: fields not in the file are kept) in
 * pipelined batches, and prints how many entities and fields were written. File formats: see
 * gateway/features/feature-file.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatOf, readFeatureRows, toEntry, type FeatureEntry, type FeatureFileFormat } from '../gateway/features/feature-file.ts';
import { createRedisFeatureStore } from '../gateway/features/redis-feature-store.ts';

interface LoadOptions {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly format?: FeatureFileFormat;
  readonly batchSize: number;
  readonly connectTimeoutMs: number;
}

export interface LoadResult {
  readonly entities: number;
  readonly fields: number;
}

export function featuresLoadCommand(): Command {
  return new Command('load')
    .description('load features from a JSON-lines or CSV file into Redis')
    .argument('<file>', 'JSON lines ({"entity", "id", "features": {...}} per line) or CSV (entity,id,<feature>...)')
    .addOption(new Option('--redis-url <url>', 'Redis to write to').env('REDIS_URL').default('redis://127.0.0.1:6379'))
    .option('--prefix <prefix>', 'key prefix', 'sibyl')
    .addOption(new Option('--format <format>', 'file format (default: from the extension, .csv or else jsonl)').choices(['csv', 'jsonl']))
    .addOption(new Option('--batch-size <n>', 'entities per pipelined batch').default(1000).argParser(positiveInt))
    .addOption(new Option('--connect-timeout-ms <ms>', 'how long to wait for Redis').default(5000).argParser(positiveInt))
    .action(async function loadAction(file: string, opts: LoadOptions) {
      const result = await loadFeatures(file, opts);
      process.stdout.write(`loaded ${result.entities} entities (${result.fields} fields) into ${redact(opts.redisUrl)} under prefix "${opts.prefix}"\n`);
    });
}

/** Validates `file`, then writes it; throws FeatureFileError for bad input, SibylError when Redis fails. */
export async function loadFeatures(file: string, opts: LoadOptions): Promise<LoadResult> {
  const format = opts.format ?? formatOf(file);
  // First pass: the whole file must be valid before anything is written.
  for await (const _ of readFeatureRows(file, format));

  const store = createRedisFeatureStore({ url: opts.redisUrl, connectTimeoutMs: opts.connectTimeoutMs, commandTimeoutMs: 30_000 });
  try {
    try {
      await store.ready(opts.connectTimeoutMs);
    } catch {
      throw new Error(`cannot reach Redis at ${redact(opts.redisUrl)} within ${opts.connectTimeoutMs} ms`);
    }
    let entities = 0;
    let fields = 0;
    let batch: FeatureEntry[] = [];
    for await (const row of readFeatureRows(file, format)) {
      batch.push(toEntry(row, opts.prefix));
      entities++;
      fields += Object.keys(row.fields).length;
      if (batch.length >= opts.batchSize) {
        await store.write(batch);
        batch = [];
      }
    }
    if (batch.length) await store.write(batch);
    return { entities, fields };
  } finally {
    await store.close();
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
