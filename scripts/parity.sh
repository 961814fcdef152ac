#!/usr/bin/env bash
# Live PyTorch parity (npm run test:parity): regenerates the parity fixtures with fresh random
# seeds and larger configs (including a full-size torchvision vit_b_16 and resnet18, ~400 MB,
# kept in a temporary directory), runs test/weights/parity.test.ts on them, then loads the
# weights vit-ts exported back into torch with load_state_dict(strict=True) and compares logits.
#   VIT_TS_PARITY_SEED=<int>  fixed seed instead of a random one
#   VIT_TS_PARITY_KEEP=1      keep the temporary directory
#   PYTHON=<path>             Python with torch + torchvision (default /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
SEED=${VIT_TS_PARITY_SEED:-$(( (RANDOM * 32768 + RANDOM) % 100000 ))}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/vit-ts-parity-XXXXXX")
if [ "${VIT_TS_PARITY_KEEP:-0}" = "1" ]; then
  echo "(keeping $DIR)"
else
  trap 'rm -rf "$DIR"' EXIT
fi
start=$SECONDS

echo "== parity: PyTorch fixtures (seed $SEED) -> $DIR"
"$PY" scripts/fixtures/make_parity.py --live --seed "$SEED" --out "$DIR"
echo "   ($((SECONDS - start)) s, $(du -sh "$DIR" | cut -f1))"

echo "== parity: tfjs side (cpu + wasm; full-size models on wasm only)"
VIT_TS_PARITY_DIR="$DIR" npx vitest run test/weights/parity.test.ts
echo "   ($((SECONDS - start)) s)"

echo "== parity: vit-ts exports -> torch load_state_dict(strict=True) -> same logits"
"$PY" scripts/fixtures/make_parity.py --check-export "$DIR"
echo "== parity done in $((SECONDS - start)) s (seed $SEED)"
