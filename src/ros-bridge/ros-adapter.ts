// The bridge's only view of ROS 2: message shapes as rclnodejs delivers and accepts them, and a small adapter
// interface (subscribe, publish, Trigger services, clock, close). The real one is rclnodejs-adapter.ts; the
// in-process one for tests is test/ros-bridge/memory-adapter.ts.

/** builtin_interfaces/Time and builtin_interfaces/Duration. */
export interface RosTime {
  sec: number;
  nanosec: number;
}
export type RosDuration = RosTime;

/** std_msgs/Header. */
export interface Header {
  stamp: RosTime;
  frame_id: string;
}

/** sensor_msgs/msg/Image. rclnodejs delivers `data` as a Uint8Array (enableTypedArray, the default). */
export interface ImageMsg {
  header: Header;
  height: number;
  width: number;
  encoding: string;
  is_bigendian: number;
  /** Bytes per row (may exceed width * channels). */
  step: number;
  data: Uint8Array;
}

/** sensor_msgs/msg/CompressedImage: `format` is e.g. "jpeg" or "rgb8; jpeg compressed bgr8". */
export interface CompressedImageMsg {
  header: Header;
  format: string;
  data: Uint8Array;
}

/** A float64[] field: rclnodejs delivers Float64Array and accepts plain arrays or typed arrays. */
export type Float64Seq = Float64Array | number[];

/** sensor_msgs/msg/JointState. */
export interface JointStateMsg {
  header: Header;
  name: string[];
  position: Float64Seq;
  velocity: Float64Seq;
  effort: Float64Seq;
}

/** std_msgs/msg/String. */
export interface StringMsg {
  data: string;
}

/** trajectory_msgs/msg/JointTrajectoryPoint. */
export interface JointTrajectoryPoint {
  positions: Float64Seq;
  velocities: Float64Seq;
  accelerations: Float64Seq;
  effort: Float64Seq;
  time_from_start: RosDuration;
}

/** trajectory_msgs/msg/JointTrajectory. */
export interface JointTrajectoryMsg {
  header: Header;
  joint_names: string[];
  points: JointTrajectoryPoint[];
}

/** std_msgs/msg/MultiArrayDimension. */
export interface MultiArrayDimension {
  label: string;
  size: number;
  stride: number;
}

/** std_msgs/msg/Float64MultiArray. */
export interface Float64MultiArrayMsg {
  layout: { dim: MultiArrayDimension[]; data_offset: number };
  data: Float64Seq;
}

/** std_srvs/srv/Trigger response (the request is empty). */
export interface TriggerResponse {
  success: boolean;
  message: string;
}

/** Message type names (the rclnodejs spelling) and the shape each carries. */
export interface MessageTypes {
  'sensor_msgs/msg/Image': ImageMsg;
  'sensor_msgs/msg/CompressedImage': CompressedImageMsg;
  'sensor_msgs/msg/JointState': JointStateMsg;
  'std_msgs/msg/String': StringMsg;
  'trajectory_msgs/msg/JointTrajectory': JointTrajectoryMsg;
  'std_msgs/msg/Float64MultiArray': Float64MultiArrayMsg;
}
export type MessageTypeName = keyof MessageTypes;

export interface SubscriptionOptions {
  /** `sensor_data` = best effort, keep last 5 (cameras); `default` = reliable, keep last 10. */
  qos?: 'default' | 'sensor_data';
}

export interface RosSubscription {
  readonly topic: string;
  close(): void;
}

export interface RosPublisher<T> {
  readonly topic: string;
  publish(msg: T): void;
  close(): void;
}

export interface RosService {
  readonly name: string;
  close(): void;
}

/** Handler of a std_srvs/Trigger service; an exception is answered with success=false and its message. */
export type TriggerHandler = () => TriggerResponse | Promise<TriggerResponse>;

/**
 * What the bridge needs from ROS 2. Callbacks run on the Node event loop; the adapter never blocks it.
 * `close()` is idempotent and destroys every entity the adapter created.
 */
export interface RosAdapter {
  subscribe<K extends MessageTypeName>(
    topic: string,
    type: K,
    callback: (msg: MessageTypes[K]) => void,
    options?: SubscriptionOptions,
  ): RosSubscription;
  createPublisher<K extends MessageTypeName>(topic: string, type: K): RosPublisher<MessageTypes[K]>;
  createTriggerService(name: string, handler: TriggerHandler): RosService;
  /** The node's clock (ROS time; sim time when use_sim_time is set). */
  now(): RosTime;
  close(): Promise<void>;
}

/** Seconds (float) → builtin_interfaces Time/Duration, rounding to the nanosecond. */
export function toRosTime(seconds: number): RosTime {
  let sec = Math.floor(seconds);
  let nanosec = Math.round((seconds - sec) * 1e9);
  if (nanosec >= 1e9) {
    sec += 1;
    nanosec -= 1e9;
  }
  return { sec, nanosec };
}

/** builtin_interfaces Time/Duration → seconds (float). */
export function fromRosTime(t: RosTime): number {
  return t.sec + t.nanosec / 1e9;
}
