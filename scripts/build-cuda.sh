#!/usr/bin/env bash
# Builds gms with candle's CUDA backend (`--features cuda`) on a machine with no GPU and no
# driver, for the lent H100/H200 (driver 580, CUDA 13.0; see docs/gpu.md).
#
#   scripts/build-cuda.sh [extra cargo build args...]
#
# 1. Once: pip-installs the CUDA **13.0** build toolchain from PyPI wheels (~1.2 GB) into a venv
#    under $CUDA_TOOLCHAIN_DIR (default ~/.cache/gms-cuda). Pinned because nvcc >= 13.1 emits PTX
#    the device's 580 driver cannot load, and cudarc's build script rejects versions it does not
#    know. Only registries are used (PyPI, crates.io).
# 2. Once: unversioned .so links for the linker, and a stub libcuda.so (soname libcuda.so.1)
#    exporting every driver symbol cudarc references, so the binary links with no driver. The
#    stub is for linking only; on the device the real driver's libcuda.so.1 is loaded.
# 3. Builds into target/cuda (CARGO_TARGET_DIR) so the CPU build in target/ is untouched, with
#    CUDA_COMPUTE_CAP=90 (sm_90a = H100/H200; there is no nvidia-smi here to ask).
# 4. Writes target/cuda/gms.gz: the binary is ~57 MB, ~15 MB gzipped, and a device call carries
#    at most 64 MiB in all.
#
# A clean build takes ~11 min on 2 cores. Run the result on the device with scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

P=${CUDA_TOOLCHAIN_DIR:-$HOME/.cache/gms-cuda}
CUDARC_VERSION=0.19.10 # must match Cargo.lock: the stub's symbol list comes from its source

# --- 1. toolchain -------------------------------------------------------------------------
if [[ ! -x $P/venv/bin/python ]]; then
    python3 -m venv "$P/venv"
fi
if ! "$P/venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("nvidia") else 1)' 2>/dev/null \
    || [[ ! -e $P/.toolchain-13.0 ]]; then
    echo "build-cuda: installing the CUDA 13.0 toolchain into $P/venv (~1.2 GB, once)" >&2
    "$P/venv/bin/pip" install --quiet \
        "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88" \
        "nvidia-cuda-cccl==13.0.85" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-nvrtc==13.0.88" \
        "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35"
    touch "$P/.toolchain-13.0"
fi
CU=$(ls -d "$P"/venv/lib/python3*/site-packages/nvidia/cu13 | head -n1)
[[ -x $CU/bin/nvcc ]] || { echo "build-cuda: no nvcc under $CU; delete $P and rerun" >&2; exit 1; }

# --- 2. link-time libraries ----------------------------------------------------------------
LINK=$P/cuda_link
if [[ ! -e $LINK/lib/libcuda.so ]]; then
    mkdir -p "$LINK/lib" "$LINK/stubsrc"
    # The wheels ship only versioned sonames; -l<name> needs lib<name>.so.
    for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
        ln -sf "$CU/lib/lib$l" "$LINK/lib/lib${l%%.so*}.so"
    done
    cargo fetch --quiet
    SRC=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-$CUDARC_VERSION 2>/dev/null | head -n1 || true)
    if [[ -z $SRC ]]; then
        # cargo fetch downloads .crate archives; unpack cudarc's ourselves to read its symbols.
        CRATE=$(ls "$HOME"/.cargo/registry/cache/*/cudarc-$CUDARC_VERSION.crate | head -n1)
        tar -xzf "$CRATE" -C "$LINK/stubsrc"
        SRC=$LINK/stubsrc/cudarc-$CUDARC_VERSION
    fi
    # Every driver symbol cudarc can load, each returning CUDA_ERROR_NO_DEVICE (100).
    grep -o 'load::<_F>("[A-Za-z0-9_]*")' "$SRC/src/driver/sys/mod.rs" \
        | sed 's/.*("\(.*\)")/\1/' | sort -u >"$LINK/stubsrc/libcuda.syms"
    [[ -s $LINK/stubsrc/libcuda.syms ]] || { echo "build-cuda: no driver symbols found in $SRC" >&2; exit 1; }
    awk '{print "int " $1 "(void) { return 100; }"}' "$LINK/stubsrc/libcuda.syms" >"$LINK/stubsrc/libcuda_stub.c"
    gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$LINK/lib/libcuda.so" "$LINK/stubsrc/libcuda_stub.c"
    # Only for running the CUDA binary's CPU paths on this GPU-less machine (never on the device).
    mkdir -p "$LINK/stub_runtime_only"
    ln -sf ../lib/libcuda.so "$LINK/stub_runtime_only/libcuda.so.1"
fi

# --- 3. build ------------------------------------------------------------------------------
export PATH=$CU/bin:$PATH # cudarc and candle-kernels ask nvcc for the CUDA version
export CUDA_HOME=$CU      # cudarc's link search path: $CU/lib
export CUDA_ROOT=$LINK    # unversioned links + the libcuda stub in lib/
export CUDA_PATH=$CU
export CUDA_COMPUTE_CAP=90
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
start=$(date +%s)
cargo build --release --features cuda "$@"
BIN=$CARGO_TARGET_DIR/release/gms

# --- 4. package ----------------------------------------------------------------------------
gzip -c "$BIN" >"$CARGO_TARGET_DIR/gms.gz.tmp" && mv "$CARGO_TARGET_DIR/gms.gz.tmp" "$CARGO_TARGET_DIR/gms.gz"
echo "build-cuda: $BIN ($(du -h "$BIN" | cut -f1)), $CARGO_TARGET_DIR/gms.gz ($(du -h "$CARGO_TARGET_DIR/gms.gz" | cut -f1)) in $(($(date +%s) - start)) s" >&2
echo "build-cuda: on this machine, LD_LIBRARY_PATH=$LINK/stub_runtime_only:$CU/lib runs its CPU paths" >&2
