"""A small ResNet-like conv net in FP16 with batch norm fused into its convolutions.

Random init (seeded), a few SGD steps on random images so the batch-norm statistics and
weights move off their initial values, then each BatchNorm2d folded into the conv before
it (w' = w * gamma / sqrt(var + eps) per output channel, b' = beta - mean * gamma /
sqrt(var + eps)), the whole state cast to FP16. Written twice: torch.save (a PyTorch zip
checkpoint) and a safetensors file written here (JSON header + raw little-endian bytes).

    python3 conv_fp16.py OUT_DIR [--width 64] [--steps 5] [--seed 0] [--dead PERCENT]
"""
import json
import struct
import sys

import torch
import torch.nn as nn


def block(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.layers = nn.Sequential(
            block(w, w, 1), block(w, w, 1),
            block(w, 2 * w, 2), block(2 * w, 2 * w, 1),
            block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 1),
            block(4 * w, 8 * w, 2), block(8 * w, 8 * w, 1),
        )
        self.head = nn.Linear(8 * w, 100)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.head(x.mean((2, 3)))


def fused_state(net):
    """Conv weights with the following BatchNorm folded in, as a flat name -> tensor dict."""
    out = {}
    modules = list(net.named_modules())
    for i, (name, m) in enumerate(modules):
        if isinstance(m, nn.Conv2d):
            bn = modules[i + 1][1]
            assert isinstance(bn, nn.BatchNorm2d)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out[f"{name}.weight"] = m.weight * scale.reshape(-1, 1, 1, 1)
            out[f"{name}.bias"] = bn.bias - bn.running_mean * scale
        elif isinstance(m, nn.Linear):
            out[f"{name}.weight"] = m.weight
            out[f"{name}.bias"] = m.bias
    return {k: v.detach().half().contiguous() for k, v in out.items()}


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        data = t.numpy().astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    args = sys.argv[1:]
    out_dir = args[0]
    opt = {"--width": 64, "--steps": 5, "--seed": 0, "--dead": 0}
    for i in range(1, len(args) - 1, 2):
        opt[args[i]] = int(args[i + 1])
    torch.manual_seed(opt["--seed"])
    torch.set_num_threads(1)
    net = Net(opt["--width"])
    sgd = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(opt["--steps"]):
        x = torch.randn(8, 3, 64, 64)
        y = torch.randint(0, 100, (8,))
        loss = nn.functional.cross_entropy(net(x), y)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
    net.eval()
    if opt["--dead"]:
        # Channels whose batch-norm scale weight decay drove to (almost) zero, as in
        # trained nets: their fused weights fall to FP16 subnormals and zeros.
        g = torch.Generator().manual_seed(opt["--seed"] + 1)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    dead = torch.rand(m.weight.shape, generator=g) < opt["--dead"] / 100
                    m.weight[dead] *= 1e-4
    state = fused_state(net)
    torch.save(state, f"{out_dir}/conv-fp16-fused.pt")
    write_safetensors(f"{out_dir}/conv-fp16-fused.safetensors", state)


if __name__ == "__main__":
    main()
