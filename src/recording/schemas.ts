// What a recording holds, as a viewer sees it: the topics of one framework and the JSON Schemas of their messages.
// Every message is JSON (`messageEncoding: json`, `schemaEncoding: jsonschema`), which Foxglove and the mcap tools
// read without generated code; images use the public foxglove.RawImage schema so the Image panel shows them.
//
//   /<framework>/observation      paig.Observation   state (number list), instruction, cameras, other inputs
//   /<framework>/camera/<name>    foxglove.RawImage  one per camera, bytes base64 (JSON has no byte strings)
//   /<framework>/action           paig.ActionChunk   action [horizon][dof] as nested number lists, model, outcome
//   /<framework>/timing           paig.Timing        per-stage timings, sizes, outcome
//
// The messages of one exchange share their log time (the request's arrival) and their MCAP `sequence` number, which
// is how a reader puts an exchange back together.

/** Bumped when a message's fields change meaning; stored in the file's metadata. */
export const RECORDING_FORMAT_VERSION = 1;
/** MCAP header profile: empty (no ROS profile), the library is named separately. */
export const RECORDING_PROFILE = '';
export const RECORDING_LIBRARY = 'physical-ai-gateway';

export const OBSERVATION_SCHEMA_NAME = 'paig.Observation';
export const ACTION_SCHEMA_NAME = 'paig.ActionChunk';
export const TIMING_SCHEMA_NAME = 'paig.Timing';
export const RAW_IMAGE_SCHEMA_NAME = 'foxglove.RawImage';

/** What a recorded image keeps: the camera's bytes, a 2x-downscaled copy, or nothing (privacy). */
export type RecordedImages = 'full' | 'downscale' | 'drop';

export type TopicKind = 'observation' | 'action' | 'timing' | 'camera';

/** Topic names; camera names keep letters, digits, `_` and `-` (anything else becomes `_`). */
export const topics = {
  observation: (framework: string) => `/${framework}/observation`,
  action: (framework: string) => `/${framework}/action`,
  timing: (framework: string) => `/${framework}/timing`,
  camera: (framework: string, camera: string) => `/${framework}/camera/${camera.replace(/[^A-Za-z0-9_-]/g, '_')}`,
};

const time = {
  type: 'object',
  title: 'time',
  properties: { sec: { type: 'integer', minimum: 0 }, nsec: { type: 'integer', minimum: 0, maximum: 999_999_999 } },
};

/** A tensor that is not a camera or the state, kept with its dtype and shape (values in C order). */
const tensorValue = {
  type: 'object',
  properties: { dtype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } }, values: { type: 'array', items: { type: 'number' } } },
};

/**
 * foxglove.RawImage as published in the Foxglove schemas (jsonschema/RawImage.json): the same fields, types and
 * base64 content encoding; descriptions shortened.
 */
export const RAW_IMAGE_SCHEMA = {
  title: RAW_IMAGE_SCHEMA_NAME,
  description: 'A raw image',
  type: 'object',
  properties: {
    timestamp: { ...time, description: 'Timestamp of image' },
    frame_id: { type: 'string', description: 'Frame of reference for the image.' },
    width: { type: 'integer', minimum: 0, description: 'Image width in pixels' },
    height: { type: 'integer', minimum: 0, description: 'Image height in pixels' },
    encoding: { type: 'string', description: 'Encoding of the raw image data (rgb8, rgba8, mono8, ...)' },
    step: { type: 'integer', minimum: 0, description: 'Byte length of a single row.' },
    data: { type: 'string', contentEncoding: 'base64', description: 'Raw image data.' },
  },
};

export const OBSERVATION_SCHEMA = {
  title: OBSERVATION_SCHEMA_NAME,
  description: 'The observation of one inference request as the gateway received it (after mapping to the standard observation).',
  type: 'object',
  properties: {
    timestamp: { ...time, description: 'Arrival at the gateway' },
    request_id: { type: 'string' },
    framework: { type: 'string' },
    transport: { type: 'string', description: 'zmq or http' },
    codec: { type: 'string', description: 'binary, msgpack or json' },
    instruction: { type: 'string' },
    state: { type: 'array', items: { type: 'number' }, description: 'Joint state, C order' },
    state_dtype: { type: 'string' },
    cameras: {
      type: 'object',
      description: 'Camera name → where its image is and how it was recorded (full, downscale or drop).',
      additionalProperties: {
        type: 'object',
        properties: { topic: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, channels: { type: 'integer' }, recorded: { type: 'string' } },
      },
    },
    inputs: { type: 'object', description: 'Other fields of the observation; tensors as {dtype, shape, values}.', additionalProperties: { anyOf: [tensorValue, {}] } },
  },
};

export const ACTION_SCHEMA = {
  title: ACTION_SCHEMA_NAME,
  description: "The reply to one inference request: the policy's action chunk, or the error.",
  type: 'object',
  properties: {
    timestamp: { ...time, description: 'Arrival of the request at the gateway' },
    request_id: { type: 'string' },
    framework: { type: 'string' },
    model: { type: 'string' },
    outcome: { type: 'string', description: 'ok or an error code' },
    error: { type: 'string' },
    action: { type: 'array', items: { type: 'array', items: { type: 'number' } }, description: 'Action chunk [horizon][dof]' },
    action_dtype: { type: 'string' },
    action_shape: { type: 'array', items: { type: 'integer' } },
    dt_s: { type: 'number' },
    outputs: { type: 'object', description: 'Other fields of the result; tensors as {dtype, shape, values}.' },
  },
};

export const TIMING_SCHEMA = {
  title: TIMING_SCHEMA_NAME,
  description: 'Where the time of one exchange went, ms, and its sizes, bytes.',
  type: 'object',
  properties: {
    timestamp: { ...time },
    request_id: { type: 'string' },
    framework: { type: 'string' },
    transport: { type: 'string' },
    codec: { type: 'string' },
    outcome: { type: 'string' },
    total_ms: { type: 'number', description: 'Arrival to reply encoded' },
    decode_ms: { type: 'number' },
    queue_ms: { type: 'number' },
    worker_compute_ms: { type: 'number' },
    transport_ms: { type: 'number' },
    encode_ms: { type: 'number' },
    request_bytes: { type: 'integer' },
    response_bytes: { type: 'integer' },
  },
};

export const SCHEMAS: Readonly<Record<string, object>> = {
  [OBSERVATION_SCHEMA_NAME]: OBSERVATION_SCHEMA,
  [ACTION_SCHEMA_NAME]: ACTION_SCHEMA,
  [TIMING_SCHEMA_NAME]: TIMING_SCHEMA,
  [RAW_IMAGE_SCHEMA_NAME]: RAW_IMAGE_SCHEMA,
};

export const SCHEMA_OF_KIND: Readonly<Record<TopicKind, string>> = {
  observation: OBSERVATION_SCHEMA_NAME,
  action: ACTION_SCHEMA_NAME,
  timing: TIMING_SCHEMA_NAME,
  camera: RAW_IMAGE_SCHEMA_NAME,
};

/** Foxglove's time message from nanoseconds since the epoch. */
export function timeOf(ns: bigint): { sec: number; nsec: number } {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}
