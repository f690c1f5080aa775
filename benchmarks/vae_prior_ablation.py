"""Standard vs fitted aggregate prior on the same VAE weights: label fidelity and CAS.

Loads a VAE checkpoint (default: the shipped ``mnist-cvae``), builds a second copy of the same
network that samples from ``N(0, I)``, and reports for both priors:

* label agreement: accuracy of the shipped ``mnist-classifier`` on 1,000 class-balanced
  samples (100 per class), per seed;
* optionally (``--cas``) the Classification Accuracy Score on the mnist5k test split, with
  the same routine and settings as ``generative_quality.py`` (the real-data accuracies are
  reused from its JSON when present).

Usage (from the repository root)::

    python benchmarks/vae_prior_ablation.py --threads 1 --cas
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mnist-cvae", help="shipped name or path of a VAE with prior='aggregate'")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cas", action="store_true", help="also measure CAS (about 1 min per seed and prior)")
    p.add_argument("--real-json", default="benchmarks/generative_results.json",
                   help="reuse real-data CNN accuracies from generative_quality.py's results")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from genaug.data import load_builtin
    from genaug.generative import ConditionalVAE, VAEConfig, load_model
    from genaug.metrics import classification_accuracy_score

    fitted = load_model(args.model)
    if not isinstance(fitted, ConditionalVAE) or fitted.config.prior != "aggregate":
        raise SystemExit(f"--model {args.model!r} must be a ConditionalVAE with prior='aggregate'")
    standard = ConditionalVAE(VAEConfig(**{**fitted.config.to_dict(), "prior": "standard"}))
    standard.load_state_dict({k: v for k, v in fitted.state_dict().items() if not k.startswith("prior_")})
    standard.eval()
    clf = load_model("mnist-classifier")
    k = fitted.config.num_classes
    labels = torch.arange(k).repeat_interleave(100)

    real_cache: dict[int, float] = {}
    store = Path(args.real_json)
    if store.exists():
        data = json.loads(store.read_text())
        if data.get("steps") == 600:
            real_cache = {int(s): v for s, v in data.get("real_acc", {}).items()}
    train, test = load_builtin("mnist5k", "train"), load_builtin("mnist5k", "test")

    rows = [f"Model: `{args.model}`; seeds {args.seeds}; command: "
            f"`python benchmarks/vae_prior_ablation.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
            "| prior | label agreement per seed (mnist-classifier, 1,000 samples) | mean |"
            + (" CAS per seed | CAS mean ± std |" if args.cas else ""),
            "|---|---|---|" + ("---|---|" if args.cas else "")]
    for name, model in [("standard N(0, I)", standard), ("aggregate (fitted)", fitted)]:
        agree = []
        for seed in args.seeds:
            x = model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(seed))
            agree.append(float((clf.predict(x) == labels).float().mean()))
        row = f"| {name} | {', '.join(f'{a:.3f}' for a in agree)} | {statistics.fmean(agree):.3f} |"
        if args.cas:
            res = classification_accuracy_score(model, (train.images, train.labels), (test.images, test.labels),
                                                seeds=args.seeds, real_acc_cache=real_cache, progress=False)
            row += f" {', '.join(f'{c:.3f}' for c in res.cas)} | {res.mean:.3f} ± {res.std:.3f} |"
        rows.append(row)
        print(row, file=sys.stderr)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
