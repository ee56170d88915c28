#!/usr/bin/env bash
# The eval gate: the offline advisor over the dev set, checked against PRODUCT.md section 7's
# bars (evals/thresholds.yaml). Exits 1 naming each missed bar (a known miss counts only when
# the run falls past its floor; EVAL_GATE_STRICT=1 counts it always).
#
#   bash .ci/lanes/eval-gate.sh            # run record, Markdown and HTML reports in a temp dir
#   EVAL_OUT=out/ bash .ci/lanes/eval-gate.sh
#   EVAL_GATE_STRICT=1 bash .ci/lanes/eval-gate.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out="${EVAL_OUT:-$(mktemp -d -t eval-gate.XXXXXX)}"
mkdir -p "$out"
# A fresh state directory: no user-trained coder, no caches, nothing from earlier runs.
export ASSISTANT_HOME="$out/home"
run="$out/dev-offline.json"

echo "eval-gate: offline eval over evals/datasets/dev -> $run"
python -m assistant eval run --dataset evals/datasets/dev --backend offline --out "$run" --fresh
python -m assistant eval report "$run" --format markdown --out "$out/dev-offline.md"
python -m assistant eval report "$run" --format html --out "$out/dev-offline.html"
echo "eval-gate: reports in $out (dev-offline.md, dev-offline.html)"
strict=()
[[ "${EVAL_GATE_STRICT:-0}" == 1 ]] && strict=(--strict)
status=0
python -m assistant eval gate "$run" "${strict[@]}" || status=1

# Real plans: the paraphrased real plans' dev and test splits against PRODUCT.md section 7's
# real-plan bars (evals/thresholds-real.yaml), so a change that loses ground on real plans fails.
for split in dev test; do
    real="$out/real-$split-offline.json"
    echo "eval-gate: offline eval over evals/datasets/real/$split -> $real"
    python -m assistant eval run --dataset "evals/datasets/real/$split" --backend offline --out "$real" --fresh --quiet
    python -m assistant eval report "$real" --format markdown --thresholds evals/thresholds-real.yaml \
        --out "$out/real-$split-offline.md"
    python -m assistant eval gate "$real" --thresholds evals/thresholds-real.yaml "${strict[@]}" || status=1
done
exit $status
