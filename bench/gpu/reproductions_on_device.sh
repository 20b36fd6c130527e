#!/usr/bin/env bash
# One call on a lent GPU machine: the seed papers' MNIST plans at full size (issue 20), each under its share of
# the time, then each run's summary tables (docs/results/<plan>/ files: run.json, CSVs) and report as
# results/<plan>/ in $OUT/results.tgz, to unpack into docs/ here. Prepare first, here:
#   bash bench/gpu/prepare_wheels.sh /work/shared/data
# then:
#   run(command="PLANS='liu2018-hashnet' bash bench/gpu/reproductions_on_device.sh",
#       carry=["bench/gpu/wheels", "bench/gpu/data"], timeout_s=590)
# PLANS (default: the three MNIST plans; not the poster's Fashion-MNIST one) and BUDGET_S (default 560) bound the work; a plan cut short leaves its
# report of what finished (the cache does not survive the machine: give a plan the whole call where it can).
BUDGET_S="${BUDGET_S:-560}"
. "$(dirname "$0")/setup_on_device.sh"

# poster-pruning reads Fashion-MNIST (30 MB), which does not fit beside the wheels in the 64 MiB the tool carries
mkdir -p /tmp/runs "$OUT/results"
plans="${PLANS:-liu2018-hashnet wijayanto2018-compressed song2020-quantized}"
set -- $plans
n=$#
for plan in $plans; do
  share=$(( ($(left) - 20) / n )); n=$((n - 1))
  step "$plan: full size, --device cuda, ${share} s"
  # the three training seeds side by side on the one GPU (small networks leave it idle between launches)
  timeout "$share" python3 -m edgebench.cli run "plans/$plan.toml" --device cuda --workers "${WORKERS:-6}" \
    --gpu-workers "${GPU_WORKERS:-3}" --out /tmp/runs \
    > "$OUT/$plan.log" 2>&1
  step "$plan exit $? ($(tail -1 "$OUT/$plan.log"))"
  run_id="$(sed -n 's/^run \([^ ]*\) .*/\1/p' "$OUT/$plan.log" | tail -1)"
  [ -z "$run_id" ] && run_id="$(ls -t /tmp/runs | grep "^$plan-" | head -1)"
  if [ -n "$run_id" ]; then
    python3 -m edgebench.cli report "$run_id" --out /tmp/runs --results "$OUT/results/$plan" >> "$OUT/$plan.log" 2>&1
    cp "/tmp/runs/$run_id/report.md" "$OUT/results/$plan/report.md" 2>/dev/null
  fi
done
ls -laR "$OUT/results" >> "$OUT/steps.log" 2>&1
# one archive: the device tool brings back a few files only
tar czf "$OUT/results.tgz" -C "$OUT" results && rm -rf "$OUT/results"
