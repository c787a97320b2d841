#!/usr/bin/env bash
# Train Bi-Real-18-CIFAR with the project's own trainer on one lent GPU (H100/H200), inside a
# fixed wall-clock budget, and bring back an exact checkpoint for the float-vs-integer check.
#
# How it was run (from the repository root, on the device machine, through the `run` tool):
#
#   bash benchmarks/train_on_device.sh          # carry: devcarry (wheels + data), see below
#
# What it expects:
#   devcarry/whl/*.whl          brevitas 0.13.4, dependencies 2.0.1, unfoldNd 0.2.3 (pure-python
#                               wheels; everything else the trainer imports -- torch, numpy,
#                               click, tqdm, pyyaml, pillow, sympy -- is on the device image)
#   devcarry/cifar10_jpeg.npz   CIFAR-10 (JPEG copy), the npz format the trainer reads
#   $OUT                        folder whose files come back (at most 8 files, 16 MiB each)
#
# Steps:
#   1. install the wheels into /tmp/site (no network there) and use the repo via PYTHONPATH;
#   2. probe: time training steps of bireal18-cifar on CUDA in both modes (stage 1 "real",
#      stage 2 "binary") with bf16 autocast, as the trainer runs them; if bf16 fails, probe
#      fp32 and train with --no-bf16. This is also the first execution of the CUDA path;
#   3. size the epochs from the probe so both stages fit in TRAIN_BUDGET_S seconds
#      (about 30 % stage 1, 70 % stage 2), then run `bireal-fpga train` once, both stages,
#      under a `timeout` guard (if it is cut, the last per-epoch checkpoint last.pt is used);
#   4. strip the optimizer/scheduler state from the final checkpoint (weights, BN statistics,
#      spec, config and history stay bit-exact), split it into 15 MiB parts for the trip back
#      (reassemble with `cat model.pt.part-* > model.pt`, check summary.json's sha256).
set -u
OUT=${OUT:-/tmp/out}
PY=${PY:-/opt/torch/.venv/bin/python3}; [ -x "$PY" ] || PY=python3
CARRY=${CARRY:-devcarry}
DATA=${DATA:-$CARRY/cifar10_jpeg.npz}
TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-390}  # wall seconds for both stages (probe and decode excluded)
RUN=${RUN:-/tmp/c18gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/train.log") 2>&1
export PYTHONUNBUFFERED=1
T0=$(date +%s)
echo "== $(date -u +%FT%TZ) start"

# 1. packages -------------------------------------------------------------------------------
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$CARRY"/whl/*.whl || { echo "wheel install failed"; exit 3; }
export PYTHONPATH=$PWD:/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, brevitas, bireal_fpga.train.loop, bireal_fpga.cli.main;
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0),
      'brevitas', brevitas.__version__)" || { echo "import failed"; exit 3; }

# 2. probe ------------------------------------------------------------------------------------
$PY - <<'EOF' > /tmp/probe.json || { echo "probe failed in bf16 and fp32"; exit 4; }
import json, sys, time, traceback
import torch, torch.nn.functional as F
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import load_spec
from bireal_fpga.train.batches import augment
from bireal_fpga.train.loop import param_groups
from bireal_fpga.train.config import TrainConfig

def probe(bf16, steps=25, warm=5, bs=256):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = BiRealNet(load_spec("bireal18-cifar", ())).to(dev)
    opt = torch.optim.Adam(param_groups(model, TrainConfig()), lr=1e-3)
    x8 = torch.randint(0, 256, (bs, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (bs,))
    g = torch.Generator().manual_seed(0)
    ac = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast("cuda", enabled=False)
    out = {}
    for mode in ("real", "binary"):
        model.set_mode(mode); model.train()
        for i in range(steps):
            if i == warm:
                torch.cuda.synchronize(); t = time.perf_counter()
            x = augment(x8.to(dev), 4, True, g)
            with ac:
                logits = model(x.float() / 255.0)
                loss = F.cross_entropy(logits.float(), y.to(dev), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            float(loss)  # the trainer syncs every step too
        torch.cuda.synchronize()
        out[mode] = (time.perf_counter() - t) / (steps - warm)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss in {mode} mode")
    out["max_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out

for bf16 in (True, False):
    try:
        r = probe(bf16); r["bf16"] = bf16
        print(json.dumps(r)); sys.exit(0)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        print(f"probe with bf16={bf16} failed", file=sys.stderr)
sys.exit(1)
EOF
cat /tmp/probe.json
T1=$(date +%s)

# 3. plan + train -----------------------------------------------------------------------------
read -r ER EB BF16FLAG < <($PY - "$TRAIN_BUDGET_S" <<'EOF'
import json, math, sys
p = json.load(open("/tmp/probe.json")); budget = float(sys.argv[1])
steps = 50000 // 256                     # drop_last batches per epoch
over = 2.0                               # per-epoch extras: BN recalibration, GPU eval, last.pt
er_s = 1.15 * (steps * p["real"] + over)  # 15 % safety
eb_s = 1.15 * (steps * p["binary"] + over)
e = max(2, int(budget / (0.3 * er_s + 0.7 * eb_s)))
er = max(1, round(0.3 * e)); eb = max(1, e - er)
while er * er_s + eb * eb_s > budget and eb > 1:
    eb -= 1
print(er, eb, "" if p["bf16"] else "--no-bf16")
EOF
)
[ -n "${EB:-}" ] || { echo "planning failed"; exit 4; }
echo "== plan: epochs-real $ER epochs-binary $EB ${BF16FLAG:-bf16} (budget ${TRAIN_BUDGET_S}s)"
timeout $((TRAIN_BUDGET_S + 60)) $PY -m bireal_fpga train bireal18-cifar --data "$DATA" \
    --out "$RUN" --epochs-real "$ER" --epochs-binary "$EB" --batch-size 256 --lr 1e-3 \
    --device cuda --workers 0 --quiet $BF16FLAG
RC=$?
echo "== train exit $RC after $(( $(date +%s) - T1 )) s (124: stopped by the timeout guard)"
T2=$(date +%s)

# 4. checkpoint back --------------------------------------------------------------------------
SRC=$RUN/model.pt; [ -f "$SRC" ] || SRC=$RUN/last.pt
[ -f "$SRC" ] || { echo "no checkpoint"; exit 5; }
cp "$RUN/history.json" "$OUT/" 2>/dev/null
$PY - "$SRC" "$RUN/final.pt" "$OUT/summary.json" "$ER" "$EB" "$((T2 - T1))" <<'EOF'
import hashlib, json, sys, torch
src, dst, summ, er, eb, train_s = sys.argv[1:]
ck = torch.load(src, map_location="cpu", weights_only=True)
tr = ck.get("train") or {}
ck["train"] = {k: v for k, v in tr.items() if k not in ("optimizer", "scheduler")}
torch.save(ck, dst)
p = json.load(open("/tmp/probe.json"))
h = ck["train"].get("history", [])
json.dump({"source": src, "sha256": hashlib.sha256(open(dst, "rb").read()).hexdigest(),
           "epochs_real": int(er), "epochs_binary": int(eb), "epochs_done": len(h),
           "train_wall_s": int(train_s), "probe": p, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0), "final": h[-1] if h else None},
          open(summ, "w"), indent=1)
print(open(summ).read())
EOF
split -b 15M -d "$RUN/final.pt" "$OUT/model.pt.part-"
ls -l "$OUT"
echo "== done in $(( $(date +%s) - T0 )) s"
