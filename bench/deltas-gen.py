"""Checkpoints, a merged LoRA and tied weights for bench/deltas.ts, from real training.

A small byte-level transformer language model is trained with torch on this repository's
own text (docs and sources: real text, never random data), so its weights are trained
weights, not draws from a distribution:

- base: 150 steps of Adam (lr 2e-3, batches of 8 x 64 bytes) on docs/*.md and README.md;
- checkpoint series: from the base, Adam with lr 1e-4 on src/**/*.ts, a checkpoint after
  every K steps, four checkpoints after the base, for each K of the command line (one
  series per K, each from the base);
- LoRA: rank 8, alpha 16, on the attention and MLP projections of the base, trained
  60 steps (Adam lr 2e-4) on test/**/*.ts, then merged into the base weights;
- tied: the base with its output projection tied to the token embedding, saved with both
  names (as a state_dict of a tied model holds them).

Every model is written as safetensors in F32 and in BF16 (round to nearest even, as
torch's .to(torch.bfloat16) does). Written without the safetensors package: an 8-byte
header length, the JSON header, the tensors in order.

usage: python3 bench/deltas-gen.py OUT_DIR K[,K...]
"""

import glob
import json
import os
import struct
import sys

import torch

torch.manual_seed(0)
torch.set_num_threads(1)

OUT = sys.argv[1]
KS = [int(k) for k in sys.argv[2].split(",")]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.makedirs(OUT, exist_ok=True)


def corpus(patterns):
    data = b""
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            with open(path, "rb") as f:
                data += f.read()
    return torch.tensor(list(data), dtype=torch.long)


D, LAYERS, HEADS, CTX = 96, 3, 4, 64


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(D)
        self.qkv = torch.nn.Linear(D, 3 * D)
        self.proj = torch.nn.Linear(D, D)
        self.ln2 = torch.nn.LayerNorm(D)
        self.up = torch.nn.Linear(D, 4 * D)
        self.down = torch.nn.Linear(4 * D, D)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (z.view(b, t, HEADS, D // HEADS).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (D // HEADS) ** 0.5
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(y)
        return x + self.down(torch.nn.functional.gelu(self.up(self.ln2(x))))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(256, D)
        self.pos = torch.nn.Embedding(CTX, D)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = torch.nn.LayerNorm(D)
        self.head = torch.nn.Linear(D, 256, bias=False)

    def forward(self, idx):
        x = self.embed(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def train(model, data, steps, lr, params=None, opt=None):
    opt = opt or torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    for _ in range(steps):
        at = torch.randint(0, len(data) - CTX - 1, (8,))
        x = torch.stack([data[i : i + CTX] for i in at])
        y = torch.stack([data[i + 1 : i + CTX + 1] for i in at])
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, 256), y.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return opt, float(loss)


def save(state, name):
    for dtype, label in ((torch.float32, "F32"), (torch.bfloat16, "BF16")):
        header, blobs, offset = {}, [], 0
        for key, tensor in state.items():
            t = tensor.detach().to(dtype).contiguous()
            raw = (t.view(torch.int16) if dtype == torch.bfloat16 else t).numpy().tobytes()
            header[key] = {"dtype": label, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(OUT, f"{name}.{label.lower()}.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


model = Model()
_, loss = train(model, corpus(["docs/*.md", "README.md"]), 150, 2e-3)
print(f"base: loss {loss:.3f}, {sum(p.numel() for p in model.parameters())} parameters", flush=True)
base = snapshot(model)
save(base, "base")

# The checkpoint series: Adam lr 1e-4 from the base, a checkpoint every K steps.
code = corpus(["src/**/*.ts"])
for K in KS:
    series = Model()
    series.load_state_dict(base)
    opt = None
    for j in range(1, 5):
        opt, loss = train(series, code, K, 1e-4, opt=opt)
        save(snapshot(series), f"k{K}-ckpt{j}")
    print(f"series: K={K}, loss {loss:.3f}", flush=True)

# A LoRA on the base's projections, trained, then merged.
lora = Model()
lora.load_state_dict(base)
for p in lora.parameters():
    p.requires_grad_(False)
adapters = []
for block in lora.blocks:
    for layer in (block.qkv, block.proj, block.up, block.down):
        a = torch.nn.Parameter(torch.randn(8, layer.in_features) / layer.in_features**0.5)
        b = torch.nn.Parameter(torch.zeros(layer.out_features, 8))
        adapters.append((layer, a, b))
        weight = layer.weight

        def forward(x, layer=layer, a=a, b=b, weight=weight):
            return torch.nn.functional.linear(x, weight, layer.bias) + (x @ a.t() @ b.t()) * (16 / 8)

        layer.forward = forward
_, loss = train(lora, corpus(["test/**/*.ts"]), 60, 2e-4, params=[p for _, a, b in adapters for p in (a, b)])
print(f"lora: loss {loss:.3f}", flush=True)
merged = {k: v.clone() for k, v in base.items()}
for block_index, block in enumerate(lora.blocks):
    for name, layer in (("qkv", block.qkv), ("proj", block.proj), ("up", block.up), ("down", block.down)):
        _, a, b = next(x for x in adapters if x[0] is layer)
        key = f"blocks.{block_index}.{name}.weight"
        merged[key] = base[key] + (b @ a).detach() * (16 / 8)
save(merged, "lora-merged")

# Tied weights: the output projection is the token embedding (256 x D both).
tied = dict(base)
tied["head.weight"] = base["embed.weight"]
save(tied, "tied")
