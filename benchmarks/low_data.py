"""The low-data claim, measured fairly: does generative augmentation help when only 400 labelled
images exist, with the generator trained on those same 400 images?

Data: mnist5k, the first 40 ``train`` images of each class (400 real images); test accuracy on
the mnist5k ``test`` split (1,000 images). Every configuration trains the same reference CNN
(:func:`genaug.metrics.cas.train_cas_classifier`: ``Classifier``, Adam, cosine decay) with the
same steps, batch size, learning rate and seeds; only the augmentation differs:

* (a) none: the 400 real images.
* (b) classical: ``RandomAffine(15°, translate 0.1, scale 0.9-1.1)`` + ``ColorJitter(0.3, 0.3)``.
* (c) ``GenerativeSample(p=0.5)`` from a cGAN trained only on the 400 images.
* (d) ``GenerativeSample`` (c) followed by the classical ops (b).
* (c') / (d') the same with a cVAE (aggregate prior) trained only on the 400 images.
* (e) (d) with the shipped ``mnist-cgan`` (trained on the 4,000-image train split): a ceiling.

Augmentation is applied per epoch: epoch ``k`` is the 400 real images through the pipeline
(one seeded ``Compose``, called once per epoch), and the classifier sees ``steps * batch``
augmented images, each exactly once, in a seeded random order: the same as on-the-fly
augmentation, but it reuses the CAS classifier trainer unchanged.

The low-data generators are trained with genaug's trainer (:func:`genaug.generative.train`) on
the subset, with no validation split (all 400 images train the generator; nothing trained on
more data selects it) and written to ``--outdir`` (default ``outputs/lowdata/``); an existing
checkpoint with the same settings is reused. As a diagnostic only, the shipped
``mnist-classifier`` scores how often a generated sample is recognised as its class.

Options added after the first run (defaults reproduce it): ``--d-augment POLICY`` trains the
cGAN-400 with DiffAugment discriminator augmentation (``TrainConfig.d_augment``, fill value
``--d-augment-fill``; checkpoint ``cgan-400-diffaug[-fillV]``); ``--p P [P ...]`` runs the
generative configs with each ``GenerativeSample`` probability (results keyed ``c@p0.25/0``;
p = 0.5 keeps the old keys);
``--reuse RESULTS_JSON`` copies finished runs that do not depend on what changed (a, b, and
c'/d'/e when their settings match) from an earlier results file instead of rerunning them.

Usage::

    nice -n 5 python benchmarks/low_data.py --jobs 2            # full run (see benchmarks/LOW_DATA.md)
    python benchmarks/low_data.py --quick --outdir /tmp/ld      # smoke test, < 60 s
    nice -n 19 python benchmarks/low_data.py --outdir outputs/lowdata-diffaug --gan-steps 2500 \
        --d-augment color,translation,cutout --p 0.25 0.5 --configs a b c d \
        --reuse outputs/lowdata/results.json                    # cGAN-400 with DiffAugment
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {  # key: (label, generator or None, classical ops?)
    "a": ("(a) no augmentation", None, False),
    "b": ("(b) classical", None, True),
    "c": ("(c) GenerativeSample, cGAN-400", "gan", False),
    "d": ("(d) classical + GenerativeSample, cGAN-400", "gan", True),
    "c'": ("(c') GenerativeSample, cVAE-400", "vae", False),
    "d'": ("(d') classical + GenerativeSample, cVAE-400", "vae", True),
    "e": ("(e) classical + GenerativeSample, shipped mnist-cgan (ceiling)", "shipped", True),
}
GAN_SET = {"g_width": 24, "d_width": 24, "mode_seeking": 1.0, "ema_decay": 0.99}
VAE_SET = {"prior": "aggregate"}


def subset(per_class: int):
    """The first ``per_class`` mnist5k train images of each class (file order)."""
    from genaug.data.builtin import ImageTensorDataset, load_builtin

    tr = load_builtin("mnist5k", "train")
    idx = torch.cat([torch.nonzero(tr.labels == c).flatten()[:per_class] for c in range(tr.num_classes)])
    return ImageTensorDataset(tr.images[idx], tr.labels[idx], f"mnist5k[train, first {per_class} per class]", "train")


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def train_generator(kind: str, outdir: str, steps: int, per_class: int, command: str, n_fidelity: int = 100,
                    d_augment: str | None = None, d_augment_fill: float = 0.0) -> dict:
    """Train the low-data cGAN or cVAE on the subset (or reuse a matching checkpoint)."""
    from genaug.generative import load_model
    from genaug.generative.train import TrainConfig, train
    from genaug.metrics.cas import balanced_samples

    d_augment = d_augment if kind == "gan" else None
    out = Path(outdir) / (f"c{kind}-{per_class * 10}" + ("-diffaug" if d_augment else "")
                          + (f"-fill{d_augment_fill:g}" if d_augment and d_augment_fill else ""))
    ckpt = out / "model.safetensors"
    t0 = time.time()
    if kind == "gan":
        tc = TrainConfig(steps=steps, batch_size=32, lr=2e-4, lr_d=4e-4, betas=(0.0, 0.99), seed=0,
                         ckpt_every=max(steps, 1), val_every=0, val_fraction=0.0, device="cpu", progress=False,
                         d_augment=d_augment, d_augment_fill=d_augment_fill if d_augment else 0.0)
        cfg = GAN_SET
    else:
        tc = TrainConfig(steps=steps, batch_size=64, lr=1e-3, betas=(0.9, 0.999), seed=0,
                         ckpt_every=max(steps, 1), val_every=0, val_fraction=0.0, device="cpu", progress=False)
        cfg = VAE_SET
    reused = False
    if ckpt.exists():
        meta = load_model(ckpt).checkpoint_metadata
        prov = meta.get("provenance", meta)
        reused = (prov.get("steps") == steps and prov.get("n_train") == per_class * 10
                  and prov.get("train_config", {}).get("d_augment") == tc.d_augment
                  and prov.get("train_config", {}).get("d_augment_fill", 0.0) == tc.d_augment_fill)
    if reused:
        model = load_model(ckpt).eval()
    else:
        model = train(kind, subset(per_class), out, cfg, tc, command=command, log=lambda s: None).model.eval()
    clf = load_model("mnist-classifier").eval()
    with torch.no_grad():
        x, y = balanced_samples(model, n_fidelity, 10, seed=123)
        fidelity = float((clf.predict(x) == y).float().mean())
    return {"kind": kind, "path": str(ckpt), "steps": steps, "seconds": round(time.time() - t0, 1),
            "reused": reused, "label_fidelity": fidelity, "d_augment": d_augment,
            "d_augment_fill": tc.d_augment_fill}


_MODELS: dict = {}


def _generator(name: str):
    """Load a generator once per process (a spectral-norm GAN takes seconds to build)."""
    from genaug.generative import load_model

    if name not in _MODELS:
        _MODELS[name] = load_model(name).eval()
    return _MODELS[name]


def run_key(key: str, seed: int, p: float = 0.5) -> str:
    """results.json key of one run: ``c/0`` for p = 0.5 (and configs without a generator), ``c@p0.25/0`` otherwise."""
    return f"{key}/{seed}" if CONFIGS[key][1] is None or p == 0.5 else f"{key}@p{p:g}/{seed}"


def build_pipeline(key: str, gens: dict, seed: int, p: float = 0.5):
    import genaug as ga

    _, gen, classical = CONFIGS[key]
    ops = []
    if gen is not None:
        ops.append(ga.GenerativeSample(_generator("mnist-cgan" if gen == "shipped" else gens[gen]), p=p))
    if classical:
        ops += [ga.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1)), ga.ColorJitter(0.3, 0.3)]
    return ga.Compose(ops, seed=seed) if ops else None


def run_classifier(key: str, seed: int, gens: dict, per_class: int, steps: int, batch: int, lr: float,
                   p: float = 0.5) -> dict:
    """Train the reference CNN on the (augmented) subset; test accuracy on mnist5k test."""
    from genaug.data.builtin import load_builtin
    from genaug.metrics.cas import accuracy, train_cas_classifier

    t0 = time.time()
    sub, test = subset(per_class), load_builtin("mnist5k", "test")
    x, y = sub.images, sub.labels
    aug = build_pipeline(key, gens, 1000 + seed, p)
    if aug is not None:
        epochs = math.ceil(steps * batch / len(y))
        with torch.no_grad():
            views = []
            for _ in range(epochs):
                out = aug(x, labels=y)
                views.append(out["image"] if isinstance(out, dict) else out)
        x, y = torch.cat(views), y.repeat(epochs)
    clf = train_cas_classifier(x, y, 10, steps=steps, batch_size=batch, lr=lr, seed=seed)
    acc = accuracy(clf, test.images, test.labels)
    return {"key": key, "seed": seed, "p": p, "acc": acc, "seconds": round(time.time() - t0, 1)}


def table(results: dict, seeds: list[int], ps: list[float] = (0.5,), gan_note: str = "") -> str:
    rows = ["| config | test accuracy, mean ± std | per seed (" + ", ".join(map(str, seeds)) + ") |",
            "|---|---|---|"]
    for key, (base, gen, _) in CONFIGS.items():
        for p in ([0.5] if gen is None else ps):
            label = base + (f", p={p:g}" if gen is not None and list(ps) != [0.5] else "")
            if gen == "gan" and gan_note:
                label += f" ({gan_note})"
            accs = [results.get(run_key(key, s, p)) for s in seeds]
            if any(a is None for a in accs):
                rows.append(f"| {label} | (not run) | |")
                continue
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            rows.append(f"| {label} | {100 * statistics.fmean(accs):.1f} ± {100 * sd:.1f} | "
                        + ", ".join(f"{100 * a:.1f}" for a in accs) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: tiny steps, one seed, < 60 s")
    p.add_argument("--outdir", default="outputs/lowdata", help="generator checkpoints and results.json")
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--gan-steps", type=int, default=700)
    p.add_argument("--vae-steps", type=int, default=600)
    p.add_argument("--clf-steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each)")
    p.add_argument("--d-augment", default=None, metavar="POLICY",
                   help="train the cGAN-400 with DiffAugment discriminator augmentation, e.g. color,translation,cutout")
    p.add_argument("--d-augment-fill", type=float, default=0.0,
                   help="with --d-augment: value of translated-in / cut-out pixels in [-1, 1] (0 = DiffAugment)")
    p.add_argument("--p", type=float, nargs="+", default=[0.5], help="GenerativeSample probabilities to run")
    p.add_argument("--reuse", default=None, metavar="RESULTS_JSON",
                   help="copy finished runs that do not depend on the changed settings from this results file")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.gan_steps, args.vae_steps, args.clf_steps, args.batch = [0], 2, 2, 3, 16
    command = "python benchmarks/low_data.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    res_path = outdir / "results.json"
    settings = {k: getattr(args, k) for k in ("per_class", "gan_steps", "vae_steps", "clf_steps", "batch", "lr")}
    if args.d_augment:
        from genaug.generative.train import parse_d_augment

        args.d_augment = ",".join(parse_d_augment(args.d_augment))
        settings["d_augment"] = args.d_augment  # absent when off, so old results files still match
        if args.d_augment_fill:
            settings["d_augment_fill"] = args.d_augment_fill
    state = {"settings": settings, "generators": {}, "runs": {}}
    if res_path.exists():
        old = json.loads(res_path.read_text())
        if old.get("settings") == settings:
            state = old
    if args.reuse:
        src = json.loads(Path(args.reuse).read_text())
        ss = src.get("settings", {})
        common = all(ss.get(k) == settings[k] for k in ("per_class", "clf_steps", "batch", "lr"))
        copied = []
        for rk, r in src.get("runs", {}).items() if common else []:
            gen = CONFIGS.get(r["key"], (None, "?", None))[1]
            ok = (gen in (None, "shipped") or (gen == "vae" and ss.get("vae_steps") == settings["vae_steps"])
                  or (gen == "gan" and all(ss.get(k) == settings.get(k)
                                           for k in ("gan_steps", "d_augment", "d_augment_fill"))))
            if ok and rk not in state["runs"]:
                state["runs"][rk] = {**r, "reused_from": args.reuse}
                copied.append(rk)
        print(f"reused {len(copied)} runs from {args.reuse}" + ("" if common else " (settings differ: none)"),
              flush=True)
    state["command"], state["threads"] = command, 1

    def save() -> None:
        res_path.write_text(json.dumps(state, indent=1))

    needed = {CONFIGS[k][1] for k in args.configs} & {"gan", "vae"}
    gens = {k: v["path"] for k, v in state["generators"].items() if k in needed}
    runs = [(k, s, p) for k in args.configs for p in (args.p if CONFIGS[k][1] is not None else [0.5])
            for s in args.seeds if run_key(k, s, p) not in state["runs"]]
    t0 = time.time()
    torch.set_num_threads(1)
    if args.jobs <= 1:
        for kind in sorted(needed - set(gens)):
            r = train_generator(kind, str(outdir), getattr(args, f"{kind}_steps"), args.per_class, command,
                                n_fidelity=10 if args.quick else 100, d_augment=args.d_augment,
                                d_augment_fill=args.d_augment_fill)
            state["generators"][kind] = r
            gens[kind] = r["path"]
            print(f"generator {kind}: {r}", flush=True)
        for k, s, pp in runs:
            r = run_classifier(k, s, gens, args.per_class, args.clf_steps, args.batch, args.lr, pp)
            state["runs"][run_key(k, s, pp)] = r
            save()
            print(f"{run_key(k, s, pp)}: {r['acc']:.4f} ({r['seconds']} s)", flush=True)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(1,)) as ex:
            pending = {}
            for kind in sorted(needed - set(gens), reverse=True):  # the slower GAN first
                pending[ex.submit(train_generator, kind, str(outdir), getattr(args, f"{kind}_steps"),
                                  args.per_class, command, 100, args.d_augment,
                                  args.d_augment_fill)] = ("gen", kind)
            waiting = []
            for k, s, pp in runs:
                g = CONFIGS[k][1]
                if g in needed and g not in gens:
                    waiting.append((k, s, pp))
                else:
                    pending[ex.submit(run_classifier, k, s, gens, args.per_class, args.clf_steps, args.batch,
                                      args.lr, pp)] = ("run", (k, s, pp))
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    what, key = pending.pop(f)
                    r = f.result()
                    if what == "gen":
                        state["generators"][key] = r
                        gens[key] = r["path"]
                        print(f"generator {key}: {r}", flush=True)
                        for k, s, pp in [w for w in waiting if CONFIGS[w[0]][1] == key]:
                            waiting.remove((k, s, pp))
                            pending[ex.submit(run_classifier, k, s, dict(gens), args.per_class, args.clf_steps,
                                              args.batch, args.lr, pp)] = ("run", (k, s, pp))
                    else:
                        state["runs"][run_key(*key)] = r
                        print(f"{run_key(*key)}: {r['acc']:.4f} ({r['seconds']} s)", flush=True)
                    save()
    state["wall_seconds_last_invocation"] = round(time.time() - t0, 1)
    save()
    accs = {k: v["acc"] for k, v in state["runs"].items()}
    note = (f"{args.gan_steps} steps, d_augment={args.d_augment}"
            + (f", fill {args.d_augment_fill:g}" if args.d_augment_fill else "") if args.d_augment
            else f"{args.gan_steps} steps" if args.gan_steps != 700 else "")
    md = table(accs, args.seeds, args.p, note)
    print(md)
    for kind, g in state["generators"].items():
        da = f", d_augment={g['d_augment']}" if g.get("d_augment") else ""
        print(f"c{kind}-{args.per_class * 10}: {g['steps']} steps{da}, label fidelity (mnist-classifier on "
              f"balanced samples) {g['label_fidelity']:.3f}")
    if args.out:
        Path(args.out).write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
