"""Which layer each frame belongs to: GPU driver, framework, Python, system, or the app.

A crash report is only useful to a framework maintainer if the GPU-driver and framework frames
stand out from hundreds of libsystem / libc frames, so every parser's output goes through
`classify_report`. Rules look at the image (basename and, where the report gives it, the full
path), then fall back to the symbol and the source file, because gdb frames with debug info
often name no image at all. "Driver" means every user-space piece of a GPU stack that is not
the application's: Apple's Metal/AGX/IOGPU and its OpenGL-on-Metal renderer, NVIDIA's and
AMD's runtimes, Mesa's Vulkan and Gallium drivers, the Vulkan/GL loaders. The table is
documented in docs/crash-capture.md.
"""

from __future__ import annotations

import re

from gpumon.crash.model import (
    APP,
    DRIVER,
    FRAMEWORK,
    PYTHON,
    SYSTEM,
    UNKNOWN,
    CrashReport,
    Frame,
)

# --- image rules (matched against the basename) -------------------------------------------
_DRIVER_IMAGE = re.compile(
    r"""^(?:
        AGX.* | com\.apple\.AGX.*           # Apple GPU driver: AGXMetalG13X, AGXMetalG16G_B0 ...
      | IOGPU.* | com\.apple\.IOGPU.*       # IOGPU user-space driver interface
      | Metal | com\.apple\.Metal | MetalTools | libMTLCapture.* | MTLCompiler.*
      | MetalPerformanceShaders.* | MPS[A-Z].*          # MPSCore, MPSNeuralNetwork ...
      | AppleMetalOpenGLRenderer | GLEngine | libGPUSupportMercury\.dylib | GPUSupport.*
      | AppleIntel\w*(?:MTLDriver|GLDriver)\w* | AMDRadeon\w*(?:MTLDriver|GLDriver)\w*
      | AppleParavirtGPU\w* | GeForce\w*(?:GLDriver|MTLDriver)\w*
      | libcuda\.so.* | libcuda\.dylib | nvcuda\.dll
      | libnvidia-.*                        # libnvidia-ptxjitcompiler, -glcore, -eglcore ...
      | libcudart.* | libcublas.* | libcudnn.* | libnvrtc.* | libnvJitLink.* | libnccl.*
      | libGLX_nvidia.* | libEGL_nvidia.*
      | libvulkan_\w+\.(?:so|dylib).* | libvulkan\.so.* | libvulkan\.\d.*\.dylib | vulkan-1\.dll
      | libgallium.* | \w+_dri\.so.* | libdril_dri\.so.* | zink_dri\.so.*
      | libGLX_mesa.* | libEGL_mesa.* | libgbm\.so.* | libglapi\.so.*
      | libdrm(?:_\w+)?\.so.* | amdvlk\w*\.so.* | libamdhip64.* | libhsa-runtime64.*
      | libamd_comgr.* | libze_intel_gpu.* | libze_loader.* | libigdrcl.* | libigc\.so.*
      | libOpenCL\.so.* | libMoltenVK.*
    )$""",
    re.X,
)
_FRAMEWORK_IMAGE = re.compile(r"^(?:libmlx.*|libtorch.*|libc10.*|libshm\.so.*)$")
# Extension modules whose basename alone is ambiguous: decided with the path.
_TORCH_C = re.compile(r"^_C(?:\.cpython-[^/]*|\.abi3)?\.(?:so|dylib|pyd)$|^_C$")
_MLX_CORE = re.compile(r"^core(?:\.cpython-[^/]*|\.abi3)?\.(?:so|dylib|pyd)$")
_PYTHON_IMAGE = re.compile(r"^(?:libpython.*|python[0-9.]*t?|Python|pythonw?[0-9.]*\.exe)$")
_SYSTEM_IMAGE = re.compile(
    r"""^(?:
        libsystem_.* | libc\.so.* | libc-[0-9.]+\.so | libc\.dylib
      | libpthread.* | libdyld.* | dyld | ld-linux.* | ld64\.so.* | linux-vdso\.so.*
      | libstdc\+\+.* | libc\+\+.* | libobjc.* | libgcc_s.* | libm\.so.* | libdl\.so.*
      | librt\.so.* | libdispatch\.dylib | libxpc\.dylib | libffi\.so.* | libgomp\.so.*
      | kernel | mach_kernel | kernel\..* | \[kernel\.kallsyms\]
      | CoreFoundation | Foundation
    )$""",
    re.X,
)
# Paths of OS-supplied C libraries: macOS's /usr/lib (libSystem and friends) and a Linux
# distribution's library directories. /System/Library is deliberately not here: Apple's
# frameworks (Accelerate, CoreML, AppKit) are where a crash can really be, so they stay "app".
_SYSTEM_PATH = re.compile(r"^(?:/usr/lib/|/lib/|/lib64/|/usr/lib64/)")
_PYTHON_PATH = re.compile(r"/Python\.framework/|/lib-dynload/|/libpython")

# --- symbol and source-file fallbacks (frames without an image) ---------------------------
_DRIVER_SYMBOL = re.compile(
    r"^(?:AGX::|-\[AGX|\+\[AGX|IOGPU|-\[IOGPU|-\[_?MTL|MTL[A-Z]|cu[A-Z]\w*$|radv_|anv_|zink_"
    r"|nvk_|gldContext|GLD[A-Z])"
)
_FRAMEWORK_SYMBOL = re.compile(r"^(?:(?:\w+ )*(?:mlx|at|c10|c10d|torch|caffe2)::|THP)")
_PYTHON_SYMBOL = re.compile(r"^(?:_?Py[A-Z_]\w*|_Py\w+|pymain_\w+|pythread_\w+)$")
_SYSTEM_SYMBOL = re.compile(
    r"^(?:__GI_\w+|__libc_\w+|__pthread_\w+|___?pthread_\w+|pthread_\w+|start_thread|clone3?"
    r"|__clone3?|_start|__futex\w*|futex_\w+|__lll_\w+|raise|abort|__restore_rt|_sigtramp"
    r"|__clock_nanosleep|__nanosleep|syscall|epoll_wait|__poll|_?_?select|__strlen\w*)$"
)
_SYSTEM_FILE = re.compile(
    r"(?:^|/)(?:sysdeps|nptl|csu|stdlib|string|malloc|libio|posix|signal|misc|elf|dlfcn)/"
)
_PYTHON_FILE = re.compile(r"(?:^|/)(?:Python|Objects|Modules|Include|Parser)/[^/]")


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def classify_image(image: str | None, path: str | None = None) -> str | None:
    """Kind for a binary image, or None when the image says nothing (so symbols decide)."""
    name = image or (_basename(path) if path else None)
    if not name or name == "???":
        return None
    if _DRIVER_IMAGE.match(name):
        return DRIVER
    if _FRAMEWORK_IMAGE.match(name):
        return FRAMEWORK
    lowered_path = (path or "").replace("\\", "/")
    if _TORCH_C.match(name) and (not path or "/torch/" in lowered_path):
        return FRAMEWORK
    if _MLX_CORE.match(name) and "/mlx/" in lowered_path:
        return FRAMEWORK
    if _PYTHON_IMAGE.match(name) or (path and _PYTHON_PATH.search(lowered_path)):
        return PYTHON
    if _SYSTEM_IMAGE.match(name) or (path and _SYSTEM_PATH.match(lowered_path)):
        return SYSTEM
    return APP


def classify_frame(frame: Frame, path: str | None = None) -> str:
    """Kind of one frame. `path` is the image's full path where the report has one."""
    if frame.kind == PYTHON and frame.file is not None and frame.image is None:
        return PYTHON  # a Python-level frame from faulthandler: already decided by its parser
    kind = classify_image(frame.image, path)
    if kind is not None:
        return kind
    sym = frame.symbol or ""
    if sym:
        if _DRIVER_SYMBOL.match(sym):
            return DRIVER
        if _FRAMEWORK_SYMBOL.match(sym):
            return FRAMEWORK
    if frame.file:
        if _SYSTEM_FILE.search(frame.file):
            return SYSTEM
        if _PYTHON_FILE.search(frame.file):
            return PYTHON
    if sym:
        if _PYTHON_SYMBOL.match(sym):
            return PYTHON
        if _SYSTEM_SYMBOL.match(sym):
            return SYSTEM
        return APP
    return UNKNOWN


def classify_report(report: CrashReport) -> CrashReport:
    """Set `kind` on every frame of `report` (in place) and return it."""
    paths: dict[str, str] = {}
    for img in report.images:
        if img.name and img.path and img.name not in paths:
            paths[img.name] = img.path
    for thread in report.threads:
        for frame in thread.frames:
            frame.kind = classify_frame(frame, paths.get(frame.image or ""))
    return report
