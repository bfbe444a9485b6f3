"""PyTorch port of the four MTCNN + MobileFaceNet graphs (the reference of bench_mtcnn.lua).

usage:
  /usr/bin/python3 spec/bench/torch_mtcnn.py conformance [FIXTURE] [MODELS_DIR]
  /usr/bin/python3 spec/bench/torch_mtcnn.py time SPEC_JSON [MODELS_DIR]
  /usr/bin/python3 spec/bench/torch_mtcnn.py macs SPEC_JSON [MODELS_DIR]

The networks are built here from our own weight files (models/mtcnn_{pnet,rnet,onet}.safetensors,
models/mobilefacenet.safetensors, read by the small safetensors reader below: an 8-byte
little-endian header length, a JSON header, raw little-endian data) in the layer order of
models/*_encoder.lua:
  - tensors NCHW; conv weights [out, in/groups, kh, kw], linear weights [out, in] over inputs
    flattened in C, H, W order (the files' own layout, as torch's);
  - "valid" convolutions and pools have no padding; "same" is TensorFlow's rule: the output is
    ceil(n / stride) and the padding max((out - 1) stride + k - n, 0), its odd pixel at the bottom
    and right; padded pixels are zeros for convolutions and never win a max-pool (-inf);
  - PReLU per channel (index 1 of [N, C, ...]);
  - the two-class softmax over channels 1-2 (netfile.Softmax2), the other channels passed through;
  - MTCNN's inputs are transposed images ([N, 3, image x, image y]; siamese.face.mtcnn), which
    changes nothing here: the graphs take whatever they are given.

conformance: the four nets on the inputs of ../shared/fixtures/mtcnn_mobilefacenet/nets.safetensors
  (NHWC, already transposed for MTCNN), outputs compared with the stored ones: one JSON line with
  the max abs difference per net (probabilities, regression, landmarks) and the embeddings' max
  abs difference and smallest cosine. Exit status 1 beyond 1e-4 or below cosine 0.9999.

time: SPEC_JSON (a file, or the JSON text itself) = {"threads": 2, "reps": 7, "clock": "wall" | "cpu",
  "pnet": [[h, w], ...], "rnet": [n, ...], "onet": [n, ...], "mobilefacenet": [n, ...]}: inputs of
  those shapes (P-Net [1, 3, h, w]; R-Net [n, 3, 24, 24]; O-Net [n, 3, 48, 48]; MobileFaceNet
  [n, 3, 112, 112]), each forward timed under torch.no_grad() with torch.set_num_threads(threads):
  warm-up calls, then `reps` rounds (each round long enough to be timed: several calls of a short
  forward), the median of the rounds; "cpu" times with the process's processor time (all threads)
  instead of the wall clock. One JSON line with the ms per forward of each entry, in the order given.

macs: the same SPEC_JSON; the multiply-adds of one forward of each entry (every convolution's and
  linear layer's output elements times its inputs per output, counted while the forward runs; the
  PReLUs, pools and softmax are not counted), in the order given, and their total. The work a
  detection or a pipeline must do whatever executes it: divided by a time it gives the rate reached.

Without torch: one JSON line {"skipped": "..."} and exit status 3.
"""
import json
import math
import os
import statistics
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the caller reports the rows as skipped
    print(json.dumps({"skipped": "python cannot import torch: %s" % e}))
    sys.exit(3)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures", "mtcnn_mobilefacenet", "nets.safetensors")
MODELS = os.path.join(ROOT, "models")
CAP, COSINE = 1e-4, 0.9999


# ------------------------------------------------------------------ safetensors
def load_safetensors(path):
    """{name: float32 tensor} of a safetensors file (F32 only)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError("%s: %s is %s, not F32" % (path, name, e["dtype"]))
        lo, hi = e["data_offsets"]
        count = math.prod(e["shape"])
        if hi - lo != 4 * count or hi > len(data):
            raise ValueError("%s: %s: bad data offsets" % (path, name))
        vals = struct.unpack_from("<%df" % count, data, lo)
        out[name] = torch.tensor(vals, dtype=torch.float32).reshape(e["shape"])
    return out


# ------------------------------------------------------------------ layers
def same_pad(n, k, s):
    """TensorFlow's SAME padding of one side of length n: (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv(x, w, b, stride=1, groups=1, same=False):
    if same:
        kh, kw = w.shape[2], w.shape[3]
        t, bo = same_pad(x.shape[2], kh, stride)
        l, r = same_pad(x.shape[3], kw, stride)
        if t or bo or l or r:
            x = F.pad(x, (l, r, t, bo))
    return F.conv2d(x, w, b, stride=stride, groups=groups)


def maxpool(x, k, s, same):
    if same:
        t, bo = same_pad(x.shape[2], k, s)
        l, r = same_pad(x.shape[3], k, s)
        if t or bo or l or r:
            x = F.pad(x, (l, r, t, bo), value=-math.inf)
    return F.max_pool2d(x, k, s)


def softmax2(x):
    """Softmax over channels 1-2 of [N, C, ...], the other channels passed through."""
    return torch.cat([torch.softmax(x[:, :2], dim=1), x[:, 2:]], dim=1)


# ------------------------------------------------------------------ the four graphs
class PNet:
    """models/mtcnn_pnet_encoder.lua: [N,3,H,W] -> [N,6,H',W']."""

    def __init__(self, p):
        self.p = p

    def __call__(self, x):
        p = self.p
        x = F.prelu(conv(x, p["0.weight"], p["0.bias"]), p["1.weight"])
        x = maxpool(x, 2, 2, True)
        x = F.prelu(conv(x, p["3.weight"], p["3.bias"]), p["4.weight"])
        x = F.prelu(conv(x, p["5.weight"], p["5.bias"]), p["6.weight"])
        x = torch.cat([conv(x, p["7.0.weight"], p["7.0.bias"]), conv(x, p["7.1.weight"], p["7.1.bias"])], dim=1)
        return softmax2(x)


class RNet:
    """models/mtcnn_rnet_encoder.lua: [N,3,24,24] -> [N,6]."""

    def __init__(self, p):
        self.p = p

    def __call__(self, x):
        p = self.p
        x = F.prelu(conv(x, p["0.weight"], p["0.bias"]), p["1.weight"])
        x = maxpool(x, 3, 2, True)
        x = F.prelu(conv(x, p["3.weight"], p["3.bias"]), p["4.weight"])
        x = maxpool(x, 3, 2, False)
        x = F.prelu(conv(x, p["6.weight"], p["6.bias"]), p["7.weight"])
        x = x.reshape(x.shape[0], -1)
        x = F.prelu(F.linear(x, p["9.weight"], p["9.bias"]), p["10.weight"])
        x = torch.cat([F.linear(x, p["11.0.weight"], p["11.0.bias"]), F.linear(x, p["11.1.weight"], p["11.1.bias"])],
                      dim=1)
        return softmax2(x)


class ONet:
    """models/mtcnn_onet_encoder.lua: [N,3,48,48] -> [N,16]."""

    def __init__(self, p):
        self.p = p

    def __call__(self, x):
        p = self.p
        x = F.prelu(conv(x, p["0.weight"], p["0.bias"]), p["1.weight"])
        x = maxpool(x, 3, 2, True)
        x = F.prelu(conv(x, p["3.weight"], p["3.bias"]), p["4.weight"])
        x = maxpool(x, 3, 2, False)
        x = F.prelu(conv(x, p["6.weight"], p["6.bias"]), p["7.weight"])
        x = maxpool(x, 2, 2, True)
        x = F.prelu(conv(x, p["9.weight"], p["9.bias"]), p["10.weight"])
        x = x.reshape(x.shape[0], -1)
        x = F.prelu(F.linear(x, p["12.weight"], p["12.bias"]), p["13.weight"])
        x = torch.cat([F.linear(x, p["14.%d.weight" % i], p["14.%d.bias" % i]) for i in range(3)], dim=1)
        return softmax2(x)


class MobileFaceNet:
    """models/mobilefacenet_encoder.lua: [N,3,112,112] -> [N,192] (raw embedding)."""

    STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))

    def __init__(self, p):
        self.p = p
        # (prefix, stride, residual) per bottleneck, in the file's module numbering
        self.blocks = []
        idx, cin = 5, 64
        for t, c, n, s in self.STAGES:
            for i in range(n):
                stride = s if i == 0 else 1
                residual = stride == 1 and cin == c
                self.blocks.append(("%d.0." % idx if residual else "%d." % idx, stride, residual))
                cin, idx = c, idx + 1

    def __call__(self, x):
        p = self.p
        x = F.prelu(conv(x, p["0.weight"], p["0.bias"], stride=2, same=True), p["1.weight"])
        x = F.prelu(conv(x, p["2.weight"], p["2.bias"], groups=64, same=True), p["3.weight"])
        x = conv(x, p["4.weight"], p["4.bias"], same=True)
        for pre, stride, residual in self.blocks:
            h = F.prelu(conv(x, p[pre + "0.weight"], p[pre + "0.bias"], same=True), p[pre + "1.weight"])
            h = F.prelu(conv(h, p[pre + "2.weight"], p[pre + "2.bias"], stride=stride, groups=h.shape[1], same=True),
                        p[pre + "3.weight"])
            h = conv(h, p[pre + "4.weight"], p[pre + "4.bias"], same=True)
            x = x + h if residual else h
        x = F.prelu(conv(x, p["20.weight"], p["20.bias"], same=True), p["21.weight"])
        x = conv(x, p["22.weight"], p["22.bias"], groups=512)
        x = conv(x, p["23.weight"], p["23.bias"])
        x = conv(x, p["24.weight"], p["24.bias"], same=True)
        return x.reshape(x.shape[0], -1)


def load_nets(models):
    files = {"pnet": ("mtcnn_pnet", PNet), "rnet": ("mtcnn_rnet", RNet), "onet": ("mtcnn_onet", ONet),
             "mobilefacenet": ("mobilefacenet", MobileFaceNet)}
    return {k: cls(load_safetensors(os.path.join(models, f + ".safetensors"))) for k, (f, cls) in files.items()}


# ------------------------------------------------------------------ conformance
def nchw(x):
    return x.permute(0, 3, 1, 2).contiguous()


def maxdiff(a, b):
    return float((a - b).abs().max())


def conformance(fixture, models):
    ref = load_safetensors(fixture)
    nets = load_nets(models)
    out = {}
    with torch.no_grad():
        y = nets["pnet"](nchw(ref["pnet.input"]))                  # [1,6,h,w]
        y = y.permute(0, 2, 3, 1)                                   # NHWC as the fixture
        out["pnet"] = max(maxdiff(y[..., :2], ref["pnet.prob"]), maxdiff(y[..., 2:], ref["pnet.regression"]))
        y = nets["rnet"](nchw(ref["rnet.input"]))
        out["rnet"] = max(maxdiff(y[:, :2], ref["rnet.prob"]), maxdiff(y[:, 2:6], ref["rnet.regression"]))
        y = nets["onet"](nchw(ref["onet.input"]))
        out["onet"] = max(maxdiff(y[:, :2], ref["onet.prob"]), maxdiff(y[:, 2:6], ref["onet.regression"]),
                          maxdiff(y[:, 6:16], ref["onet.landmarks"]))
        e = nets["mobilefacenet"](nchw(ref["mobilefacenet.input"])).double()
        r = ref["mobilefacenet.embedding"].double()
        out["mobilefacenet"] = maxdiff(e, r)
        cos = (e * r).sum(1) / (e.norm(dim=1) * r.norm(dim=1))
        out["mobilefacenet_cosine_min"] = float(cos.min())
        out["mobilefacenet_max_abs"] = float(r.abs().max())
    ok = all(out[k] <= CAP for k in ("pnet", "rnet", "onet")) and out["mobilefacenet_cosine_min"] >= COSINE
    out.update(ok=ok, cap=CAP, cosine_cap=COSINE, version="PyTorch " + torch.__version__)
    print(json.dumps(out))
    return 0 if ok else 1


# ------------------------------------------------------------------ timing
def time_forward(fn, x, reps, clock=time.perf_counter):
    """Median over reps rounds of the ms per call; each round at least ~20 ms of calls."""
    fn(x)
    t0 = clock()
    fn(x)
    one = clock() - t0
    calls = max(1, min(1000, int(0.02 / max(one, 1e-6))))
    rounds = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(calls):
            fn(x)
        rounds.append((clock() - t0) / calls * 1000)
    return statistics.median(rounds)


def timing(spec, models):
    threads = int(spec.get("threads", 2))
    reps = int(spec.get("reps", 7))
    clock = time.process_time if spec.get("clock") == "cpu" else time.perf_counter
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    nets = load_nets(models)
    out = {"version": "PyTorch " + torch.__version__, "threads": torch.get_num_threads(), "reps": reps,
           "clock": "cpu" if clock is time.process_time else "wall"}
    with torch.no_grad():
        out["pnet"] = [time_forward(nets["pnet"], torch.randn(1, 3, h, w), reps, clock) for h, w in spec.get("pnet", [])]
        for name, size in (("rnet", 24), ("onet", 48), ("mobilefacenet", 112)):
            out[name] = [time_forward(nets[name], torch.randn(n, 3, size, size), reps, clock)
                         for n in spec.get(name, [])]
    print(json.dumps(out))
    return 0


def macs(spec, models):
    """Multiply-adds per forward: F.conv2d and F.linear counted while each entry runs once."""
    count = [0]
    conv2d, linear = F.conv2d, F.linear

    def counted_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        y = conv2d(x, w, b, stride, padding, dilation, groups)
        count[0] += y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return y

    def counted_linear(x, w, b=None):
        y = linear(x, w, b)
        count[0] += y.numel() * w.shape[1]
        return y

    def one(net, x):
        count[0] = 0
        net(x)
        return count[0]

    nets = load_nets(models)
    F.conv2d, F.linear = counted_conv2d, counted_linear
    try:
        with torch.no_grad():
            out = {"pnet": [one(nets["pnet"], torch.zeros(1, 3, h, w)) for h, w in spec.get("pnet", [])]}
            for name, size in (("rnet", 24), ("onet", 48), ("mobilefacenet", 112)):
                out[name] = [one(nets[name], torch.zeros(n, 3, size, size)) for n in spec.get(name, [])]
    finally:
        F.conv2d, F.linear = conv2d, linear
    out["total"] = sum(sum(v) for v in out.values())
    print(json.dumps(out))
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] not in ("conformance", "time", "macs"):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "conformance":
        fixture = argv[2] if len(argv) > 2 else FIXTURE
        if not os.path.exists(fixture):
            print(json.dumps({"skipped": "no fixture " + fixture}))
            return 3
        return conformance(fixture, argv[3] if len(argv) > 3 else MODELS)
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    text = argv[2]
    if os.path.exists(text):
        with open(text) as f:
            text = f.read()
    run = macs if argv[1] == "macs" else timing
    return run(json.loads(text), argv[3] if len(argv) > 3 else MODELS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
