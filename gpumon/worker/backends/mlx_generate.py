"""The `generate` workload on MLX: one decoding step of a tiny random-weight decoder per op.

Built and run on the worker thread that owns it, on the stream the pool's policy chose. Only
APIs present since mlx 0.30 are used, so the same model runs on the old versions whose
threading bugs gpumon exists to show.
"""

from __future__ import annotations

from typing import Any

from gpumon.worker.backends import generate_shape as shape


class MlxDecoder:
    """Weights (drawn from this thread's own key, never the global random state, so building
    the model is safe on every version) and a KV cache that grows one row per step."""

    def __init__(self, mx: Any, size: int, dtype: str, stream: Any, seed: int) -> None:
        self.mx = mx
        self.stream = stream
        self.size = size
        self.heads = shape.heads(size)
        dt = getattr(mx, dtype)
        key = mx.random.key(seed)

        def rand(rows: int, cols: int, scale: float) -> Any:
            nonlocal key
            key, sub = mx.random.split(key)
            return (mx.random.normal((rows, cols), key=sub) * scale).astype(dt)

        with mx.stream(stream):
            self.embed = rand(*shape.embed_shape(size))
            self.layers = [
                tuple(rand(*s) for s in shape.layer_shapes(size)) for _ in range(shape.LAYERS)
            ]
            self.head = rand(*shape.head_shape(size))
            mx.eval(self.embed, self.head, *[w for layer in self.layers for w in layer])
        self._reset()

    def _reset(self) -> None:
        self.keys: list[Any] = [None] * shape.LAYERS
        self.values: list[Any] = [None] * shape.LAYERS
        self.length = 0
        self.token = shape.BOS

    def step(self) -> None:
        """Decode one token and wait for it, as a server does before it can stream the token out
        (and before it can feed it back in)."""
        if self.length == shape.CONTEXT:
            self._reset()  # the cache is full: the next request starts from BOS
        mx = self.mx
        with mx.stream(self.stream):
            # A fresh input array every step: the token id that just came back to the host.
            tok = mx.array([self.token], dtype=mx.int32)
            x = self.embed[tok]  # (1, d)
            for i, (w_qkv, w_out, w_up, w_down) in enumerate(self.layers):
                x = x + self._attend(i, _rms_norm(mx, x) @ w_qkv) @ w_out
                x = x + gelu(mx, _rms_norm(mx, x) @ w_up) @ w_down
            logits = (_rms_norm(mx, x) @ self.head).astype(mx.float32)
            # No key: the framework's global random state, shared by every thread, exactly
            # as an inference server samples. This is the line MLX <= 0.31.1 dies on.
            nxt = mx.random.categorical(logits)
        mx.eval(nxt, *self.keys, *self.values)  # the cache too, so its graph never grows
        self.token = int(nxt.item())
        self.length += 1

    def _attend(self, layer: int, qkv: Any) -> Any:
        mx = self.mx
        d, h = self.size, self.heads
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        prev_k, prev_v = self.keys[layer], self.values[layer]
        keys = k if prev_k is None else mx.concatenate([prev_k, k], axis=0)  # (t, d)
        values = v if prev_v is None else mx.concatenate([prev_v, v], axis=0)
        self.keys[layer], self.values[layer] = keys, values
        t, dh = keys.shape[0], d // h
        qh = q.reshape(h, 1, dh)
        kh = keys.reshape(t, h, dh).transpose(1, 2, 0)  # (h, dh, t)
        vh = values.reshape(t, h, dh).transpose(1, 0, 2)  # (h, t, dh)
        probs = mx.softmax((qh @ kh) * dh**-0.5, axis=-1)  # (h, 1, t)
        return (probs @ vh).reshape(1, d)


def _rms_norm(mx: Any, x: Any) -> Any:
    return x * mx.rsqrt(mx.mean(x * x, axis=-1, keepdims=True) + 1e-5)


def gelu(mx: Any, x: Any) -> Any:
    # tanh approximation from core ops, so it runs on whatever stream is current
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
