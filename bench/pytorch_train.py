#!/usr/bin/python3
# Python PyTorch reference for bench/train_throughput.cpp: images per second of
# forward + backward + Adam step at the same architecture, batch and threads.
#
# Mirrors, layer for layer and in the same parameter-creation order (so with
# seed 0 the weights and batch equal the C++ bench's when both use the same
# libtorch):
#   - MaskedConv2d (src/tame/nn/masked_conv.cpp): mask A/B, colour = feature % C,
#     weight * mask in forward (not for mask None), padding that places the centre;
#   - PixelCNN (src/tame/models/autoregressive/pixelcnn.{h,cpp}) and Gated PixelCNN
#     (gated_pixelcnn.{h,cpp}) with their default options;
#   - the loss of ImageModel::train_step (src/tame/models/image_model.cpp):
#     x scaled to [-1,1] (dist/likelihood.cpp scale_to_unit), logits [B,K,C,H,W],
#     per-image summed categorical NLL (dist/pixel_likelihood.cpp), mean over the
#     batch, divided by C*H*W (nats per dimension); loss.item() every step;
#   - Adam at lr 1e-3 with libtorch's defaults (ImageModel::make_optimizers); no
#     gradient clipping, like bench_train_throughput (tame train clips at 1.0:
#     pass --clip 1 for that);
#   - tame::set_threads (src/tame/common.cpp): intra-op threads and OpenBLAS's pool.
#
#   /usr/bin/python3 bench/pytorch_train.py --model pixelcnn|gated-pixelcnn [--batch 32]
#       [--threads 2] [--steps 20] [--warmup 5] [--levels 256] [--clip 0] [--check]
import argparse, ctypes, json, math, time
import torch
import torch.nn.functional as F
from torch import nn


def make_mask(cout, cin, kh, kw, cr, cc, colors, kind):
    m = torch.zeros(cout, cin, kh, kw)
    if kind is None:
        return m.fill_(1.0)
    m[:, :, :cr, :] = 1  # rows above the centre
    m[:, :, cr, :cc] = 1  # left of the centre in its row
    co = torch.arange(cout).unsqueeze(1) % colors
    ci = torch.arange(cin).unsqueeze(0) % colors
    m[:, :, cr, cc] = (ci < co if kind == "A" else ci <= co).float()
    return m


class MaskedConv2d(nn.Module):
    def __init__(self, cin, cout, k, kh=None, kw=None, cr=None, cc=None, mask="B", colors=1):
        super().__init__()
        kh, kw = kh or k, kw or k
        cr, cc = k // 2 if cr is None else cr, k // 2 if cc is None else cc
        self.kind = mask
        self.pad = (cc, kw - 1 - cc, cr, kh - 1 - cr)  # left, right, top, bottom
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(cin * kh * kw)
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))
        self.register_buffer("mask", make_mask(cout, cin, kh, kw, cr, cc, colors, mask))

    def forward(self, x):
        w = self.weight if self.kind is None else self.weight * self.mask
        l, r, t, b = self.pad
        if t == b and l == r:
            return F.conv2d(x, w, self.bias, padding=(t, l))
        return F.conv2d(F.pad(x, self.pad), w, self.bias)


class PixelCNN(nn.Module):
    def __init__(self, C, K, hidden=32, blocks=8, input_kernel=7, kernel=3, out_hidden=64):
        super().__init__()
        self.K = K
        self.input = MaskedConv2d(C, 2 * hidden, input_kernel, mask="A", colors=C)
        self.blocks = nn.ModuleList(
            nn.ModuleList([MaskedConv2d(2 * hidden, hidden, 1, colors=C),
                           MaskedConv2d(hidden, hidden, kernel, colors=C),
                           MaskedConv2d(hidden, 2 * hidden, 1, colors=C)]) for _ in range(blocks))
        self.out1 = MaskedConv2d(2 * hidden, out_hidden, 1, colors=C)
        self.out2 = MaskedConv2d(out_hidden, K * C, 1, colors=C)

    def forward(self, x):
        h = self.input(x)
        for reduce, conv, expand in self.blocks:
            h = h + expand(F.relu(conv(F.relu(reduce(F.relu(h))))))
        out = self.out2(F.relu(self.out1(F.relu(h))))
        return out.view(x.size(0), self.K, x.size(1), x.size(2), x.size(3))


def shift_down(x):
    return F.pad(x, (0, 0, 1, 0))[:, :, : x.size(2)]


def gate(x):
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, cin, n, k, colors, first):
        super().__init__()
        kh = k // 2 + 1
        self.first = first
        self.vconv = MaskedConv2d(cin, 2 * n, k, kh=kh, cr=kh - 1, mask=None)
        self.hconv = MaskedConv2d(cin, 2 * n, k, kh=1, cr=0, kw=kh, cc=kh - 1,
                                  mask="A" if first else "B", colors=colors)
        self.v2h = MaskedConv2d(2 * n, 2 * n, 1, mask=None)
        self.hout = None if first else MaskedConv2d(n, n, 1, colors=colors)

    def forward(self, v, h):
        v_pre = self.vconv(v)
        h_pre = self.hconv(h) + self.v2h(shift_down(v_pre))
        h_gated = gate(h_pre)
        return gate(v_pre), (h_gated if self.first else h + self.hout(h_gated))


class GatedPixelCNN(nn.Module):
    def __init__(self, C, K, hidden=32, layers=8, input_kernel=7, kernel=3, out_hidden=64):
        super().__init__()
        self.K = K
        self.layers = nn.ModuleList([GatedLayer(C, hidden, input_kernel, C, True)] +
                                    [GatedLayer(hidden, hidden, kernel, C, False)
                                     for _ in range(layers)])
        self.out1 = MaskedConv2d(hidden, out_hidden, 1, colors=C)
        self.out2 = MaskedConv2d(out_hidden, K * C, 1, colors=C)

    def forward(self, x):
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        out = self.out2(F.relu(self.out1(F.relu(h))))
        return out.view(x.size(0), self.K, x.size(1), x.size(2), x.size(3))


def set_blas_threads(n):
    # tame::set_threads also sizes OpenBLAS's pool; torch.set_num_threads does not.
    for line in open("/proc/self/maps"):
        if "libopenblas" in line or "libblas" in line:
            try:
                ctypes.CDLL(line.split()[-1]).openblas_set_num_threads(n)
                return True
            except (OSError, AttributeError):
                pass
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["pixelcnn", "gated-pixelcnn"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--levels", type=int, default=256)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--check", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (it can be set only once, before any parallel work)
    set_blas_threads(a.threads)

    torch.manual_seed(0)
    K = a.levels
    model = (PixelCNN if a.model == "pixelcnn" else GatedPixelCNN)(1, K)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, K, (a.batch, 1, 28, 28)).to(torch.uint8)
    params = sum(t.numel() for t in model.parameters())

    def step():
        opt.zero_grad()
        logits = model(x.float() * (2.0 / (K - 1)) - 1.0)
        nll = F.cross_entropy(logits, x.long(), reduction="none").flatten(1).sum(1)
        loss = nll.mean() / x[0].numel()  # nats per dimension
        value = loss.item()
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        return value

    if a.check:
        print(json.dumps({"model": a.model, "parameters": params, "first_loss": step()}))
        return
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({"bench": "pytorch_train", "model": a.model, "torch": torch.__version__,
                      "levels": K, "batch": a.batch, "threads": a.threads, "steps": a.steps,
                      "parameters": params, "images_per_s": a.steps * a.batch / secs}))


if __name__ == "__main__":
    main()
