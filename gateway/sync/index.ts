/** Following the cell's desired state (from the control tower or a models directory): the public surface of gateway/sync. */
export { createCellFollower, type CellFollower, type CellFollowerOptions, type FollowerLog } from './cell-follower.ts';
export type { DesiredStateSource } from './desired-state-source.ts';
export { createTowerClient, type TowerClient, type TowerClientOptions } from './tower-client.ts';
export { openModelsDirSource, type ModelsDirSource } from './models-dir-source.ts';
export { openBundleCache, type BundleCache } from './bundle-cache.ts';
export { PendingRouteTable } from './pending-route-table.ts';
export type { VersionError } from './gateway-report.ts';
