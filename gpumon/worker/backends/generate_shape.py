"""The `generate` workload's model shape and its honest cost, shared by every framework.

One op of `generate` is one decoding step of a tiny decoder-only transformer built from random
weights: embed the last token, run a few attention+MLP layers over a per-thread KV cache, take
logits over the vocabulary and sample the next token with the framework's *global* random
state. That last part is what parallel inference servers do when several threads sample tokens,
and it is the pattern that kills MLX <= 0.31.1: there the default random key is one lazy array
shared by every thread, so two threads evaluate the same graph at once (SIGSEGV in
mlx::core::eval_impl within ~0.2 s at 2 threads on CPU, whatever the streams). MLX 0.31.2 made
that key thread-local. tests/engine/test_mlx_policies.py reproduces both.

Nothing here imports a framework, so the supervisor side and the tests can reason about FLOPs
and memory without torch or mlx.
"""

from __future__ import annotations

VOCAB = 1024  # token ids 0..VOCAB-1; logits are a (1, VOCAB) row per step
LAYERS = 2
CONTEXT = 128  # KV cache length; a full cache starts a new sequence, as a server's next request
MLP_MULT = 4  # MLP hidden width = MLP_MULT * size, as in most decoders
HEAD_DIM = 64
BOS = 0  # the token every sequence starts from


def heads(size: int) -> int:
    """Attention heads for a model width: 64-wide heads when they divide it, else one head."""
    return size // HEAD_DIM if size % HEAD_DIM == 0 else 1


def layer_shapes(size: int) -> list[tuple[int, int, float]]:
    """(rows, cols, init scale) of one layer's weights, in the order a layer uses them. Scales
    of 1/sqrt(fan-in) keep random activations near unit size through the layers."""
    d, hidden = size, MLP_MULT * size
    return [
        (d, 3 * d, d**-0.5),  # q, k, v projections side by side
        (d, d, d**-0.5),  # attention output
        (d, hidden, d**-0.5),  # MLP up
        (hidden, d, hidden**-0.5),  # MLP down
    ]


def embed_shape(size: int) -> tuple[int, int, float]:
    return (VOCAB, size, 1.0)


def head_shape(size: int) -> tuple[int, int, float]:
    return (size, VOCAB, size**-0.5)


def mean_context() -> float:
    """Average number of cached positions a step attends to: 1, 2, ... CONTEXT, then reset."""
    return (CONTEXT + 1) / 2


def flop_at(size: int, context: int) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of one decoding step at width d = size that
    attends to `context` cached positions (t), this step's own included.

    Per layer:  q,k,v projection 2*d*3d = 6d^2; output projection 2d^2;
                MLP up and down 2 * 2*d*(4d) = 16d^2;
                attention scores q.K^T 2*t*d and the weighted sum of V 2*t*d.
    Head:       logits 2*d*VOCAB.
    Total = LAYERS * (24 d^2 + 4 t d) + 2 d VOCAB. The embedding lookup is a gather (0 FLOPs);
    norms, softmax, GELU and sampling are O(d + VOCAB) element-wise work and left out, so the
    figure slightly *under*states the work rather than inflating it.
    """
    d = float(size)
    per_layer = (6 + 2 + 2 * 2 * MLP_MULT) * d * d + 4 * context * d
    return LAYERS * per_layer + 2 * d * VOCAB


def flop_per_token(size: int) -> float:
    """flop_at averaged over a sequence (t = 1 .. CONTEXT, then a new one): the constant a pool
    reports, so FLOP/s = tokens/s x this."""
    return flop_at(size, 0) + LAYERS * 4 * mean_context() * size


def bytes_per_thread(size: int, itemsize: int) -> int:
    """One thread's model: embedding and output head, LAYERS x (qkv, out, MLP) weights, a full
    KV cache, and a few activation rows (the logits dominate them)."""
    d = size
    shapes = [embed_shape(d), head_shape(d)] + LAYERS * layer_shapes(d)
    weights = sum(rows * cols for rows, cols, _ in shapes)
    cache = LAYERS * 2 * CONTEXT * d
    activations = 4 * (MLP_MULT * d + VOCAB) + heads(size) * CONTEXT
    return (weights + cache + activations) * itemsize
