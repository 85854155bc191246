/** `bulwark simulate`: loaded only for that command (it brings the agent in). */
export { ScenarioError, checkScenario } from './scenario.js';
export { parseScenarioText, scenarioFromFlags, withFilesFrom } from './scenario-input.js';
export type { Scenario } from './scenario.js';
export { preflight, runSimulation } from './run.js';
export { onboardFleet } from './onboard.js';
export { type AgentTuning, VirtualFleet, fleetChoices, planDevice } from './fleet.js';
export { PlatformApi } from './platform.js';
export type { RunResult } from './run.js';
export { figures, reportJson, reportMarkdown, reportSvg, verdictLine, verdicts } from './report.js';
