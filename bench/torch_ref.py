"""PyTorch CPU reference for `npm run bench`: loads vit-ts' exported weights into the PyTorch
model of the same layout, times forward passes (and training steps), exports ONNX for
onnxruntime-node and writes the reference logits of a fixed input.

Run by bench/run.ts with Debian's /usr/bin/python3 (python3-torch, python3-torchvision):
    /usr/bin/python3 bench/torch_ref.py SPEC.json
SPEC.json: {"threads": 2, "runs": 5, "models": [{"name", "kind", "args", "weights", "input",
"batches": [1, 8], "onnx": path or null, "logits": path}], "train": [{"name", "kind", "args",
"batch", "steps"}]}. Prints one JSON object on stdout: {"forward": [...], "train": [...]}.
"""

import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'scripts', 'fixtures'))
import parity_models as pm  # noqa: E402
import st  # noqa: E402


def build(kind, args):
    if kind == 'timm':
        return pm.TimmViT(**args)
    if kind == 'tv_resnet':
        return torchvision.models.resnet18(**args)
    if kind == 'cifar_resnet':
        return pm.CifarResNet18(**args)
    raise ValueError(f'unknown torch builder {kind}')


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def forward_entry(m, runs):
    model = build(m['kind'], m['args']).eval()
    tensors, _ = st.load(m['weights'])
    model.load_state_dict(tensors, strict=True)
    io, _ = st.load(m['input'])
    x = io['input_nhwc'].permute(0, 3, 1, 2).contiguous()
    out = {'name': m['name'], 'ms': {}}
    with torch.no_grad():
        st.save(m['logits'], {'logits': model(x).contiguous()})
        for b in m['batches']:
            xb = torch.randn(b, *x.shape[1:])
            out['ms'][str(b)] = timed(lambda: model(xb), runs if b == 1 else max(3, runs // 2))
        if m.get('onnx'):
            torch.onnx.export(model, x, m['onnx'], opset_version=14, input_names=['input'],
                              output_names=['logits'],
                              dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    return out


def train_entry(t):
    torch.manual_seed(0)
    model = build(t['kind'], t['args']).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    size = t['size']
    x = torch.randn(t['batch'], 3, size, size)
    y = torch.randint(0, t['classes'], (t['batch'],))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return {'name': t['name'], 'ms': timed(step, t.get('steps', 3))}


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(spec.get('threads', 2))
    result = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'forward': [],
              'train': []}
    for m in spec.get('models', []):
        result['forward'].append(forward_entry(m, spec.get('runs', 5)))
    for t in spec.get('train', []):
        result['train'].append(train_entry(t))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
