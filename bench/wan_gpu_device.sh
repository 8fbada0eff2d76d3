#!/usr/bin/env bash
# Every Wan measurement of issue 35 on a lent GPU, prepared to run in two calls of the `device`
# tool (each under its 10-minute limit, 15 minutes of device time in all), or here on the CPU.
#
#   bash bench/wan_gpu_device.sh fetch        # here, once: what the GPU image lacks, into .whl/
#   device run: {"command": "bash bench/wan_gpu_device.sh 5b",   "carry": [".whl"], "timeout_s": 560}
#   device run: {"command": "bash bench/wan_gpu_device.sh a14b", "carry": [".whl"], "timeout_s": 560}
#   bash bench/wan_gpu_device.sh 5b --reduced  # here, on the CPU: the same script, small
#
# The GPU image has torch, transformers, peft, scikit-image, but not diffusers, torchao, ftfy or
# an ffmpeg: `fetch` downloads their wheels (Python 3.12, x86-64) and the static ffmpeg of
# imageio-ffmpeg, compressed (its wheel alone is over the 64 MiB a call carries); `5b` and `a14b`
# install them into /tmp/site and write their JSON (and log) to $OUT.
#
# - 5b: Wan2.2-TI2V-5B at 1280x704, 121 frames: a warm-up and 2 whole videos (prompt to MP4) of
#   each fast preset (fast, fast-compiled, fast-fp8, fast-fp8-compute, fast-light, fastwan) and
#   the decoders (full, tiled, light) on the same latents; full's whole video (131 s x 3) does
#   not fit the device time beside them: its figure stays the per-step one of
#   docs/figures/wan_presets_h200.json.
# - a14b: Wan2.2-I2V-A14B at 1280x720, 81 frames: lightning (4 steps) whole videos, and full's
#   steps (`--presets full`, 3 steps timed; a whole full video is about 1,000 s).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/reelroute-wan-gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
part=${1:-5b}
shift || true

if [ "$part" = fetch ]; then
    rm -rf .whl && mkdir -p .whl/site
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64
               --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d .whl \
        diffusers==0.42.1 torchao==0.18.0 ftfy==6.3.1 wcwidth==0.9.5 imageio-ffmpeg==0.8.1
    scratch=$(mktemp -d)
    unzip -q .whl/imageio_ffmpeg-*.whl -d "$scratch"
    rm .whl/imageio_ffmpeg-*.whl
    xz -T0 -9 -c "$scratch"/imageio_ffmpeg/binaries/ffmpeg-linux-* > .whl/ffmpeg.xz
    rm -rf "$scratch"/imageio_ffmpeg/binaries/ffmpeg-linux-*
    cp -r "$scratch"/imageio_ffmpeg .whl/site/
    rm -rf "$scratch"
    du -sh .whl
    exit 0
fi

if [ -d .whl ]; then  # on the GPU machine: what its image lacks
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    cp -r .whl/site/. /tmp/site/
    xz -dc .whl/ffmpeg.xz > /tmp/ffmpeg && chmod +x /tmp/ffmpeg
    export IMAGEIO_FFMPEG_EXE=/tmp/ffmpeg
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true
work=/tmp/reelroute-wan-work

case "$part" in
5b)
    timeout 500 $PY -m bench.wan_gpu --whole --model 5b "$@" \
        --presets fast,fast-compiled,fast-fp8,fast-fp8-compute,fast-light,fastwan \
        --out "$work" --json "$OUT/wan_whole_5b.json" 2>&1 | tee "$OUT/wan_whole_5b.log"
    ;;
a14b)
    timeout 330 $PY -m bench.wan_gpu --whole --model a14b "$@" --presets lightning \
        --out "$work" --json "$OUT/wan_whole_a14b.json" 2>&1 | tee "$OUT/wan_whole_a14b.log"
    timeout 200 $PY -m bench.wan_gpu --model a14b "$@" --presets full \
        --out "$work" --json "$OUT/wan_steps_a14b.json" 2>&1 | tee "$OUT/wan_steps_a14b.log"
    ;;
*)
    echo "usage: $0 fetch | 5b | a14b [--reduced]" >&2
    exit 2
    ;;
esac
