// Camera messages → RGB uint8 [H, W, 3] tensors: raw Image encodings (rgb8, bgr8, mono8, rgba8, bgra8), JPEG via a
// pluggable decoder, and nearest / bilinear resizing done in the same pass as the colour conversion.
import { GatewayError } from '../lib/errors.js';
import { Tensor } from '../protocol/tensor.js';
import type { ResizeSpec } from './config.js';
import type { CompressedImageMsg, ImageMsg } from './ros-adapter.js';

/** Channel layout of a packed 8-bit image: bytes per pixel and where R, G, B are. */
interface Layout {
  channels: number;
  r: number;
  g: number;
  b: number;
}

const LAYOUTS: Readonly<Record<string, Layout>> = {
  rgb8: { channels: 3, r: 0, g: 1, b: 2 },
  bgr8: { channels: 3, r: 2, g: 1, b: 0 },
  rgba8: { channels: 4, r: 0, g: 1, b: 2 },
  bgra8: { channels: 4, r: 2, g: 1, b: 0 },
  mono8: { channels: 1, r: 0, g: 0, b: 0 },
  '8UC1': { channels: 1, r: 0, g: 0, b: 0 },
  '8UC3': { channels: 3, r: 2, g: 1, b: 0 }, // OpenCV order
};

export const SUPPORTED_ENCODINGS = Object.keys(LAYOUTS);

/** A decoded picture: packed pixels, `stride` bytes per row. */
export interface PixelBuffer {
  width: number;
  height: number;
  stride: number;
  encoding: string;
  data: Uint8Array;
}

/** Copies (and resizes) packed pixels into a new RGB uint8 [H, W, 3] tensor. */
export function toRgbTensor(src: PixelBuffer, resize?: ResizeSpec): Tensor {
  const layout = LAYOUTS[src.encoding];
  if (!layout) {
    throw new GatewayError('bad_request', `image encoding ${JSON.stringify(src.encoding)} is not supported; use one of ${SUPPORTED_ENCODINGS.join(', ')}`);
  }
  const { width: sw, height: sh, stride, data } = src;
  if (sw <= 0 || sh <= 0) throw new GatewayError('bad_request', `image is empty (${sw}x${sh})`);
  if (stride < sw * layout.channels || data.length < stride * (sh - 1) + sw * layout.channels) {
    throw new GatewayError('bad_request', `image ${sw}x${sh} ${src.encoding} with step ${stride} needs ${stride * sh} bytes, got ${data.length}`);
  }
  const dw = resize?.width ?? sw;
  const dh = resize?.height ?? sh;
  const out = new Uint8Array(dw * dh * 3);
  const { channels: ch, r, g, b } = layout;

  if (dw === sw && dh === sh) {
    for (let y = 0; y < sh; y++) {
      let s = y * stride;
      let d = y * sw * 3;
      for (let x = 0; x < sw; x++, s += ch, d += 3) {
        out[d] = data[s + r]!;
        out[d + 1] = data[s + g]!;
        out[d + 2] = data[s + b]!;
      }
    }
  } else if (resize?.method === 'nearest') {
    // Pixel centres: source x = (dx + 0.5) * sw / dw - 0.5, rounded.
    const xs = new Int32Array(dw);
    for (let x = 0; x < dw; x++) xs[x] = Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / dw)) * ch;
    for (let y = 0; y < dh; y++) {
      const row = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / dh)) * stride;
      let d = y * dw * 3;
      for (let x = 0; x < dw; x++, d += 3) {
        const s = row + xs[x]!;
        out[d] = data[s + r]!;
        out[d + 1] = data[s + g]!;
        out[d + 2] = data[s + b]!;
      }
    }
  } else {
    // Bilinear with half-pixel centres (as OpenCV INTER_LINEAR / PIL without antialias), edges clamped.
    const x0s = new Int32Array(dw);
    const x1s = new Int32Array(dw);
    const fxs = new Float32Array(dw);
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(Math.max(((x + 0.5) * sw) / dw - 0.5, 0), sw - 1);
      const x0 = Math.floor(fx);
      x0s[x] = x0 * ch;
      x1s[x] = Math.min(x0 + 1, sw - 1) * ch;
      fxs[x] = fx - x0;
    }
    const offsets = [r, g, b];
    for (let y = 0; y < dh; y++) {
      const fy = Math.min(Math.max(((y + 0.5) * sh) / dh - 0.5, 0), sh - 1);
      const y0 = Math.floor(fy);
      const wy = fy - y0;
      const row0 = y0 * stride;
      const row1 = Math.min(y0 + 1, sh - 1) * stride;
      let d = y * dw * 3;
      for (let x = 0; x < dw; x++, d += 3) {
        const wx = fxs[x]!;
        const a = row0 + x0s[x]!;
        const bb = row0 + x1s[x]!;
        const c = row1 + x0s[x]!;
        const e = row1 + x1s[x]!;
        for (let k = 0; k < 3; k++) {
          const o = offsets[k]!;
          const top = data[a + o]! + (data[bb + o]! - data[a + o]!) * wx;
          const bottom = data[c + o]! + (data[e + o]! - data[c + o]!) * wx;
          out[d + k] = Math.round(top + (bottom - top) * wy);
        }
      }
    }
  }
  return new Tensor('uint8', [dh, dw, 3], out);
}

/** sensor_msgs/Image → RGB uint8 [H, W, 3] (resized when asked). */
export function imageMsgToTensor(msg: ImageMsg, resize?: ResizeSpec): Tensor {
  return toRgbTensor({ width: msg.width, height: msg.height, stride: msg.step, encoding: msg.encoding, data: msg.data }, resize);
}

/** Decodes compressed camera frames. `decode` returns packed pixels (rgb8, rgba8, ...). */
export interface ImageDecoder {
  readonly name: string;
  decode(format: string, data: Uint8Array): PixelBuffer;
}

/** sensor_msgs/CompressedImage → RGB uint8 [H, W, 3] through `decoder`. */
export function compressedMsgToTensor(msg: CompressedImageMsg, decoder: ImageDecoder, resize?: ResizeSpec): Tensor {
  if (!/jpe?g/i.test(msg.format)) {
    throw new GatewayError('bad_request', `CompressedImage format ${JSON.stringify(msg.format)} is not supported; only JPEG`);
  }
  return toRgbTensor(decoder.decode(msg.format, msg.data), resize);
}

/** A camera message of either kind → RGB uint8 [H, W, 3] (resized when asked): what the bridge's thread and its image workers both run. */
export function cameraMsgToTensor(type: 'image' | 'compressed', msg: ImageMsg | CompressedImageMsg, decoder: ImageDecoder, resize?: ResizeSpec): Tensor {
  return type === 'image' ? imageMsgToTensor(msg as ImageMsg, resize) : compressedMsgToTensor(msg as CompressedImageMsg, decoder, resize);
}

/** The module name of the JPEG decoder the bridge uses when it is installed (pure JS, no native addon). */
export const JPEG_DECODER_PACKAGE = 'jpeg-js';

interface JpegJs {
  decode(data: Uint8Array, opts: { useTArray: boolean; formatAsRGBA: boolean; maxResolutionInMP?: number }): {
    width: number;
    height: number;
    data: Uint8Array;
  };
}

/**
 * A JPEG decoder backed by the optional `jpeg-js` package, or undefined when it is not installed.
 * (jpeg-js is a dependency of this project; the lookup stays lazy so a trimmed install still starts.)
 */
export async function loadJpegDecoder(specifier: string = JPEG_DECODER_PACKAGE): Promise<ImageDecoder | undefined> {
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch {
    return undefined;
  }
  const lib = ((mod as { default?: unknown }).default ?? mod) as Partial<JpegJs>;
  if (typeof lib.decode !== 'function') return undefined;
  const decode = lib.decode.bind(lib);
  return {
    name: specifier,
    decode(_format, data) {
      let img: ReturnType<JpegJs['decode']>;
      try {
        img = decode(data, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 100 });
      } catch (err) {
        throw new GatewayError('bad_request', `JPEG decode failed: ${(err as Error).message}`, { cause: err });
      }
      return { width: img.width, height: img.height, stride: img.width * 3, encoding: 'rgb8', data: img.data };
    },
  };
}

/** The decoder used when none is installed: every CompressedImage is refused with instructions. */
export const missingJpegDecoder: ImageDecoder = {
  name: 'none',
  decode() {
    throw new GatewayError(
      'unavailable',
      `no JPEG decoder: install ${JPEG_DECODER_PACKAGE} (npm install ${JPEG_DECODER_PACKAGE}) or use raw sensor_msgs/Image topics (--raw-images)`,
    );
  },
};
