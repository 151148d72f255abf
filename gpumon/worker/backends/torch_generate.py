"""The `generate` workload on PyTorch: one decoding step of a tiny random-weight decoder per op.

The same model as mlx_generate.py (see generate_shape.py for its shape and cost). Built on the
worker thread that runs it, after that thread's current CUDA stream was set, so every kernel
lands on the stream the pool's policy chose.
"""

from __future__ import annotations

from typing import Any

from gpumon.worker.backends import generate_shape as shape


class TorchDecoder:
    """Weights drawn from this thread's own CPU generator (deterministic, and no contention on
    the global one while building) and a preallocated KV cache filled one row per step."""

    def __init__(self, torch: Any, device: Any, size: int, dtype: str, seed: int) -> None:
        self.torch = torch
        self.device = device
        self.size = size
        self.heads = shape.heads(size)
        dt = getattr(torch, dtype)
        gen = torch.Generator(device="cpu").manual_seed(seed)

        def rand(rows: int, cols: int, scale: float) -> Any:
            return (torch.randn(rows, cols, generator=gen) * scale).to(device, dt)

        self.embed = rand(*shape.embed_shape(size))
        self.layers = [
            tuple(rand(*s) for s in shape.layer_shapes(size)) for _ in range(shape.LAYERS)
        ]
        self.head = rand(*shape.head_shape(size))
        self.keys = torch.zeros(shape.LAYERS, shape.CONTEXT, size, device=device, dtype=dt)
        self.values = torch.zeros_like(self.keys)
        self.length = 0
        self.token = shape.BOS

    def step(self) -> None:
        """Decode one token and bring its id back to the host (which waits for the device), as a
        server does before it can stream the token out and feed it back in."""
        torch = self.torch
        if self.length == shape.CONTEXT:
            self.length, self.token = 0, shape.BOS  # a full cache: the next request
        # A fresh input tensor every step: the token id that just came back to the host.
        tok = torch.tensor([self.token], device=self.device)
        x = self.embed[tok]  # (1, d)
        for i, (w_qkv, w_out, w_up, w_down) in enumerate(self.layers):
            x = x + self._attend(i, _rms_norm(torch, x) @ w_qkv) @ w_out
            x = x + torch.nn.functional.gelu(_rms_norm(torch, x) @ w_up) @ w_down
        logits = (_rms_norm(torch, x) @ self.head).float()
        # The default generator: torch's global random state, as inference servers sample.
        nxt = torch.multinomial(torch.softmax(logits, -1), 1)
        self.token = int(nxt.item())
        self.length += 1

    def _attend(self, layer: int, qkv: Any) -> Any:
        d, h, t = self.size, self.heads, self.length + 1
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        self.keys[layer, self.length] = k[0]
        self.values[layer, self.length] = v[0]
        dh = d // h
        qh = q.reshape(h, 1, dh)
        kh = self.keys[layer, :t].reshape(t, h, dh).permute(1, 2, 0)  # (h, dh, t)
        vh = self.values[layer, :t].reshape(t, h, dh).permute(1, 0, 2)  # (h, t, dh)
        probs = self.torch.softmax((qh @ kh) * dh**-0.5, dim=-1)  # (h, 1, t)
        return (probs @ vh).reshape(1, d)


def _rms_norm(torch: Any, x: Any) -> Any:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
