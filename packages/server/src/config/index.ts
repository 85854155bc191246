export { SETTINGS, envName } from './settings.js';
export type { Setting, SettingType } from './settings.js';
export { defaultConfig, isLoopbackHost, loadConfig } from './load.js';
export type { ConfigSources, ServerConfig } from './load.js';
export { parseAddressRanges } from './address-ranges.js';
export type { AddressRange } from './address-ranges.js';
