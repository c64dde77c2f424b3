export { PipelineSpec, BuildSpec, DeploySpec, KubernetesSpec, DurationText } from './pipeline.js';
export { KeelsonFile, WatchEntry, BuilderPrivilege, OPERATOR_ONLY_KEYS, loadKeelsonFile, parseRepositoryPipeline } from './keelson-file.js';
export { parseYamlWith, loadYamlFile, type ParseYamlOptions } from './load.js';
