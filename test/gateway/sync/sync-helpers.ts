/** Shared pieces of the gateway sync tests: a gateway following a test tower, predictions, polling. */
import type { FeatureRow, LoadedModel, Runtime } from '../../../runtimes/contract.ts';
import { createRuntimes, type Runtimes } from '../../../runtimes/index.ts';
import type { GatewayParts } from '../../../gateway/gateway.ts';
import { expectedFor } from '../../helpers/expected.ts';
import { postJson, startGateway, type TestGateway } from '../../helpers/gateway.ts';
import type { TestTower } from './test-tower.ts';

export const CELL = 'test-cell';

export function towerGateway(tower: TestTower, env: Record<string, string> = {}, parts: GatewayParts = {}): Promise<TestGateway> {
  return startGateway(
    {
      SIBYL_CONTROL_TOWER_URL: tower.url,
      SIBYL_TOWER_TOKEN: tower.token,
      SIBYL_CELL: CELL,
      SIBYL_REPLICA: 'replica-1',
      SIBYL_SYNC_WAIT_MS: '5000',
      SIBYL_PREDICTION_LOG: 'off',
      ...env,
    },
    { sync: { backoff: { baseMs: 100, maxMs: 1000 } }, ...parts },
  );
}

const rows: Record<string, { entities: Record<string, string>; features: Record<string, number> }[]> = {};
function body(model: string) {
  rows[model] ??= [{ entities: expectedFor(model, '1').rows[0]!.entities, features: expectedFor(model, '1').rows[0]!.request }];
  return { rows: rows[model] };
}

export interface Answer {
  readonly status: number;
  readonly version: string | undefined;
  readonly code: string | undefined;
  readonly message: string | undefined;
}

/** One prediction over Sibyl REST; `version` '' asks for the default. */
export async function predict(gw: TestGateway, model: string, version = ''): Promise<Answer> {
  const path = version ? `/v1/models/${model}/versions/${version}:predict` : `/v1/models/${model}:predict`;
  const res = await postJson(gw.http + path, body(model));
  return { status: res.status, version: res.json?.version, code: res.json?.error?.code ?? res.json?.code, message: res.json?.error?.message ?? res.json?.message };
}

export async function readyz(gw: TestGateway): Promise<number> {
  return (await fetch(`${gw.http}/readyz`)).status;
}

/** Polls `check` every 20 ms until it returns true; throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - started;
}

/**
 * The real runtimes, instrumented: `hold(model/version)` makes that version's next prediction wait until the
 * returned release function is called; `disposed` lists the versions disposed, in order.
 */
export function instrumentedRuntimes(): { runtimes: Runtimes; disposed: string[]; hold(id: string): { entered: Promise<void>; release(): void } } {
  const inner = createRuntimes();
  const onnx = inner.byKind.get('onnx')!;
  const disposed: string[] = [];
  const holds = new Map<string, { enter: () => void; released: Promise<void> }>();
  const runtime: Runtime = {
    kind: 'onnx',
    async load(bundle) {
      const model = await onnx.load(bundle);
      const id = `${bundle.manifest.name}/${bundle.manifest.version}`;
      const loaded: LoadedModel = {
        async predict(rows: readonly FeatureRow[], ctx) {
          const h = holds.get(id);
          if (h) {
            holds.delete(id);
            h.enter();
            await h.released;
          }
          return model.predict(rows, ctx);
        },
        async dispose() {
          disposed.push(id);
          await model.dispose();
        },
      };
      return loaded;
    },
  };
  return {
    runtimes: { byKind: new Map([['onnx', runtime]]), close: () => inner.close() },
    disposed,
    hold(id) {
      let enter!: () => void;
      let release!: () => void;
      const entered = new Promise<void>((r) => (enter = r));
      const released = new Promise<void>((r) => (release = r));
      holds.set(id, { enter, released });
      return { entered, release };
    },
  };
}
