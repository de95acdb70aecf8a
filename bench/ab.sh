#!/usr/bin/env bash
# Before/after a change to the hot path, interleaved: the bench rows (ad hoc closed, scenario
# closed, open at 1.25x, the open sweep) run for BEFORE and AFTER in alternating order, round
# after round, so that a busy machine's drifts hit both alike. Each run's report and figures go
# to OUT/{before,after}-ROUND.{md,json}.
#
#   git worktree add /tmp/before <rev> && python3 -m venv /tmp/before/.venv && /tmp/before/.venv/bin/pip install /tmp/before
#   bench/ab.sh /tmp/before/.venv/bin/loadgen .venv/bin/loadgen 3 /tmp/ab
set -euo pipefail
before=$1 after=$2 rounds=${3:-3} out=${4:-bench/.work/ab}
cd "$(dirname "$0")/.."
mkdir -p "$out"
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then order="before after"; else order="after before"; fi
  for v in $order; do
    if [ "$v" = before ]; then cmd=$before; else cmd=$after; fi
    rm -f bench/.work/bench.db*  # the two versions may not share a schema
    python3 bench/run.py --only loadgen,sweep --rates 10000,50000 --duration 10 --no-install \
      --loadgen "$cmd" > "$out/$v-$i.md" 2> "$out/$v-$i.err"
    cp bench/.work/latest.json "$out/$v-$i.json"
  done
done
echo "reports in $out"
