#!/usr/bin/env bash
# Every CUDA figure the README's performance section asks for, in one run on a GPU machine
# (about 6 minutes on one H100): the CUDA tests, then GPT-2 124M (bf16) training against
# transformers (both compiled, T=1024) and decoding against transformers' generate (batch 1 and
# k=8 from one prompt). JSON reports go to $OUT (default ./bench-cuda).
#
#     bash bench/cuda_check.sh
set -u
out=${OUT:-bench-cuda}
mkdir -p "$out"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/device.txt"
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$out/tests.txt"
timeout 300 python bench/train_speed.py --device cuda --preset gpt2 --vocab 50304 --seq 1024 --batch 16 \
    --compile --json > "$out/train_gpt2.json" || echo "train_speed failed or timed out ($?)"
timeout 150 python bench/decode_speed.py --device cuda --preset gpt2 --vocab 50304 --block 1024 --prompt 32 \
    --new 256 --json > "$out/decode_gpt2.json" || echo "decode_speed failed or timed out ($?)"
timeout 60 python bench/self_consistency.py --device cuda --preset gpt2 --quick --json \
    > "$out/self_consistency_gpt2.json" || echo "self_consistency over budget, failed or timed out ($?)"
for f in "$out"/*.json; do echo "== $f"; python -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(json.dumps(r.get('rows') or r.get('results') or r, indent=1)[:3000])" "$f"; done
