"""The Python a repro script is made of: one block per framework, policy, workload and device.

These are gpumon's workloads written again, compactly, for a script that imports only the
framework and the standard library: the same shapes (gpumon/worker/backends/generate_shape.py,
base.py) and the same operations as the worker's backends, built per thread from the thread's
own seed, on the stream the policy gives that thread. The text goes into upstream issues, so it
is written to be read: short lines, a comment where a line carries the bug.

Every `$name` is filled from a checked ReproPlan (repro_plan.py): numbers, names from gpumon's
own vocabularies, never free text from the log.
"""

from __future__ import annotations

from string import Template

from gpumon.report.repro_plan import MLX_PER_THREAD_DEFAULT_STREAMS, MLX_UNSAFE_STREAM, ReproPlan

# generate's model (gpumon/worker/backends/generate_shape.py; a test checks they agree)
VOCAB, LAYERS, CONTEXT, MLP_MULT, HEAD_DIM = 1024, 2, 128, 4, 64
MLP_BATCH, MLP_LAYERS = 256, 4  # mlp's shape (gpumon/worker/backends/base.py)
JOIN_S = 10  # seconds a stopping thread gets to finish its op, as gpumon's worker gives it

PRELUDE = {
    "mlx": Template(
        """\
import contextlib, faulthandler, sys, threading, time
import mlx.core as mx

faulthandler.enable()  # a native crash prints every thread's Python stack, then dies by it
if mx.__version__ != "$release" and "--any-version" not in sys.argv:
    print(f"mlx {mx.__version__} is not $release (--any-version: run anyway)", file=sys.stderr)
    sys.exit(2)
"""
    ),
    "torch": Template(
        """\
import contextlib, faulthandler, sys, threading, time
import torch

faulthandler.enable()  # a native crash prints every thread's Python stack, then dies by it
if torch.__version__.split("+")[0] != "$release" and "--any-version" not in sys.argv:
    print(f"torch {torch.__version__} is not $release (--any-version: run anyway)", file=sys.stderr)
    sys.exit(2)
"""
    ),
}

CONFIG = Template(
    """\
DEVICE, DTYPE, SIZE = $device, $dtype, $size
SYNC_EVERY = $sync_every  # ops between waits for the device
STEPS = $steps  # (seconds from the start, threads)
SECONDS = $seconds  # $seconds_why
${model_line}target, errors = 0, []  # worker threads wanted now; errors they raised
"""
)

HELPERS = {
    "mlx": """\
def rms(x):
    return x * mx.rsqrt(mx.mean(x * x, axis=-1, keepdims=True) + 1e-5)

def gelu(x):  # tanh approximation, from core ops
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
""",
    "torch": """\
def rms(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
""",
}

# ---- workloads ------------------------------------------------------------------------------

MLX_WORK = {
    "matmul": """\
class Matmul:  # addmm on SIZE x SIZE inputs this thread built once, from its own key
    def __init__(self, seed, s):
        self.key, self.s = mx.random.key(seed), s
        with mx.stream(s):
            self.inputs = [self.rand(SIZE, SIZE) for _ in range(3)]
            mx.eval(self.inputs)

    def rand(self, *shape):
        self.key, sub = mx.random.split(self.key)
        return (mx.random.normal(shape, key=sub) / SIZE**0.5).astype(DTYPE)

    def run(self):
        c, a, b = self.inputs
        mx.eval(*[mx.addmm(c, a, b, stream=self.s) for _ in range(SYNC_EVERY)])
""",
    "mlp": """\
class Mlp:  # a forward pass, $mlp_batch rows through $mlp_layers SIZE x SIZE layers with GELU
    def __init__(self, seed, s):
        self.key, self.s = mx.random.key(seed), s
        with mx.stream(s):
            self.x = self.rand($mlp_batch, SIZE)
            self.ws = [self.rand(SIZE, SIZE) for _ in range($mlp_layers)]
            mx.eval(self.x, self.ws)

    def rand(self, *shape):
        self.key, sub = mx.random.split(self.key)
        return (mx.random.normal(shape, key=sub) / SIZE**0.5).astype(DTYPE)

    def run(self):
        outs = []
        with mx.stream(self.s):
            for _ in range(SYNC_EVERY):
                h = self.x
                for w in self.ws:
                    h = gelu(h @ w)
                outs.append(h)
        mx.eval(*outs)
""",
    "generate": """\
def attention(q, k, v):  # HEADS heads over the t positions of the sequence so far
    t, h, dh = k.shape[0], HEADS, SIZE // HEADS
    scores = (q.reshape(h, 1, dh) @ k.reshape(t, h, dh).transpose(1, 2, 0)) * dh**-0.5
    return (mx.softmax(scores, axis=-1) @ v.reshape(t, h, dh).transpose(1, 0, 2)).reshape(1, SIZE)

class Decoder:  # a tiny random-weight decoder; one op = one token, like a server's
    def __init__(self, seed, s):
        d, f, self.s, self.key = SIZE, $mlp_mult * SIZE, s, mx.random.key(seed)
        shapes = [(d, 3 * d, d**-0.5), (d, d, d**-0.5), (d, f, d**-0.5), (f, d, f**-0.5)]
        with mx.stream(s):  # weights from this thread's own key, never the global one
            self.embed = self.rand(VOCAB, d, 1.0)
            self.layers = [[self.rand(*shape) for shape in shapes] for _ in range(LAYERS)]
            self.head = self.rand(d, VOCAB, d**-0.5)
            mx.eval(self.embed, self.layers, self.head)
        self.keys, self.values, self.length, self.token = [None] * LAYERS, [None] * LAYERS, 0, 0

    def rand(self, rows, cols, scale):
        self.key, sub = mx.random.split(self.key)
        return (mx.random.normal((rows, cols), key=sub) * scale).astype(DTYPE)

    def run(self):  # one token, waited for: a server needs it before it can send it on
        if self.length == CONTEXT:  # a full KV cache: the next sequence starts from token 0
            self.length, self.token = 0, 0
        with mx.stream(self.s):
            x = self.embed[mx.array([self.token], dtype=mx.int32)]  # a fresh input every step
            for i, (qkv, out, up, down) in enumerate(self.layers):
                h = rms(x) @ qkv
                q, k, v = h[:, :SIZE], h[:, SIZE : 2 * SIZE], h[:, 2 * SIZE :]
                if self.length:  # and every earlier position of this sequence (the KV cache)
                    k, v = mx.concatenate([self.keys[i], k]), mx.concatenate([self.values[i], v])
                self.keys[i], self.values[i] = k, v
                x = x + attention(q, k, v) @ out
                x = x + gelu(rms(x) @ up) @ down
            logits = (rms(x) @ self.head).astype(mx.float32)
            nxt = mx.random.categorical(logits)  # MLX's global random state, as servers sample
        mx.eval(nxt, *self.keys, *self.values)
        self.token, self.length = int(nxt.item()), self.length + 1
""",
}

TORCH_WORK = {
    "matmul": """\
class Matmul:  # addmm on SIZE x SIZE inputs this thread built once, from its own seed
    def __init__(self, seed):
        gen = torch.Generator().manual_seed(seed)
        self.inputs = [(torch.randn(SIZE, SIZE, generator=gen) / SIZE**0.5).to(DEVICE, DTYPE)
                       for _ in range(3)]

    def run(self):
        c, a, b = self.inputs
        for _ in range(SYNC_EVERY):
            torch.addmm(c, a, b)
""",
    "mlp": """\
class Mlp:  # a forward pass, $mlp_batch rows through $mlp_layers SIZE x SIZE layers with GELU
    def __init__(self, seed):
        gen = torch.Generator().manual_seed(seed)
        rand = lambda *shape: (torch.randn(*shape, generator=gen) / SIZE**0.5).to(DEVICE, DTYPE)
        self.x, self.ws = rand($mlp_batch, SIZE), [rand(SIZE, SIZE) for _ in range($mlp_layers)]

    def run(self):
        for _ in range(SYNC_EVERY):
            h = self.x
            for w in self.ws:
                h = torch.nn.functional.gelu(h @ w)
""",
    "generate": """\
def attention(q, k, v):  # HEADS heads over the t positions of the sequence so far
    t, h, dh = k.shape[0], HEADS, SIZE // HEADS
    scores = (q.reshape(h, 1, dh) @ k.reshape(t, h, dh).permute(1, 2, 0)) * dh**-0.5
    return (torch.softmax(scores, dim=-1) @ v.reshape(t, h, dh).permute(1, 0, 2)).reshape(1, SIZE)

class Decoder:  # a tiny random-weight decoder; one op = one token, like a server's
    def __init__(self, seed):
        d, f, gen = SIZE, $mlp_mult * SIZE, torch.Generator().manual_seed(seed)
        rand = lambda r, c, scale: (torch.randn(r, c, generator=gen) * scale).to(DEVICE, DTYPE)
        shapes = [(d, 3 * d, d**-0.5), (d, d, d**-0.5), (d, f, d**-0.5), (f, d, f**-0.5)]
        self.embed = rand(VOCAB, d, 1.0)  # weights from this thread's own generator
        self.layers = [[rand(*shape) for shape in shapes] for _ in range(LAYERS)]
        self.head = rand(d, VOCAB, d**-0.5)
        self.keys = torch.zeros(LAYERS, CONTEXT, d, device=DEVICE, dtype=DTYPE)  # the KV cache
        self.values, self.length, self.token = torch.zeros_like(self.keys), 0, 0

    def run(self):  # one token: .item() waits for the device, as a server must
        if self.length == CONTEXT:  # a full KV cache: the next sequence starts from token 0
            self.length, self.token = 0, 0
        n = self.length
        x = self.embed[torch.tensor([self.token], device=DEVICE)]  # a fresh input every step
        for i, (qkv, out, up, down) in enumerate(self.layers):
            h = rms(x) @ qkv  # q, k, v side by side; k and v go into the cache
            self.keys[i, n], self.values[i, n] = h[0, SIZE : 2 * SIZE], h[0, 2 * SIZE :]
            x = x + attention(h[:, :SIZE], self.keys[i, : n + 1], self.values[i, : n + 1]) @ out
            x = x + torch.nn.functional.gelu(rms(x) @ up) @ down
        probs = torch.softmax((rms(x) @ self.head).float(), -1)
        nxt = torch.multinomial(probs, 1)  # torch's global random state, as servers sample
        self.token, self.length = int(nxt.item()), self.length + 1
""",
}

CLASS = {"matmul": "Matmul", "mlp": "Mlp", "generate": "Decoder"}

# ---- one worker thread, and the main thread that grows and shrinks them -----------------------

WORKER = {
    "mlx": Template(
        """\
def work(slot):  # one worker thread: its own $what on its stream, ops until not needed
    try:
        model = $cls(1000 + slot, stream())
        while slot < target:
            with LOCK:
$run    except Exception as e:  # a framework error on a thread: the bug as a script can see it
        errors.append(f"{threading.current_thread().name}: {type(e).__name__}: {e}")
    if hasattr(mx, "clear_streams"):  # mlx >= 0.32 aborts at exit unless each thread does this
        mx.clear_streams()
"""
    ),
    "torch": Template(
        """\
def work(slot):  # one worker thread: its own $what, ops until not needed
    try:
        torch.set_grad_enabled(False)  # per thread, like gpumon's workers
$set_stream        model = $cls(1000 + slot)
        while slot < target:
            with LOCK:
$run$sync    except Exception as e:  # a framework error on a thread: the bug as a script can see it
        errors.append(f"{threading.current_thread().name}: {type(e).__name__}: {e}")
"""
    ),
}

MAIN = Template(
    """\
threads, start = {}, time.monotonic()
for at, n in STEPS:  # grow and shrink at the recorded offsets
    time.sleep(max(0.0, start + at - time.monotonic()))
    target = n
    print(f"{time.monotonic() - start:7.2f} s: {n} threads", flush=True)
    for slot in range(n):
        if slot not in threads or not threads[slot].is_alive():
            name = f"${prefix}_worker-{slot}"
            threads[slot] = threading.Thread(target=work, args=(slot,), name=name, daemon=True)
            threads[slot].start()
time.sleep(max(0.0, start + SECONDS - time.monotonic()))
target = 0
for th in threads.values():
    th.join($join)
    if th.is_alive():
        errors.append(f"{th.name} did not stop within $join s")
${settle}if errors:
    print(*errors, sep="\\n", file=sys.stderr)
    sys.exit(3)
print(f"nothing happened in {SECONDS:g} s")
"""
)


# ---- the choices a plan makes -----------------------------------------------------------------


def device_expr(p: ReproPlan) -> str:
    if p.backend == "mlx":
        return "mx.gpu" if p.device == "gpu" else "mx.cpu"
    return f'torch.device("{p.device}")'


def dtype_expr(p: ReproPlan) -> str:
    return f"{'mx' if p.backend == 'mlx' else 'torch'}.{p.dtype}"


def policy_block(p: ReproPlan) -> str:
    """LOCK and stream(): what the recorded policy means on the recorded version."""
    lock = (
        "LOCK = threading.Lock()  # policy locked: one process-wide lock around each submission\n"
        if p.policy == "locked"
        else f"LOCK = contextlib.nullcontext()  # policy {p.policy}: no lock\n"
    )
    if p.backend == "mlx":
        return lock + _mlx_streams(p)
    if p.device.startswith("cuda"):
        if p.policy == "per-thread":
            return lock + _stream_fn("torch.cuda.Stream(DEVICE)", "a CUDA stream per thread")
        return lock + _stream_fn("torch.cuda.default_stream(DEVICE)", "the default stream, shared")
    return lock  # cpu has no streams; mps encodes every thread's work on one queue anyway


def _stream_fn(expr: str, why: str) -> str:
    return f"\ndef stream():  # {why}\n    return {expr}\n"


def _mlx_streams(p: ReproPlan) -> str:
    from gpumon.report.repro_plan import version_tuple

    v = version_tuple(p.version)
    legacy = v < MLX_PER_THREAD_DEFAULT_STREAMS
    if p.policy == "per-thread" and legacy:
        return _stream_fn("mx.new_stream(DEVICE)", "a stream of its own, made on each thread")
    if p.policy == "shared" and not legacy:
        make = "mx.new_thread_unsafe_stream" if v >= MLX_UNSAFE_STREAM else "mx.new_stream"
        return f"SHARED = {make}(DEVICE)  # policy shared: made once, used by all\n" + _stream_fn(
            "SHARED", "every thread uses the SHARED stream"
        )
    if legacy:
        return _stream_fn("DEVICE", "the default stream: before mlx 0.31.2, one for all threads")
    return _stream_fn("DEVICE", "each thread's own default stream (mlx >= 0.31.2)")


def model_line(p: ReproPlan) -> str:
    """generate's model shape at this size (heads of HEAD_DIM where they divide it)."""
    if p.workload != "generate":
        return ""
    heads = p.size // HEAD_DIM if p.size % HEAD_DIM == 0 else 1
    return (
        f"VOCAB, LAYERS, CONTEXT, HEADS = {VOCAB}, {LAYERS}, {CONTEXT}, {heads}"
        "  # gpumon's generate model\n"
    )


def workload_block(p: ReproPlan) -> str:
    table = MLX_WORK if p.backend == "mlx" else TORCH_WORK
    body = Template(table[p.workload]).substitute(
        mlp_batch=MLP_BATCH, mlp_layers=MLP_LAYERS, mlp_mult=MLP_MULT
    )
    helpers = HELPERS[p.backend] if p.workload != "matmul" else ""
    if p.backend == "torch" and p.workload == "mlp":
        helpers = ""  # torch's own gelu
    return (helpers + "\n" if helpers else "") + body


def worker_block(p: ReproPlan) -> str:
    what = {"matmul": "inputs", "mlp": "weights", "generate": "model"}[p.workload]
    wait = "then wait until the device finished them"
    sync = ""
    if p.backend == "torch" and p.workload != "generate":
        if p.device.startswith("cuda"):
            sync = "                torch.cuda.current_stream(DEVICE).synchronize()\n"
        elif p.device == "mps":
            sync = "                torch.mps.synchronize()\n"
        else:
            wait = "each done when it returns (CPU)"
    run = f"                model.run()  # SYNC_EVERY ops, {wait}\n"
    if p.workload == "generate":  # each token is waited for already
        run = "                model.run()\n"
        if p.sync_every > 1:
            run = "                for _ in range(SYNC_EVERY):  # tokens per lock\n    " + run
    if p.backend == "mlx":
        return WORKER["mlx"].substitute(what=what, cls=CLASS[p.workload], run=run)
    set_stream = ""
    if p.device.startswith("cuda"):
        set_stream = "        torch.cuda.set_stream(stream())  # this thread's current stream\n"
    return WORKER["torch"].substitute(
        what=what, cls=CLASS[p.workload], set_stream=set_stream, run=run, sync=sync
    )


# join() returns before a thread's C++ thread-locals are destroyed; MLX >= 0.31.2 keeps each
# thread's random key in one, whose destructor takes the GIL, so exiting at once can abort in
# interpreter shutdown. That is not the bug a script reproduces; gpumon's worker waits too
# (worker/__main__.py, let_threads_end). 0.2 s was enough in 20 of 20 exits here; 0.5 s is margin.
SETTLE = "time.sleep(0.5)  # let the threads' C++ thread-locals go before exit (mlx >= 0.31.2)\n"


def main_block(p: ReproPlan) -> str:
    return MAIN.substitute(
        prefix=p.backend, join=JOIN_S, settle=SETTLE if p.backend == "mlx" else ""
    )
