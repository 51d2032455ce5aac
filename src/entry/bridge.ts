// `physical-ai-gateway/bridge`: the ROS 2 bridge as a library. Start its control loop on a ROS adapter (rclnodejs,
// loaded only when the bridge's own adapter starts) with a policy client for the gateway's ZMQ or HTTP door.
export { startBridge, createPolicyClient } from '../ros-bridge/main.js';
export type { BridgeDeps, RunningBridge } from '../ros-bridge/main.js';
export { validateBridgeConfig, BridgeConfigError } from '../ros-bridge/config.js';
export type { BridgeConfig } from '../ros-bridge/config.js';
export { PRESETS, presetConfig } from '../ros-bridge/presets.js';
export type { PresetName } from '../ros-bridge/presets.js';
export { RclnodejsAdapter } from '../ros-bridge/rclnodejs-adapter.js';
export type { RosAdapter } from '../ros-bridge/ros-adapter.js';
export { ZmqPolicyClient, HttpPolicyClient } from '../ros-bridge/policy-client.js';
export type { PolicyClient, PolicyChunk } from '../ros-bridge/policy-client.js';
