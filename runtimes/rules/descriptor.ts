/**
 * The rules runtime as the registry lists it: the optional `rules:` section (settings.ts), outputs declared in the
 * manifest's `outputs:`, and composition: a rule receives the outputs of the models its `rules.models` names.
 */
import { defineRuntime } from '../descriptor.ts';
import { lazyRuntime } from '../lazy-runtime.ts';
import type { RulesRuntimeOptions } from './rules-runtime.ts';
import { RulesSettings } from './settings.ts';

export const rulesDescriptor = defineRuntime({
  kind: 'rules',
  settings: RulesSettings,
  settingsRequired: false,
  oip: { platform: 'sibyl_rules' },
  composes: {
    declaredAt: 'rules.models',
    of: (rules) => rules.models.map((m) => ({ model: m.model, version: m.version ?? '', as: m.as ?? m.model })),
  },
  create: (options?: RulesRuntimeOptions) => lazyRuntime('rules', async () => (await import('./rules-runtime.ts')).createRulesRuntime(options)),
});
