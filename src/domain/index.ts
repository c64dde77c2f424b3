export { dnsLabel, isDnsLabel } from './naming.js';
export { newRunId, parseRunId, type RunId } from './run-id.js';
export { Duration, DurationText } from './duration.js';
export { SupersededError, isSuperseded, Slots, untilAborted } from './abort.js';
export { closestKey } from './suggest.js';
