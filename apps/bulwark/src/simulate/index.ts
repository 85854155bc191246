/** `bulwark simulate`: loaded only for that command (it brings the agent in). */
export { ScenarioError, checkScenario, parseScenarioText, scenarioFromFlags } from './scenario.js';
export type { Scenario } from './scenario.js';
export { preflight, runSimulation } from './run.js';
export type { RunResult } from './run.js';
export { figures, reportJson, reportMarkdown, reportSvg, verdictLine, verdicts } from './report.js';
