"""(Re)create the shipped frozen experiments: ``python experiments/series.py``.

Each experiment is (name, parent, why, changes versus the parent). The folders are made with
``homogan.freeze`` — the same code as ``python -m homogan freeze`` — so every README's "what
changed" table is computed from the configs, not typed. Existing folders keep their config and
README; only their ``main.py`` is brought up to date with the current template (it is code, not
part of what was frozen).

Sources: the HomoGAN study (Experiments 1-16, CelebA 128 px); a face-synthesis study (DCGAN 64 px,
base vs improved); a parameter study (latent size, Adam beta_1, learning-rate and batch-size
schedules). Where a study does not state a value, homogan's default is used and the README says so.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from homogan.config import load_config  # noqa: E402
from homogan.freeze import freeze, write_main_py  # noqa: E402

UNKNOWN = " Values the study does not state use homogan's defaults."

HOMOGAN_BASE = [
    "data.source=celeba", "data.root=data/celeba", "data.image_size=128", "data.crop=160", "data.attributes=[]",
    "model.latent_dim=100", "model.generator.width=64", "model.discriminator.width=64",
    "model.generator.extra_convs=1", "model.discriminator.extra_convs=1",
    "training.epochs=20", "training.batch_size=100",
]

#: The comparison grid {BCE, Wasserstein+GP, Wasserstein+SN} × {transposed conv, upsample+conv} ×
#: {batch norm, none}; every cell's parent is the first, so each README shows its difference to it.
GRID_BASE = "Grid_BCE_ConvT_BN"
GRID = [
    "data.source=folder", "data.root=data/simpsons", "data.image_size=64", "data.channels=3", "data.crop=null",
    "data.attributes=[]", "data.class_conditional=false", "model.latent_dim=100", "model.generator.width=64",
    "model.discriminator.width=64", "model.generator.upsample=conv_transpose", "model.generator.batch_norm=true",
    "model.discriminator.normalization=batch", "training.loss=nonsaturating", "training.epochs=25",
    "training.batch_size=64", "training.g_optimizer.learning_rate=2e-4", "training.g_optimizer.beta_1=0.5",
    "training.g_optimizer.beta_2=0.999", "training.d_optimizer.learning_rate=2e-4", "training.d_optimizer.beta_1=0.5",
    "training.d_optimizer.beta_2=0.999",
]
NO_NORM = ["model.generator.batch_norm=false", "model.discriminator.normalization=none"]
UPSAMPLE = ["model.generator.upsample=upsample_conv"]
WGP = ["training.loss=wasserstein", "training.d_steps=5", "training.gradient_penalty=10"]
WSN = ["training.loss=wasserstein", "training.d_steps=5", "model.discriminator.spectral_norm=true"]

SERIES: list[tuple[str, str | None, str, list[str]]] = [
    ("Experiment01", None, "HomoGAN baseline: an unconditional DCGAN on CelebA at 128 px, Adam 2e-4 (beta_1 0.5), "
     "batch 100, one extra convolution per block." + UNKNOWN, HOMOGAN_BASE),
    ("Experiment02", "Experiment01", "Classes: condition G and D on gender (Male) so one model draws both on request.",
     ['data.attributes=["Male"]']),
    ("Experiment03", "Experiment02", "Fewer layers: drop the extra convolution per block; the deeper model trained "
     "slowly and D overpowered G.", ["model.generator.extra_convs=0", "model.discriminator.extra_convs=0"]),
    ("Experiment04", "Experiment03", "FC→FConv: the generator's dense input becomes a 4x4 transposed convolution, and "
     "D is not updated while G's loss is above 4, to stop D winning early.",
     ["model.generator.stem=conv_transpose", "training.d_skip_threshold=4.0"]),
    ("Experiment05", "Experiment04", "Rule removed: the skip rule froze D for long stretches; train D every step again.",
     ["training.d_skip_threshold=null"]),
    ("Experiment06", "Experiment05", "Label smoothing (real U(0.9, 1), fake U(0, 0.1), per sample per step) and 5 % "
     "flipped labels, to keep D from becoming over-confident.",
     ["training.real_label_range=[0.9, 1.0]", "training.fake_label_range=[0.0, 0.1]", "training.label_flip=0.05"]),
    ("Experiment07", "Experiment06", "No batch norm in G or D: test whether batch statistics cause the colour artefacts.",
     ["model.generator.batch_norm=false", "model.discriminator.normalization=none"]),
    ("Experiment08", "Experiment06", "Male-only subset: a narrower distribution to see if quality is limited by variety.",
     ['data.filters={"Male": 1}', "data.attributes=[]"]),
    ("Experiment09", "Experiment06", "50/50 male/female, conditional on Male, with three D updates per G update (1:3).",
     ["data.balance=Male", "training.d_steps=3"]),
    ("Experiment10", "Experiment09", "Conditional on one attribute (Eyeglasses) instead of gender, on the whole set.",
     ['data.attributes=["Eyeglasses"]', "data.balance=null"]),
    ("Experiment11", "Experiment10", "Ratio change: 3 G updates per D update (3:1), since D still won with 1:3.",
     ["training.d_steps=1", "training.g_steps=3"]),
    ("Experiment12", "Experiment10", "Spectral normalisation in D with a 1:1 ratio (Miyato et al. 2018).",
     ["model.discriminator.spectral_norm=true", "model.discriminator.normalization=none", "training.d_steps=1"]),
    ("Experiment13", "Experiment12", "Spectral norm with 1:3 (three D updates per G update).", ["training.d_steps=3"]),
    ("Experiment14", "Experiment12", "Spectral norm with 1:5.", ["training.d_steps=5"]),
    ("Experiment15", "Experiment13", "Multi-label: Eyeglasses, No_Beard and Bald, with equal counts of every combination "
     "(the rare ones, such as bald with glasses, are otherwise almost absent).",
     ['data.attributes=["Eyeglasses", "No_Beard", "Bald"]', "data.balance=combinations"]),
    ("Experiment16", "Experiment15", "Gaussian noise layers after every generator block (sigma 0.1) for texture variety.",
     ["model.generator.noise_stddev=0.1"]),

    ("FaceBase", None, "Face-synthesis study, base model: DCGAN at 64 px on CelebA, centre crop 160 → 64, z 100, "
     "Adam 2e-4 (beta_1 0.5), batch 64, unconditional." + UNKNOWN,
     ["data.source=celeba", "data.root=data/celeba", "data.image_size=64", "data.crop=160", "data.attributes=[]",
      "model.latent_dim=100", "model.generator.width=64", "model.discriminator.width=64", "training.epochs=25",
      "training.batch_size=64"]),
    ("FaceImproved", "FaceBase", "Face-synthesis study, improved model: dropout 0.3 in D, LeakyReLU in G, one-sided "
     "label smoothing U(0.7, 1.2) for real images, Gaussian instance noise (sigma 0.1, constant) on every image D "
     "sees, real and fake.",
     ["model.discriminator.dropout=0.3", "model.generator.activation=leaky_relu",
      "training.real_label_range=[0.7, 1.2]", "training.instance_noise_stddev=0.1"]),

    ("DigitsZ64", None, "Parameter study on MNIST digits (tensorflow-datasets, 32 px, class-conditional): latent size 64.",
     ["data.source=tfds", "data.tfds_name=mnist", "data.root=data/tfds", "data.image_size=32", "data.channels=1",
      "data.crop=null", "data.attributes=[]", "data.class_conditional=true", "model.latent_dim=64",
      "model.generator.width=32", "model.discriminator.width=32", "training.epochs=10", "training.batch_size=64"]),
    ("DigitsZ128", "DigitsZ64", "Latent size 128.", ["model.latent_dim=128"]),
    ("DigitsZ256", "DigitsZ64", "Latent size 256.", ["model.latent_dim=256"]),
    ("DigitsBeta01", "DigitsZ128", "Adam beta_1 0.1 for both networks (less momentum).",
     ["training.g_optimizer.beta_1=0.1", "training.d_optimizer.beta_1=0.1"]),
    ("DigitsBeta03", "DigitsZ128", "Adam beta_1 0.3 for both networks.",
     ["training.g_optimizer.beta_1=0.3", "training.d_optimizer.beta_1=0.3"]),
    ("CelebaZ128", None, "Parameter study on CelebA at 64 px: latent size 128, Adam 2e-4 (beta_1 0.5)." + UNKNOWN,
     ["data.source=celeba", "data.root=data/celeba", "data.image_size=64", "data.attributes=[]",
      "model.latent_dim=128", "training.epochs=10", "training.batch_size=64"]),
    ("CelebaBeta03", "CelebaZ128", "Adam beta_1 0.3 on CelebA.",
     ["training.g_optimizer.beta_1=0.3", "training.d_optimizer.beta_1=0.3"]),
    (GRID_BASE, None, "Comparison grid (12 runs: loss x G upsampling x normalisation), the reference cell: "
     "non-saturating BCE, transposed-convolution G, batch norm in G and D; DCGAN at 64 px on a folder of "
     "Simpsons face crops (data/simpsons), z 100, batch 64, Adam 2e-4 (0.5, 0.999) for G and D. Epochs and "
     "crop are not part of the grid: 25 epochs (as FaceBase), the whole face crop (crop null)." + UNKNOWN, GRID),
    ("Grid_BCE_ConvT_None", GRID_BASE, "BCE without any normalisation in G or D: does DCGAN need batch norm "
     "at all?", NO_NORM),
    ("Grid_BCE_Up_BN", GRID_BASE, "BCE with nearest-neighbour upsampling + convolution in G instead of "
     "transposed convolutions, against checkerboard artefacts.", UPSAMPLE),
    ("Grid_BCE_Up_None", GRID_BASE, "BCE, upsample + conv, no normalisation.", UPSAMPLE + NO_NORM),
    ("Grid_WGP_ConvT_BN", GRID_BASE, "Wasserstein loss with gradient penalty (lambda 10, 5 critic steps per G "
     "step); \"batch norm\" here means batch norm in G and layer norm in D, because batch norm in the critic "
     "is invalid with a per-sample gradient penalty.", WGP + ["model.discriminator.normalization=layer"]),
    ("Grid_WGP_ConvT_None", GRID_BASE, "WGAN-GP, transposed conv, no normalisation in G or D.", WGP + NO_NORM),
    ("Grid_WGP_Up_BN", GRID_BASE, "WGAN-GP, upsample + conv; batch norm in G, layer norm in D (GP forbids "
     "batch norm in the critic).", WGP + UPSAMPLE + ["model.discriminator.normalization=layer"]),
    ("Grid_WGP_Up_None", GRID_BASE, "WGAN-GP, upsample + conv, no normalisation.", WGP + UPSAMPLE + NO_NORM),
    ("Grid_WSN_ConvT_BN", GRID_BASE, "Wasserstein loss with a spectrally normalised critic instead of a "
     "gradient penalty (5 critic steps per G step), batch norm in G and D.", WSN),
    ("Grid_WSN_ConvT_None", GRID_BASE, "Wasserstein + spectral norm in D as its only normalisation, no batch "
     "norm in G.", WSN + NO_NORM),
    ("Grid_WSN_Up_BN", GRID_BASE, "Wasserstein + spectral norm, upsample + conv, batch norm in G and D.",
     WSN + UPSAMPLE),
    ("Grid_WSN_Up_None", GRID_BASE, "Wasserstein + spectral norm, upsample + conv, no batch norm.",
     WSN + UPSAMPLE + NO_NORM),
    ("DigitsLrSchedule", "DigitsZ128", "Learning-rate schedule per epoch: both rates halve at epochs 4 and 7 "
     "(training.schedule).",
     ['training.schedule=[{"epoch": 4, "g_learning_rate": 0.0001, "d_learning_rate": 0.0001}, '
      '{"epoch": 7, "g_learning_rate": 0.00005, "d_learning_rate": 0.00005}]']),
    ("DigitsBatchSchedule", "DigitsZ128", "Batch-size schedule per epoch: 32, then 64 from epoch 4, then 128 from "
     "epoch 7 (small batches early for more updates, large ones later for smoother gradients).",
     ["training.batch_size=32", 'training.schedule=[{"epoch": 4, "batch_size": 64}, {"epoch": 7, "batch_size": 128}]']),
    ("CelebaLrSchedule", "CelebaZ128", "Learning-rate schedule on CelebA: both rates halve at epoch 6.",
     ['training.schedule=[{"epoch": 6, "g_learning_rate": 0.0001, "d_learning_rate": 0.0001}]']),
]


def make(experiments_dir: Path = HERE) -> list[Path]:
    """Freeze the experiments that do not exist yet; refresh every existing one's ``main.py``.
    Returns the folders made or changed."""
    made = []
    for name, parent, why, changes in SERIES:
        if (experiments_dir / name).exists():
            if write_main_py(experiments_dir / name):
                made.append(experiments_dir / name)
            continue
        if parent is None:
            # The studies predate ADA: their experiments run without it (the shipped configs say so too).
            base = load_config(None, ["training.ada_target=null", *changes])
        else:
            base = load_config(experiments_dir / parent / "config.json", changes)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.json"
            path.write_text(json.dumps(base.to_dict()))
            made.append(freeze(path, name, experiments_dir, parent, why))
    return made


if __name__ == "__main__":
    for folder in make():
        print(f"froze or refreshed {folder}")
