export { DEFAULT_DASHBOARD_DIR, dashboardRoutes } from './routes.js';
export type { DashboardOptions } from './routes.js';
export { DashboardAssets } from './assets.js';
