/** The per-device MQTT topic tree of the device contract (DESIGN.md §4). */
export const DEVICE_TOPIC_ROOT = 'devices';

export const deviceTopics = (id: string) => ({
  root: `${DEVICE_TOPIC_ROOT}/${id}`,
  telemetry: (stream?: string) => (stream ? `${DEVICE_TOPIC_ROOT}/${id}/telemetry/${stream}` : `${DEVICE_TOPIC_ROOT}/${id}/telemetry`),
  events: `${DEVICE_TOPIC_ROOT}/${id}/events`,
  health: `${DEVICE_TOPIC_ROOT}/${id}/health`,
  twinDesired: `${DEVICE_TOPIC_ROOT}/${id}/twin/desired`,
  twinReported: `${DEVICE_TOPIC_ROOT}/${id}/twin/reported`,
  command: (name: string) => `${DEVICE_TOPIC_ROOT}/${id}/commands/${name}`,
  commandResult: (name: string) => `${DEVICE_TOPIC_ROOT}/${id}/commands/${name}/result`,
  otaJob: `${DEVICE_TOPIC_ROOT}/${id}/ota/job`,
  otaStatus: `${DEVICE_TOPIC_ROOT}/${id}/ota/status`,
  time: `${DEVICE_TOPIC_ROOT}/${id}/time`,
  logs: `${DEVICE_TOPIC_ROOT}/${id}/logs`,
  errors: `${DEVICE_TOPIC_ROOT}/${id}/errors`,
});
