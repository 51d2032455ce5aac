// Bridge presets for the ROBOTIS robots (topics and joint orders from ROBOTIS physical_ai_tools' configs).
// A preset is a partial config: validateBridgeConfig fills the rest with defaults.
import type { BridgeConfig, CameraSpec, OutputSpec } from './config.js';

export type PresetName = 'omx_f' | 'omy_f3m' | 'ffw_bg2_rev4';

/** A preset: the robot's cameras, joint order and controller groups. Joint limits are not in the source configs: add them. */
export type BridgePreset = Pick<BridgeConfig, 'robot' | 'cameras' | 'jointStateTopic' | 'joints' | 'outputs'>;

const arm = (side: 'l' | 'r') => [1, 2, 3, 4, 5, 6, 7].map((i) => `arm_${side}_joint${i}`).concat(`gripper_${side}_joint1`);

const trajectory = (name: string, topic: string, joints: string[]): OutputSpec => ({ name, topic, type: 'joint_trajectory', joints });
const compressed = (key: string, topic: string): CameraSpec => ({ key, topic, type: 'compressed' });

export const PRESETS: Readonly<Record<PresetName, BridgePreset>> = {
  omx_f: {
    robot: 'omx_f',
    cameras: [compressed('camera1', '/camera1/image_raw/compressed')],
    jointStateTopic: '/joint_states',
    joints: ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'gripper_joint_1'],
    outputs: [trajectory('leader', '/leader/joint_trajectory', ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'gripper_joint_1'])],
  },
  omy_f3m: {
    robot: 'omy_f3m',
    cameras: [compressed('cam_wrist', '/camera/cam_wrist/color/image_rect_raw/compressed')],
    jointStateTopic: '/joint_states',
    joints: ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'rh_r1_joint'],
    outputs: [trajectory('leader', '/leader/joint_trajectory', ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'rh_r1_joint'])],
  },
  ffw_bg2_rev4: {
    robot: 'ffw_bg2_rev4',
    cameras: [
      compressed('cam_head', '/zed/zed_node/left/image_rect_color/compressed'),
      compressed('cam_wrist_left', '/camera_left/camera_left/color/image_rect_raw/compressed'),
      compressed('cam_wrist_right', '/camera_right/camera_right/color/image_rect_raw/compressed'),
    ],
    jointStateTopic: '/joint_states',
    joints: [...arm('l'), ...arm('r'), 'head_joint1', 'head_joint2', 'lift_joint'],
    outputs: [
      trajectory('leader_left', '/leader/joint_trajectory_command_broadcaster_left/joint_trajectory', arm('l')),
      trajectory('leader_right', '/leader/joint_trajectory_command_broadcaster_right/joint_trajectory', arm('r')),
      trajectory('leader_head', '/leader/joystick_controller_left/joint_trajectory', ['head_joint1', 'head_joint2']),
      trajectory('leader_lift', '/leader/joystick_controller_right/joint_trajectory', ['lift_joint']),
    ],
  },
};

export function isPresetName(value: unknown): value is PresetName {
  return typeof value === 'string' && Object.hasOwn(PRESETS, value);
}

/**
 * The preset as a plain (mutable, deep-copied) config object. With `rawImages`, cameras use sensor_msgs/Image on
 * the same topic names without `/compressed` (no JPEG decoder needed).
 */
export function presetConfig(name: PresetName, { rawImages = false }: { rawImages?: boolean } = {}): BridgePreset {
  const preset = structuredClone(PRESETS[name]) as BridgePreset;
  if (rawImages) {
    preset.cameras = preset.cameras.map((cam) => ({ ...cam, type: 'image', topic: cam.topic.replace(/\/compressed$/, '') }));
  }
  return preset;
}
