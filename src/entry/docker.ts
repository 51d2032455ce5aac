// `physical-ai-gateway/docker`: the Docker manager (dockerode) and the launcher that starts framework
// containers on demand for a gateway (pass it as `launcher` to startGateway), with the framework specs.
export { DockerManager } from '../docker/docker-manager.js';
export { DockerLauncher } from '../docker/launcher.js';
export { builtinFrameworkSpecs, validateFrameworkSpec } from '../docker/framework-spec.js';
export type { FrameworkSpec } from '../docker/framework-spec.js';
