export { RegistryWatcher, immediateJitter, type RegistryWatcherOptions } from './watcher.js';
export { parseSchedule, type Schedule } from './schedule.js';
export type { ChangeListener, JobStatus, PollResult, RegistryChange, RegistryReader, WatchTarget } from './types.js';
