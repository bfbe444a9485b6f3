"""PyTorch twin of spec/bench/train_worker.lua (the reference of bench_train.lua).

usage: /usr/bin/python3 spec/bench/torch_train.py att|big BATCH_FILE WARMUP STEPS THREADS

Trains the same architecture, with the same losses, optimiser and batches
(read from the safetensors file the Lua side wrote) for warm-up + timed
steps, with torch.set_num_threads(THREADS), and prints one JSON line
{items_per_s, seconds, cpu_seconds (process CPU time of the timed steps,
all threads), steps, items, rss_idle_kib, peak_kib, loss_first, loss_last}. Peak memory is VmHWM of this process; rss_idle_kib is VmRSS
once the model and batches are ready, before the first step.
"""
import json
import re
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def status_kib(field):
    with open("/proc/self/status") as f:
        return int(re.search(field + r":\s*(\d+)", f.read()).group(1))


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32"
        lo, hi = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data, dtype=np.float32, count=(hi - lo) // 4,
                                                   offset=lo).reshape(e["shape"]).copy())
    return out


def att_encoder():
    # examples/att_common.lua common.classic_encoder() (the seed's net)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.1),
        nn.Conv2d(6, 12, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.1),
        nn.Flatten(), nn.Linear(12 * 12 * 10, 128), nn.ReLU(inplace=True), nn.Linear(128, 50))


def big_encoder():
    layers, cin = [], 1
    for c in (32, 64, 128, 256):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 128)]
    return nn.Sequential(*layers)


def euclidean(a, b, eps=1e-7):
    # siamese's PairwiseDistance: sqrt(max(sum (a-b)^2, eps))
    return torch.sqrt(torch.clamp(((a - b) ** 2).sum(1), min=eps))


def contrastive(d, y, margin=1.0):
    return (y * d ** 2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()


def batch_hard_triplet(e, labels, margin=0.2, eps=1e-7):
    diff = e.unsqueeze(1) - e.unsqueeze(0)
    dist = torch.sqrt(torch.clamp((diff ** 2).sum(2), min=eps))
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = torch.where(same & ~eye, dist, torch.zeros_like(dist)).max(1).values
    neg = torch.where(~same, dist, torch.full_like(dist, float("inf"))).min(1).values
    return torch.relu(pos - neg + margin).mean()


def main():
    which, path = sys.argv[1], sys.argv[2]
    warmup, steps, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    batches = load_safetensors(path)
    if which == "att":
        net = att_encoder()
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        nb = sum(1 for k in batches if k.startswith("a"))
        items = batches["a1"].shape[0]

        def step(k):
            x1, x2, y = batches["a%d" % k], batches["b%d" % k], batches["y%d" % k]
            opt.zero_grad()
            e = net(torch.cat([x1, x2]))  # both branches in one batch, as nn.Siamese
            loss = contrastive(euclidean(e[:len(x1)], e[len(x1):]), y)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        net = big_encoder()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        nb = sum(1 for k in batches if k.startswith("x"))
        items = batches["x1"].shape[0]

        def step(k):
            x, labels = batches["x%d" % k], batches["labels%d" % k]
            opt.zero_grad()
            e = nn.functional.normalize(net(x), dim=1)
            loss = batch_hard_triplet(e, labels)
            loss.backward()
            opt.step()
            return loss.item()
    net.train()
    idle = status_kib("VmRSS")
    loss_first = loss_last = None
    for s in range(warmup):
        loss_first = step(s % nb + 1)
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(steps):
        loss_last = step((warmup + s) % nb + 1)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"items_per_s": steps * items / seconds, "seconds": seconds, "cpu_seconds": cpu, "steps": steps, "items": items,
                      "rss_idle_kib": idle, "peak_kib": status_kib("VmHWM"), "loss_first": loss_first,
                      "loss_last": loss_last, "version": "PyTorch " + torch.__version__}))


if __name__ == "__main__":
    main()
