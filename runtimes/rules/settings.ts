/**
 * The manifest's `rules:` section (optional: every setting has a default), validated with the manifest (see
 * descriptor.ts) and parsed again by the rules runtime at load:
 *
 * ```yaml
 * rules:
 *   file: rule.js      # the rule module, relative to the bundle (default rule.js)
 *   timeoutMs: 50      # CPU time one predict call (a whole batch) may take, ms (default 50, at most 1000)
 *   memoryMb: 32       # the rule's heap limit, MiB (default 32, 8..256); V8 may overshoot it 2-3x, so the kernel
 *                      # holds the sandbox process to 96 MiB + 3 x memoryMb (process-sandbox.ts, README)
 *   models:            # composition: models the gateway runs on the same features first; the rule gets their
 *     - { model: delivery-eta, version: "2", as: fast }   # outputs as ctx.models.fast (as: default the model name;
 *     - { model: delivery-eta, version: "1", as: slow }   # version: default the model's default version)
 * ```
 */
import { z } from 'zod';
import { SibylError } from '../../core/errors.ts';
import { IDENTIFIER, NAME, nameSchema, VERSION } from '../../core/names.ts';
import type { Manifest } from '../manifest.ts';
import { BundleFile } from '../manifest-fields.ts';

export const DEFAULT_TIMEOUT_MS = 50;
export const MAX_TIMEOUT_MS = 1000;
export const DEFAULT_MEMORY_MB = 32;
/** isolated-vm refuses less than 8 MiB. */
export const MIN_MEMORY_MB = 8;
export const MAX_MEMORY_MB = 256;
/** Most models one rule composes. */
export const MAX_COMPOSED_MODELS = 8;

export const RulesSettings = z
  .object({
    file: BundleFile.default('rule.js'),
    timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).default(DEFAULT_TIMEOUT_MS),
    memoryMb: z.number().int().min(MIN_MEMORY_MB).max(MAX_MEMORY_MB).default(DEFAULT_MEMORY_MB),
    models: z
      .array(
        z
          .object({
            model: nameSchema(NAME),
            version: nameSchema(VERSION).optional(),
            as: nameSchema(IDENTIFIER).optional(),
          })
          .strict(),
      )
      .max(MAX_COMPOSED_MODELS)
      .default([])
      .superRefine((list, ctx) => {
        const names = new Set<string>();
        list.forEach((m, i) => {
          const as = m.as ?? m.model;
          if (names.has(as)) ctx.addIssue({ code: 'custom', path: [i, 'as'], message: `"${as}" names two models; give one another "as"` });
          names.add(as);
        });
      }),
  })
  .strict();
export type RulesSettings = z.infer<typeof RulesSettings>;

/** The rules settings of a manifest (defaults filled); INVALID_ARGUMENT listing every problem as `rules.path: message`. */
export function rulesSettings(manifest: Manifest): RulesSettings {
  const result = RulesSettings.safeParse(manifest.rules ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `rules${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`);
  throw new SibylError('INVALID_ARGUMENT', `invalid manifest: ${problems.join('; ')}`);
}
