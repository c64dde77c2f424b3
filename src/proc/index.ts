/**
 * Processes on this host as keelson needs to know them after a crash: who is still running
 * (pid + start time, so a reused pid is not mistaken for ours) and how to end a process group
 * a killed keelson left behind.
 */
export { processIdentity, isRunning, pidExists, processGroupMembers, type ProcessIdentity } from './identity.js';
export { endProcessGroup, type EndGroupOptions, type EndedGroup } from './end-group.js';
