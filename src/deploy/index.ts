/**
 * The local loop's deploy step: run the freshly pushed image with the pipeline's
 * `deploy.command` and record that as a run.
 */
export { LocalDeployLoop, DeployReason, deployTags, type LocalDeployLoopOptions, type DeployPollResult } from './loop.js';
export { runImage, planImageRun, planContainerRemoval, removeWorkingContainer, isDigestReference } from './run-image.js';
export { BuiltImage, DeployedMark } from './schema.js';
export type { DeployTool, PlannedCommand, RunImageOptions, RunImageResult } from './types.js';
