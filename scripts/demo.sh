#!/usr/bin/env bash
# The main job on the embedded default (README's first command): installs what is needed, builds runinfer,
# generates sample images of coloured shapes, builds an engine from the detector the repo ships
# (models/shapes/shapes_ssd.onnx, trained by models/shapes/train.py) and runs the batch pipeline over the
# images: predictions in the reference job's row format, a dead-letter file, metrics and drawn images.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-out/demo}
JOBS=${JOBS:-$(nproc)}

./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS" --target runinfer_cli >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT"
python3 models/shapes/make_shapes.py --out "$OUT/images" --count 24 --seed 2026 >/dev/null

meta_args=()
while IFS= read -r line; do
  [ -n "$line" ] && meta_args+=(--meta "$line")
done < models/shapes/engine_meta.txt
./build/runinfer build --onnx models/shapes/shapes_ssd.onnx --save "$OUT/shapes.rie" --max-batch 8 \
  "${meta_args[@]}" --meta "labels=$(cat models/shapes/labels.txt)"
./build/runinfer inspect "$OUT/shapes.rie" >"$OUT/engine.txt"
head -n 4 "$OUT/engine.txt"

set +e
./build/runinfer run --engine "$OUT/shapes.rie" --input "$OUT/images/list.txt" \
  --output "$OUT/predictions.csv" --metrics "$OUT/metrics.json" --draw "$OUT/draw" --max-batch 8 --ordered
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
  echo "demo: runinfer run failed (exit $rc)" >&2
  exit $rc
fi
echo
echo "first rows of $OUT/predictions.csv:"
head -n 3 "$OUT/predictions.csv" | cut -c1-300
echo
echo "outputs: $OUT/predictions.csv, $OUT/predictions.csv.dead-letter.jsonl, $OUT/metrics.json, $OUT/draw/"
