"""Train the reference digits CNN and regenerate its committed artifacts.

The weights, test split, calibration batch and metadata that ship next to
``digits.py`` must be reproducible by anyone from the repository alone, with no
download and no GPU, so the exact recipe lives here:

* data: ``sklearn.datasets.load_digits`` (bundled with scikit-learn);
* split: ``train_test_split(test_size=0.2, random_state=0, stratify=y)``;
* augmentation: random shifts of up to one pixel, because at 8x8 a one-pixel
  misalignment is the dominant nuisance and the training set is only ~1.4k
  images;
* everything seeded and single-configuration so reruns give the same file.

Outputs (written to ``--out-dir``, by default this folder):

* ``digits_cnn.safetensors`` - float32 weights (no pickle);
* ``digits_test.npz`` - held-out split, ``x`` uint8 0..16 ``[N, 8, 8]``, ``y`` uint8;
* ``digits_calib.npy`` - float32 ``[256, 1, 8, 8]`` preprocessed training
  images for int8 post-training quantization calibration;
* ``digits_cnn.json`` - metadata (parameter count, accuracy, recipe, versions).

A developer tool, not part of the wheel: run it from a source checkout with edgert
installed, ``python tools/train_digits.py``; it writes into ``exporters/zoo/``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgert.exporters.zoo.digits import INPUT_SHAPE, LABELS, DigitsCNN, digits_cnn, preprocess

SEED = 0
EPOCHS = 60
BATCH_SIZE = 32
LR = 3e-3
WEIGHT_DECAY = 5e-4
LABEL_SMOOTHING = 0.05
CALIB_SIZE = 256


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by an independent integer offset in [-max_shift, max_shift]."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(
        n, 1, h, w + 2 * max_shift
    )
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "exporters" / "zoo"
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    from safetensors.torch import save_file
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.set_num_threads(2)
    seed_everything(args.seed)
    t0 = time.perf_counter()

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # integer pixel values 0..16
    labels = digits.target.astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=0.2, random_state=0, stratify=labels
    )
    xt_tr, xt_te = preprocess(x_tr), preprocess(x_te)
    yt_tr, yt_te = torch.as_tensor(y_tr, dtype=torch.long), torch.as_tensor(y_te, dtype=torch.long)

    model = DigitsCNN()
    n_params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = (len(xt_tr) + BATCH_SIZE - 1) // BATCH_SIZE
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, epochs=args.epochs, steps_per_epoch=steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)

    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt_tr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH_SIZE):
            idx = perm[i : i + BATCH_SIZE]
            xb = random_shift(xt_tr[idx], gen)
            loss = loss_fn(model(xb), yt_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            print(
                f"epoch {epoch + 1:3d}  loss {total / len(perm):.4f}  "
                f"train_acc {accuracy(model, xt_tr, yt_tr):.4f}  test_acc {accuracy(model, xt_te, yt_te):.4f}"
            )

    model.eval()
    test_acc = accuracy(model, xt_te, yt_te)
    train_time = time.perf_counter() - t0

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / "digits_cnn.safetensors"
    # Float tensors only: BatchNorm's int64 step counter is irrelevant at inference.
    state = {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }
    # A single metadata key: safetensors serialises the metadata map in hash
    # order, so several keys would make otherwise identical files differ.
    header = json.dumps(
        {"input_shape": list(INPUT_SHAPE), "labels": "".join(LABELS)}, sort_keys=True
    )
    save_file(state, str(weights_path), metadata={"edgert": header})
    np.savez_compressed(out / "digits_test.npz", x=x_te, y=y_te)
    calib_idx = np.random.default_rng(args.seed).choice(len(x_tr), size=CALIB_SIZE, replace=False)
    np.save(
        out / "digits_calib.npy", preprocess(x_tr[np.sort(calib_idx)]).numpy().astype(np.float32)
    )

    # Reload through the public factory so the reported number is the one users get.
    reloaded = digits_cnn(str(weights_path))
    reload_acc = accuracy(reloaded, xt_te, yt_te)
    if reload_acc != test_acc:
        raise RuntimeError(f"reloaded accuracy {reload_acc} != trained accuracy {test_acc}")

    meta = {
        "model": "digits_cnn",
        "architecture": "conv3x3(1->16)-conv3x3(16->32)-maxpool-dwsep(32->64)-maxpool-dwsep(64->96)-gap-dropout-linear(96->10); BN+ReLU after every conv",
        "params": n_params,
        "test_accuracy": round(test_acc, 6),
        "test_samples": len(y_te),
        "train_samples": len(y_tr),
        "epochs": args.epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": f"AdamW(lr={LR}, weight_decay={WEIGHT_DECAY}) + OneCycleLR",
        "label_smoothing": LABEL_SMOOTHING,
        "augmentation": "random integer shift in [-1, 1] px on each axis, zero fill",
        "seed": args.seed,
        "split": "sklearn train_test_split(test_size=0.2, random_state=0, stratify=y)",
        "preprocessing": "load_digits pixel values 0..16 -> float32 / 16.0, NCHW [N,1,8,8]",
        "input_shape": list(INPUT_SHAPE),
        "output": "logits [N,10] (no softmax)",
        "labels": list(LABELS),
        "calibration": f"{CALIB_SIZE} preprocessed training images, float32 [256,1,8,8]",
        "train_time_s": round(train_time, 1),
        "torch_version": torch.__version__,
    }
    (out / "digits_cnn.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"params {n_params}  test_acc {test_acc:.4f}  ({len(y_te)} images)  time {train_time:.1f}s"
    )
    print(f"wrote {weights_path.name}, digits_test.npz, digits_calib.npy, digits_cnn.json to {out}")
    return meta


if __name__ == "__main__":
    main()
