/**
 * The manifest's `sagemaker:` section, validated with the manifest (see descriptor.ts) and parsed again by this
 * runtime at load, which resolves the column order and fills the defaults.
 *
 * ```yaml
 * runtime: sagemaker
 * features: [{ name: a, dtype: float32, source: request, default: 0 }, ...]
 * outputs: [{ name: score, kind: scalar, dtype: float32 }]
 * sagemaker:
 *   endpoint: churn-xgb-prod        # InvokeEndpoint's EndpointName
 *   region: eu-west-1
 *   variant: blue                   # optional TargetVariant (default: the endpoint's traffic weights decide)
 *   contentType: application/json   # or text/csv
 *   accept: application/json        # optional; default: the contentType
 *   features: [a, b, c]             # optional column order; default: every manifest feature, in declared order
 *   json: { key: instances, rows: arrays }   # request body shape for JSON (these are the defaults)
 *   response: { key: predictions }  # where a JSON response keeps its per-row answers (default "predictions")
 *   timeoutMs: 60000                # per-attempt cap in ms (default 60000, SageMaker's own invocation limit)
 *   maxAttempts: 3                  # attempts for throttled/unavailable calls, 1 = no retry (default 3, max 5)
 *   maxBodyBytes: 6291456           # request bodies above this are refused before sending (default 6 MiB, AWS's limit)
 *   customAttributes: "..."         # optional, sent as X-Amzn-SageMaker-Custom-Attributes
 * ```
 */
import { z } from 'zod';
import type { ReportIssue } from '../descriptor.ts';
import type { Manifest } from '../manifest.ts';
import type { ManifestCore, OutputSpec } from '../manifest-fields.ts';
import { SibylError } from '../../core/errors.ts';

const MAX_BODY_BYTES = 6 * 1024 * 1024;

export const SageMakerSection = z
  .object({
    // AWS: up to 63 characters of a-z, A-Z, 0-9 and "-", not starting or ending with "-".
    endpoint: z.string().regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'must be a SageMaker endpoint name (1-63 of a-z, A-Z, 0-9, "-")'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'must be an AWS region such as eu-west-1'),
    variant: z.string().regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'must be a production variant name').optional(),
    contentType: z.enum(['application/json', 'text/csv']),
    accept: z.enum(['application/json', 'text/csv']).optional(),
    features: z.array(z.string().min(1)).min(1).optional(),
    json: z
      .object({
        /** The key holding the rows (`{"instances": [...]}`); null sends the bare array. */
        key: z.string().min(1).nullable().default('instances'),
        /** `arrays`: each row a list in column order; `objects`: each row an object keyed by feature name. */
        rows: z.enum(['arrays', 'objects']).default('arrays'),
      })
      .strict()
      .optional(),
    response: z
      .object({
        /** The key holding the per-row answers in a JSON response object; a bare array is always accepted. */
        key: z.string().min(1).default('predictions'),
      })
      .strict()
      .optional(),
    timeoutMs: z.number().int().min(1).max(600_000).default(60_000),
    maxAttempts: z.number().int().min(1).max(5).default(3),
    maxBodyBytes: z.number().int().min(1).max(MAX_BODY_BYTES).default(MAX_BODY_BYTES),
    customAttributes: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type SageMakerSection = z.infer<typeof SageMakerSection>;

/**
 * The checks of a section against the rest of the manifest: the columns it sends are declared features, once
 * each, and there is at least one.
 */
export function checkColumns(section: SageMakerSection, manifest: ManifestCore, report: ReportIssue): void {
  const declared = new Set(manifest.features.map((f) => f.name));
  const columns = section.features ?? manifest.features.map((f) => f.name);
  const seen = new Set<string>();
  columns.forEach((c, i) => {
    if (!declared.has(c)) report(['sagemaker', 'features', i], `names undeclared feature "${c}"`);
    if (seen.has(c)) report(['sagemaker', 'features', i], `duplicate feature "${c}"`);
    seen.add(c);
  });
  if (columns.length === 0) report(['features'], 'a SageMaker model needs at least one feature to send');
}

/** The settings a loaded SageMaker model works from: validated, defaults filled, the column order resolved. */
export interface SageMakerSettings {
  readonly endpoint: string;
  readonly region: string;
  readonly variant: string | undefined;
  readonly contentType: 'application/json' | 'text/csv';
  readonly accept: 'application/json' | 'text/csv';
  /** Feature names in request column order. */
  readonly columns: readonly string[];
  readonly jsonKey: string | null;
  readonly jsonRows: 'arrays' | 'objects';
  readonly responseKey: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly maxBodyBytes: number;
  readonly customAttributes: string | undefined;
  readonly outputs: readonly OutputSpec[];
}

/**
 * Validates `manifest.sagemaker` against the manifest's features and outputs. Throws SibylError INVALID_ARGUMENT
 * listing every problem as `sagemaker.<path>: message`.
 */
export function parseSageMakerSettings(manifest: Manifest): SageMakerSettings {
  if (manifest.runtime !== 'sagemaker') throw new SibylError('INVALID_ARGUMENT', `runtime: is ${manifest.runtime}, not sagemaker`);
  if (!manifest.sagemaker) throw new SibylError('INVALID_ARGUMENT', 'sagemaker: is required for runtime sagemaker');
  const result = SageMakerSection.safeParse(manifest.sagemaker);
  const problems: string[] = [];
  if (!result.success) {
    for (const i of result.error.issues) problems.push(`sagemaker${i.path.map((p) => `.${String(p)}`).join('')}: ${i.message}`);
    throw new SibylError('INVALID_ARGUMENT', `invalid sagemaker settings: ${problems.join('; ')}`);
  }
  const s = result.data;
  checkColumns(s, manifest, (path, message) => problems.push(`${path.join('.')}: ${message}`));
  const columns = s.features ?? manifest.features.map((f) => f.name);
  const outputs = (manifest.outputs ?? []).map((o): OutputSpec => ({ name: o.name, dtype: o.dtype, kind: o.kind }));
  if (outputs.length === 0) problems.push('outputs: is required for runtime sagemaker');
  if (problems.length) throw new SibylError('INVALID_ARGUMENT', `invalid sagemaker settings: ${problems.join('; ')}`);
  return Object.freeze({
    endpoint: s.endpoint,
    region: s.region,
    variant: s.variant,
    contentType: s.contentType,
    accept: s.accept ?? s.contentType,
    columns: Object.freeze([...columns]),
    jsonKey: s.json?.key === undefined ? 'instances' : s.json.key,
    jsonRows: s.json?.rows ?? 'arrays',
    responseKey: s.response?.key ?? 'predictions',
    timeoutMs: s.timeoutMs,
    maxAttempts: s.maxAttempts,
    maxBodyBytes: s.maxBodyBytes,
    customAttributes: s.customAttributes,
    outputs: Object.freeze(outputs),
  });
}
