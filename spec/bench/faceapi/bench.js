// face-api's own pipeline on the tfjs WASM backend, the reference that
// spec/bench/run.lua times in the same run as siamese (the target:
// >= 5x faster per face and per detection). Packages pinned in
// package-lock.json next to this file; `make bench` installs them into
// build/faceapi-bench with `npm ci`.
//
//   node spec/bench/faceapi/bench.js MODEL_DIR PHOTO.jpg
//
// prints one JSON object: the best of several runs, in milliseconds, of
// computeFaceDescriptor on one 150x150 face (embed_ms) and of the tiny
// detector at input 416, score 0.5 (detect_ms) on the photo (jpeg-js decode,
// as face-api's node examples).
'use strict';

const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const jpeg = require('jpeg-js');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const [modelDir, photoPath] = process.argv.slice(2);
if (!modelDir || !photoPath) {
  process.stderr.write('usage: node bench.js MODEL_DIR PHOTO.jpg\n');
  process.exit(2);
}

// RGB int32 tensor [h, w, 3] of a JPEG decoded by jpeg-js (alpha dropped).
const jpegTensor = (file) => require('./jpeg_tensor.js')(tf, jpeg, file);

// Best wall time in ms of `reps` calls of the async fn, after one warm-up.
async function best(fn, reps) {
  await fn();
  let b = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return b;
}

(async () => {
  wasm.setWasmPaths(require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/]*$/, ''));
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  const photo = jpegTensor(photoPath);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const faces = await faceapi.detectAllFaces(photo, options);
  const detectMs = await best(() => faceapi.detectAllFaces(photo, options), 10);
  const chip = tf.fill([150, 150, 3], 128, 'int32');
  const embedMs = await best(() => faceapi.computeFaceDescriptor(chip), 20);
  process.stdout.write(JSON.stringify({
    backend: tf.getBackend(), faces: faces.length, embed_ms: embedMs, detect_ms: detectMs,
  }) + '\n');
})().catch((e) => {
  process.stderr.write(`faceapi bench: ${e.message}\n`);
  process.exit(1);
});
