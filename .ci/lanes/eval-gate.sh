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
if [[ "${EVAL_GATE_STRICT:-0}" == 1 ]]; then
    python -m assistant eval gate "$run" --strict
else
    python -m assistant eval gate "$run"
fi
