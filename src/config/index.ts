export { PipelineSpec, BuildSpec, DeploySpec, KubernetesSpec, DurationText } from './pipeline.js';
export { KeelsonFile, WatchEntry, loadKeelsonFile, parseRepositoryPipeline } from './keelson-file.js';
export { parseYamlWith, loadYamlFile } from './load.js';
