#!/usr/bin/env bash
# Reader training on the GPU machine (the `device` tool), in two calls of < 10 minutes each:
#   python -m rag.training.reader --stage=prepare        # here (CPU): .carry/base and .carry/reader/reader.json.gz
#   bash scripts/train_reader_device.sh mine             # there, carrying .carry/base and .carry/reader
#   bash scripts/train_reader_device.sh train NAME ARGS  # there, one variant per NAME, several in parallel
#   (mine-train NAME ARGS does both in one call: a device machine is released 30 s after a call)
# Results come back per variant in $OUT: NAME.tar (predictions, train_info, compact model files) and the int8
# weights in parts NAME.weights.00, .01 (cat them into NAME/compact/model.int8.safetensors); untar into
# .carry/reader here and run --stage=evaluate --run_name=NAME. The tree sent there must stay under 64 MiB: move
# models/*/model.int8.safetensors aside for the calls (the int8 base copy, BASE_INT8, is 23 MB; a variant that
# continues the shipped reader, --base_copy=models/reader, keeps that one file).
set -euo pipefail
export TOKENIZERS_PARALLELISM=true PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
case "$1" in
  mine)
    python3 -m rag.training.reader --stage=mine ;;
  mine-train | train)
    [ "$1" = mine-train ] && python3 -m rag.training.reader --stage=mine 2>&1 | tail -2
    shift
    pids=()
    for spec in "$@"; do  # NAME:--key=value,--key=value
      name="${spec%%:*}"; args="${spec#*:}"; [ "$args" = "$spec" ] && args=""
      # shellcheck disable=SC2086
      python3 -m rag.training.reader --stage=train --run_name="$name" ${args//,/ } > "$OUT/$name.log" 2>&1 &
      pids+=($!)
    done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    for spec in "$@"; do
      name="${spec%%:*}"
      # files come back at most 16 MiB each: the int8 weights (~23 MB) in two parts, the rest in one tar
      tar -C .carry/reader -cf "$OUT/$name.tar" --exclude=model.int8.safetensors "$name/compact" \
        "$name/predictions.json.gz" "$name/train_info.json" 2>/dev/null || echo "no results for $name"
      split -b 12M -d ".carry/reader/$name/compact/model.int8.safetensors" "$OUT/$name.weights." || true
      tail -4 "$OUT/$name.log"
    done
    exit $rc ;;
  *) echo "usage: $0 mine | mine-train | train NAME[:--key=value,...] ..." >&2; exit 2 ;;
esac
