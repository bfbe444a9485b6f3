// RGB int32 tensor [h, w, 3] of a JPEG decoded by jpeg-js (alpha dropped),
// as face-api's node examples feed it. Shared by spec/bench/faceapi/bench.js
// and spec/fixtures/faceapi_ssd/make_refs.js; they pass their own tfjs and
// jpeg-js modules.
'use strict';

const fs = require('fs');

module.exports = function jpegTensor(tf, jpeg, file) {
  const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: true });
  const rgb = new Int32Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) {
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = img.data[4 * i + c];
  }
  return tf.tensor3d(rgb, [img.height, img.width, 3], 'int32');
};
