/** Messages between the gateway and a rule's sandbox process (sandbox-process.ts), over Node's IPC channel. */
import type { FeatureRow, OutputRow } from '../contract.ts';
import type { CodeName } from '../../core/errors.ts';
import type { ModelOutputs, SandboxOptions } from './rule-sandbox.ts';

export type ToSandbox =
  | { readonly t: 'init'; readonly options: SandboxOptions }
  | { readonly t: 'run'; readonly id: number; readonly rows: readonly FeatureRow[]; readonly models?: readonly ModelOutputs[] }
  | { readonly t: 'cancel'; readonly id: number };

export type FromSandbox =
  | { readonly t: 'ready' }
  | { readonly t: 'done'; readonly id: number; readonly rows: OutputRow[] }
  | { readonly t: 'fail'; readonly id?: number; readonly code: CodeName; readonly message: string; readonly cause?: string };
