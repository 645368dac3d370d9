/** Following the control tower: the public surface of gateway/sync. */
export { createCellFollower, type CellFollower, type CellFollowerOptions, type FollowerLog } from './cell-follower.ts';
export { createTowerClient, type TowerClient, type TowerClientOptions } from './tower-client.ts';
export { openBundleCache, type BundleCache } from './bundle-cache.ts';
export { PendingRouteTable } from './pending-route-table.ts';
export type { VersionError } from './gateway-report.ts';
