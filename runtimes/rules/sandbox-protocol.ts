/** Messages between the gateway and a rule's sandbox process (sandbox-process.ts), over Node's IPC channel. */
import type { FeatureRow, OutputRow } from '../contract.ts';
import type { CodeName } from '../../core/errors.ts';
import type { ModelOutputs, SandboxOptions } from './rule-sandbox.ts';

export type ToSandbox =
  | { readonly t: 'init'; readonly options: SandboxOptions }
  | { readonly t: 'run'; readonly id: number; readonly rows: readonly FeatureRow[]; readonly models?: readonly ModelOutputs[] }
  | { readonly t: 'cancel'; readonly id: number }
  /** After a call that abandoned its isolate: answer `pong` once the abandoned isolates are looked at. */
  | { readonly t: 'ping'; readonly n: number };

export type FromSandbox =
  | { readonly t: 'ready' }
  | { readonly t: 'done'; readonly id: number; readonly rows: OutputRow[] }
  /** `dropped`: the call abandoned its isolate (host deadline, memory), which may still be running. */
  | { readonly t: 'fail'; readonly id?: number; readonly code: CodeName; readonly message: string; readonly cause?: string; readonly dropped?: boolean }
  /** `busy`: an abandoned isolate kept running (its thread cannot be stopped: kill the process). */
  | { readonly t: 'pong'; readonly n: number; readonly busy: boolean };
