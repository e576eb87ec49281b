#!/bin/bash
# `make bench-gpu`'s generation part on a bare CUDA machine without network (the device tool), from the repo root.
# Carried (git-ignored): .carry/gpu_wheels (haystack-ai + deps, gguf, llama-cpp-haystack wheels, and a trimmed
# llama-cpp-python sdist) and .carry/smollm2-hf (SmolLM2-135M config + tokenizer, written from the packaged GGUF).
#   STAGE=transformers  bench the transformers backend (bf16, fp16)
#   STAGE=llama         build llama-cpp-python with CUDA (sm_90) and bench llama.cpp with all layers offloaded
set -u
W=.carry/gpu_wheels
OUT=${OUT:-/tmp/out}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 HAYSTACK_TELEMETRY_ENABLED=False TOKENIZERS_PARALLELISM=false
nvidia-smi -L
python3 -m pip install -q --no-index --find-links $W haystack-ai==3.4.0 diskcache gguf 2>&1 | tail -3
if [ "${STAGE:-transformers}" = transformers ]; then
  python3 -m evals.gpu_generate_bench --out $OUT/gen_transformers.json 2>&1 \
    | grep -v "Loading weights\|Writing model" | tail -60
else
  mkdir -p /tmp/lcp && tar xJf $W/llama_cpp_python-0.3.36-trim.tar.xz -C /tmp/lcp
  t0=$(date +%s)
  CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_NCCL=OFF -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout ${BUILD_TIMEOUT:-450} \
    python3 -m pip install -v --no-build-isolation --no-deps /tmp/lcp/llama_cpp_python-0.3.36 > $OUT/build.log 2>&1
  echo "build rc=$? in $(( $(date +%s) - t0 )) s"; tail -4 $OUT/build.log
  python3 -m pip install -q --no-deps $W/llama_cpp_haystack-3.0.2-py3-none-any.whl
  python3 -m evals.gpu_generate_bench --variants "" --gguf convert \
    --converter /tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py \
    --out $OUT/gen_llama_cpp.json 2>&1 | grep -v "Loading weights\|Writing model" | tail -40
fi
