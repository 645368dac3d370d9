/**
 * Where a gateway's desired state comes from: a cell's CellState (proto/sibyl/v1/deployment.proto) and the bundle
 * zips it names by sha256. The cell follower takes one and does the rest the same way for each (load, warm up,
 * build the table, swap, report). Two implementations:
 *
 * - the control tower (tower-client.ts): long-polls the tower over HTTP; remote, so the follower keeps the last
 *   state and its bundles on disk and serves them while the tower is down;
 * - a models directory (models-dir-source.ts): `SIBYL_MODELS_DIR` read at start and again on `reload()`.
 */
import type { CellState, GatewayReport } from '../../proto/gen/sibyl/v1/deployment_pb.js';

export interface DesiredStateSource {
  /**
   * true when the source can be unreachable (the tower): the follower caches the last state and its bundles and
   * serves them at start (static stability), and retries failed downloads. false for a source on local disk: the
   * follower's start waits for its first state and fails with it.
   */
  readonly remote: boolean;
  /**
   * The cell's desired state: at once when its revision is above `after`, else when it changes or `waitMs` passes
   * (then with the same revision). `waitMs` 0 asks for the current state at once. Rejects with a SibylError
   * (CANCELLED when `signal` aborts).
   */
  cellState(cell: string, after: bigint, waitMs: number, signal?: AbortSignal): Promise<CellState>;
  /** The bytes of a bundle zip the state names, unchecked (the follower verifies the hash). */
  bundle(sha256: string, signal?: AbortSignal): Promise<Buffer>;
  /** What this replica serves (a tower keeps it for `GET /v1/cells/{cell}`; a local source ignores it). */
  report(report: GatewayReport, signal?: AbortSignal): Promise<void>;
}
