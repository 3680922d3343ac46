"""The one typed configuration schema: load ``config.json``, apply ``--set`` overrides, validate once.

Configuration is data. Every key a user can write is a field of a frozen dataclass below, with its
type, default, allowed values and a one-line meaning (the README's key table is generated from the
same metadata, see :func:`describe`). :func:`load_config` validates everything before any work
starts and raises :class:`~homogan.errors.ConfigError` with one line naming the key, the value and
what is allowed. Downstream code reads attributes of the typed object; nothing re-validates or
guesses defaults with ``dict.get``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from homogan.celeba_attributes import CELEBA_ATTRIBUTES
from homogan.errors import ConfigError
from homogan.precision import AUTO as AUTO_PRECISION, PRECISIONS

IMAGE_SIZES = (32, 64, 128, 256)
LOSSES = ("nonsaturating", "minimax", "wasserstein", "hinge", "least_squares")
#: The losses with real/fake target labels: the only ones label smoothing and flipping apply to.
TARGET_LOSSES = ("nonsaturating", "minimax", "least_squares")
AUGMENT_POLICIES = ("color", "translation", "cutout")
#: ADA's op groups (StyleGAN2-ADA's --augpipe): blit = x-flip, 90° turns, integer shift; color = brightness,
#: saturation, contrast.
ADA_OPS = ("blit", "color")
SPECTRAL_NORM_VARIANTS = ("reparameterized", "keras")
#: How labels enter G (model.generator.conditioning): concatenated to z only, or also as every batch
#: norm's gain and bias.
GENERATOR_CONDITIONING = ("concat", "conditional_bn")
#: How labels enter D (model.discriminator.conditioning): label maps as input channels, projection, or ACGAN.
DISCRIMINATOR_CONDITIONING = ("concat", "projection", "acgan", "projection_ac", "projection_tac", "reacgan")
#: The conditionings whose auxiliary loss needs one class per image (need data.class_conditional): a softmax over the
#: classes (projection_ac, projection_tac) or ReACGAN's data-to-data cross-entropy, whose negatives are the images
#: of other classes.
ONE_HOT_CONDITIONING = ("projection_ac", "projection_tac", "reacgan")
#: Removed keys → (the value every old resolved config wrote out, what replaces the key). Frozen
#: experiments and old run folders store every key, so such a key is accepted at that neutral value
#: (and dropped); any other value is refused with a pointer to the replacement.
RETIRED_KEYS = {"model.discriminator.input_noise_stddev": (0.0, "training.instance_noise_stddev")}
#: Keys added after experiments were first frozen whose default changes what trains → the value that trains as
#: before the key existed. A config homogan wrote out in full (a frozen experiment, a run folder's config.json:
#: loaded with ``written_out=True``) that lacks such a key was written before it existed; it gets this value, so
#: old experiments re-run and old runs resume as they trained. A hand-written config gets the new default.
LATER_KEYS = {"data.mirror": False}
#: Names that become folder names (``experiment.name``, frozen experiments): they cannot leave their folder.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
#: Substrings of key names that look like credentials; such keys are refused (see README).
CREDENTIAL_WORDS = ("password", "passwd", "token", "secret", "api_key", "apikey", "credential")


def _f(default: Any, doc: str, *, choices: tuple | None = None, min: float | None = None,
       max: float | None = None, min_exclusive: bool = False) -> Any:
    """A schema field: a default plus the metadata used for validation and documentation."""
    meta = {"doc": doc, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = _f("default", "Run name; the run folder is `<output_dir>/<name>-<timestamp>/` (letters, digits, "
                   "'_', '-', starting with a letter).")
    seed: int = _f(42, "Seed for data order, weights and every random draw: a CPU run repeats exactly.", min=0)
    output_dir: str = _f("runs", "Folder that receives one new run folder per training run.")
    notes: str = _f("", "Free text kept with the run and shown in reports.")


@dataclass(frozen=True)
class DataConfig:
    source: str = _f("synthetic", "Where images come from.", choices=("synthetic", "celeba", "folder", "tfds"))
    root: str = _f("data/synthetic", "Data folder: CelebA copy (official or Kaggle layout), image folder, "
                   "tfds data_dir, or the synthetic cache folder.")
    image_size: int = _f(64, "Side of the square training images in pixels.", choices=IMAGE_SIZES)
    channels: int = _f(3, "3 = RGB, 1 = grayscale (images are converted on decode).", choices=(1, 3))
    crop: Optional[int] = _f(160, "Side of the centred square crop taken from each source image before "
                             "resizing; null = the largest centred square.", min=1)
    attributes: list[str] = _f([], "Conditioning attributes (CelebA names); [] = unconditional.")
    filters: dict[str, int] = _f({}, "Keep only images with these attribute values, e.g. {\"Male\": 1} "
                                 "(1 = present, 0 or -1 = absent).")
    balance: Optional[str] = _f(None, "null; an attribute name for a 50/50 split on it; or \"combinations\" "
                                "for equal counts of every combination of `attributes`.")
    limit: Optional[int] = _f(None, "Use at most this many images (after filters and balancing); null = all.", min=1)
    split: str = _f("train", "Which CelebA partition to train on.", choices=("train", "valid", "test", "all"))
    class_conditional: bool = _f(False, "folder/tfds-mnist only: condition on the class (one-hot), "
                                 "classes = subfolder names / digits.")
    tfds_name: str = _f("celeb_a", "tensorflow-datasets name when source is tfds.", choices=("celeb_a", "mnist"))
    synthetic_images: int = _f(20000, "How many synthetic faces to draw (once; cached under `root`).", min=1)
    cache: bool = _f(True, "Keep decoded, resized images in memory after the first epoch.")
    prepared: str = _f("auto", "auto: read the images from shards written by `python -m homogan prepare` when a "
                       "complete folder for exactly this data, selection, crop and size exists (same images, same "
                       "order, no decoding), else decode; off: always decode the source images.",
                       choices=("auto", "off"))
    shuffle_buffer: int = _f(20000, "tf.data shuffle buffer (images) after the cache.", min=1)
    mirror: Optional[bool] = _f(None, "Mirror each training image with probability 1/2, drawn afresh every epoch "
                                "(StyleGAN's --mirror): twice the distinct images for D, for data that keep "
                                "their meaning mirrored; null = on for faces (CelebA layouts, synthetic), off for "
                                "folders and tfds.")


@dataclass(frozen=True)
class GeneratorConfig:
    width: int = _f(64, "Channels of the last (highest-resolution) block; each block below doubles it.", min=1)
    max_width: int = _f(512, "Cap on the channels of any block.", min=1)
    stem: str = _f("dense", "How z (+labels) becomes the 4x4 map: a dense layer, or a 4x4 transposed "
                   "convolution (HomoGAN's FC→FConv).", choices=("dense", "conv_transpose"))
    upsample: str = _f("conv_transpose", "Upsampling block.", choices=("conv_transpose", "upsample_conv"))
    kernel_size: int = _f(4, "Kernel size of the upsampling convolutions.", min=1)
    batch_norm: bool = _f(True, "Batch normalisation after every block but the output.")
    activation: str = _f("relu", "Activation of the blocks.", choices=("relu", "leaky_relu"))
    leaky_alpha: float = _f(0.2, "Negative slope of leaky_relu.", min=0, max=1)
    noise_stddev: float = _f(0.0, "Gaussian noise layer after every block (training only); 0 = off.", min=0, max=1)
    spectral_norm: bool = _f(False, "Spectral normalisation of the generator's kernels.")
    spectral_norm_variant: str = _f("reparameterized", "reparameterized: W/σ(W) computed in the forward pass with "
                                    "the gradient through σ and one power iteration per update (Miyato et al. 2018, "
                                    "as PyTorch's spectral_norm); keras: Keras 3's SpectralNormalization, which "
                                    "assigns W/σ into the kernel at every training call (no gradient through σ).",
                                    choices=SPECTRAL_NORM_VARIANTS)
    extra_convs: int = _f(0, "Stride-1 3x3 convolutions after every hidden upsampling block (more depth).",
                          min=0, max=4)
    conditioning: str = _f("concat", "How labels enter G: concatenated to z only; or conditional_bn: also as the "
                           "gain and bias of every batch norm (de Vries et al. 2017; Miyato & Koyama 2018's and "
                           "BigGAN's generator). conditional_bn needs labels and batch_norm.",
                           choices=GENERATOR_CONDITIONING)


@dataclass(frozen=True)
class DiscriminatorConfig:
    width: int = _f(64, "Channels of the first block; each block after doubles it.", min=1)
    max_width: int = _f(512, "Cap on the channels of any block.", min=1)
    kernel_size: int = _f(4, "Kernel size of the strided convolutions.", min=1)
    normalization: Optional[str] = _f(None, "Normalisation after every block but the first (never in D's first "
                                      "layer); null = none for one-hot classes (data.class_conditional: Miyato & "
                                      "Koyama's projection D), batch otherwise.", choices=("batch", "layer", "none"))
    activation: str = _f("leaky_relu", "Activation of the blocks.", choices=("relu", "leaky_relu"))
    leaky_alpha: float = _f(0.2, "Negative slope of leaky_relu.", min=0, max=1)
    dropout: float = _f(0.0, "Dropout after every block; 0 = off.", min=0, max=0.95)
    spectral_norm: Optional[bool] = _f(None, "Spectral normalisation of every kernel of D; null = true for one-hot "
                                       "classes (data.class_conditional), false otherwise.")
    spectral_norm_variant: str = _f("reparameterized", "How spectral norm is computed (see "
                                    "model.generator.spectral_norm_variant).", choices=SPECTRAL_NORM_VARIANTS)
    extra_convs: int = _f(0, "Stride-1 3x3 convolutions in every block but the first (more depth).", min=0, max=4)
    conditioning: Optional[str] = _f(None, "How labels enter D: label maps as extra input channels; projection "
                                     "(Miyato & Koyama 2018: logit + <embed(y), features>); acgan (Odena et al. "
                                     "2017: no label input, an auxiliary head predicts the labels); or projection_ac "
                                     "(projection plus an auxiliary head that classifies one-hot classes with a "
                                     "softmax, weight training.acgan_weight; needs data.class_conditional); or "
                                     "projection_tac (projection_ac "
                                     "plus TAC-GAN's twin classifier, Gong et al. 2019: a second head fitted to "
                                     "the classes of fakes, whose loss G maximises, so G matches each class's "
                                     "variety instead of drawing only what the classifier is sure of); or reacgan "
                                     "(Kang et al. 2021: no label input to the logit, an embedding head trained with "
                                     "the data-to-data cross-entropy, which pulls each image towards its class's "
                                     "proxy and away from the batch's images of other classes; needs "
                                     "data.class_conditional; ReACGAN's weight for CIFAR-10 is training.acgan_weight "
                                     "0.5). "
                                     "projection/acgan need labels. null = projection_ac for one-hot classes "
                                     "(data.class_conditional), concat otherwise.", choices=DISCRIMINATOR_CONDITIONING)


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = _f(100, "Size of the latent vector z.", min=1)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass(frozen=True)
class OptimizerConfig:
    learning_rate: float = _f(2e-4, "Adam learning rate.", min=0, min_exclusive=True)
    beta_1: float = _f(0.5, "Adam beta_1.", min=0, max=1)
    beta_2: float = _f(0.999, "Adam beta_2.", min=0, max=1)


@dataclass(frozen=True)
class SchedulePhase:
    """From ``epoch`` on (1-based), use these values until the next phase; null = keep the current."""

    epoch: int = _f(1, "First epoch (1-based) of this phase.", min=1)
    g_learning_rate: Optional[float] = _f(None, "Generator learning rate from this epoch on.", min=0, min_exclusive=True)
    d_learning_rate: Optional[float] = _f(None, "Discriminator learning rate from this epoch on.", min=0,
                                          min_exclusive=True)
    batch_size: Optional[int] = _f(None, "Batch size from this epoch on.", min=1)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = _f(10, "Epochs of `steps_per_epoch` steps each (of one pass over the training set where that "
                         "is null).", min=1)
    batch_size: int = _f(64, "Images per discriminator update (global, across devices).", min=1)
    steps_per_epoch: Optional[int] = _f(None, "Training steps per epoch; null = one full pass of the selection. "
                                        "More steps than one pass holds go on into newly shuffled passes, so "
                                        "training length does not shrink with the data (config.json: 1000, one "
                                        "pass of the default run's 16,000 images, so a small folder trains as "
                                        "many steps as the default run).", min=1)
    loss: Optional[str] = _f(None, "Adversarial loss; null = hinge for one-hot classes (data.class_conditional: "
                             "Miyato & Koyama's loss for their projection D), nonsaturating otherwise.",
                             choices=LOSSES)
    g_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    g_steps: int = _f(1, "Generator updates per training step (G:D ratio g_steps:d_steps).", min=1)
    d_steps: int = _f(1, "Discriminator updates per training step, each on its own real batch.", min=1)
    update_mode: str = _f("alternating", "How a step updates D and G: \"alternating\" (D updates, then G updates "
                          "on freshly generated fakes; HomoGAN's) or \"simultaneous\" (one generator forward pass "
                          "whose fakes feed both D's and G's loss, both updated from it; needs d_steps = g_steps = 1).",
                          choices=("alternating", "simultaneous"))
    d_skip_threshold: Optional[float] = _f(None, "Skip the D update while the last G loss is above this "
                                           "(HomoGAN's rule: 4); null = never skip.", min=0)
    real_label_range: list[float] = _f([1.0, 1.0], "Targets for real images, drawn U(lo, hi) per sample "
                                       "per step, e.g. [0.9, 0.9] (one-sided smoothing, Salimans et al. 2016, when "
                                       "the fake targets stay 0) or [0.9, 1.0]. A target above 1 (e.g. [0.7, 1.2]) "
                                       "makes BCE unbounded below for that sample; in expectation a range acts like "
                                       "the fixed target at its mean.")
    fake_label_range: list[float] = _f([0.0, 0.0], "Targets for fake images, drawn U(lo, hi) per sample "
                                       "per step; above 0 (e.g. [0.0, 0.1]) is two-sided smoothing, which Salimans "
                                       "et al. advise against.")
    label_flip: float = _f(0.0, "Fraction of samples whose real/fake targets are swapped for D.", min=0, max=0.5)
    gradient_penalty: float = _f(0.0, "WGAN-GP weight lambda (one U(0,1) epsilon per sample); 0 = off.", min=0)
    r1_gamma: float = _f(0.0, "R1 penalty weight gamma on real images; 0 = off.", min=0)
    r1_every: int = _f(1, "Lazy R1: apply the R1 penalty only every k-th D update, scaled by k (StyleGAN2).", min=1)
    ema_decay: Optional[float] = _f(None, "EMA of the generator weights used for samples; null = off.",
                                    min=0, max=1)
    ema_start_step: int = _f(0, "The EMA generator copies G's weights for this many G updates, then averages "
                             "with ema_decay.", min=0)
    ema_batch_norm: str = _f("standing", "Batch-norm statistics of the EMA generator: standing (recomputed from "
                             "the EMA generator's own activations on 1,280 fresh latents at every epoch's end, before "
                             "its samples, evaluation and checkpoint; Brock et al. 2019), copy (the live generator's, "
                             "measured on other weights), or average (an EMA of them, as BigGAN-PyTorch averages every "
                             "state entry).", choices=("standing", "copy", "average"))
    instance_noise_stddev: float = _f(0.0, "Gaussian instance noise added to every image D sees, real and "
                                      "fake, in D's and G's updates; 0 = off.", min=0)
    instance_noise_anneal_steps: int = _f(0, "Instance noise sigma falls linearly to 0 over this many training "
                                          "steps; 0 = constant.", min=0)
    augment: list[str] = _f([], "DiffAugment policy (Zhao et al. 2020), any of \"color\", \"translation\", "
                            "\"cutout\", applied to real and fake images whenever D sees them; [] = off.")
    ada_target: Optional[float] = _f(None, "Adaptive discriminator augmentation (Karras et al. 2020): the r_t = "
                                     "E[sign(D(real))] it steers to (the paper's 0.6); null = off (the default: on the "
                                     "synthetic faces at 1,000 and 2,000 images it raised FID; README \"Small data\").",
                                     min=0, max=1)
    ada_below_images: int = _f(0, "With ada_target set, ADA runs only when the training selection has fewer images "
                               "than this; 0 = whenever ada_target is set.", min=0)
    ada_speed_images: int = _f(100000, "Images D sees for ADA's p to go from 0 to 1 (the paper's 500k, scaled to runs "
                               "of a few hundred thousand images).", min=1)
    ada_interval: int = _f(4, "D updates between two adjustments of ADA's p.", min=1)
    ada_ops: list[str] = _f(list(ADA_OPS), "ADA's op groups, each op applied with probability p: \"blit\" (x-flip, "
                            "90° turns, integer shift ≤ 1/8 side) and \"color\" (brightness, saturation, contrast).")
    ada_xflip: Optional[bool] = _f(None, "Whether ADA mirrors images; null = on for faces (CelebA layouts, synthetic), "
                                   "off for folders and digits.")
    acgan_weight: float = _f(1.0, "Weight of the auxiliary label loss with model.discriminator.conditioning "
                             "\"acgan\", \"projection_ac\", \"projection_tac\" or \"reacgan\" (D: on real images, "
                             "and with the twin on fakes; G: on fakes).", min=0)
    precision: str = _f("auto", "Compute precision. auto: the fastest for the device, chosen when training starts "
                        "and recorded in the run's run.json (CPU with bf16 units, TPU, GPU with compute capability "
                        ">= 8.0: mixed_bfloat16; GPU 7.x: mixed_float16; otherwise float32); an explicit value forces "
                        "it.", choices=(AUTO_PRECISION, *PRECISIONS))
    jit_compile: bool = _f(False, "Compile the train step with XLA.")
    distribute: str = _f("none", "tf.distribute strategy: none; mirrored (all local devices); multi_worker "
                         "(MultiWorkerMirroredStrategy, cluster from the TF_CONFIG environment variable; only the "
                         "chief writes a run folder); tpu (TPUStrategy via TPUClusterResolver).",
                         choices=("none", "mirrored", "multi_worker", "tpu"))
    schedule: list[SchedulePhase] = _f([], "Per-epoch changes of learning rates and batch size, e.g. "
                                       "[{\"epoch\": 5, \"g_learning_rate\": 1e-4, \"batch_size\": 128}]; [] = none.")


@dataclass(frozen=True)
class LoggingConfig:
    samples_every_epochs: int = _f(1, "Write a sample grid every N epochs (and always after the last).", min=1)
    sample_columns: int = _f(8, "Images per row of the sample grid (one fixed z per column).", min=1)
    gif: bool = _f(True, "Build `progress.gif` from the sample grids at the end.")
    gif_fps: float = _f(4.0, "Frames per second of the progress GIF.", min=0, min_exclusive=True)
    tensorboard: bool = _f(True, "Write TensorBoard events (metrics and sample grids).")
    checkpoint_every_epochs: int = _f(1, "Save a checkpoint every N epochs (and always after the last).", min=1)
    keep_checkpoints: int = _f(3, "How many recent checkpoints to keep.", min=1)
    keep_every_epochs: int = _f(0, "Also keep every checkpoint whose epoch is a multiple of this; 0 = none.", min=0)
    memorisation_images: int = _f(256, "After every epoch, score this many training images, as many real images "
                                  "D never trains on (those data.limit leaves out) and as many fakes, and log whether "
                                  "D has memorised its training set: d_acc_seen, d_acc_unseen and ADA's r_v (ada_rv) in "
                                  "history.csv and the plots; 0 = off. Only where data.limit leaves images out.", min=0)
    progress: str = _f("auto", "Console progress: a live bar, one line per epoch, or auto (bar on a "
                       "terminal, lines otherwise).", choices=("auto", "bar", "epoch", "none"))


#: What the attribute classifier learns by default (CelebA-like data): attributes drawn visibly by the
#: synthetic faces and clearly visible in CelebA. One classifier per dataset serves every experiment.
CLASSIFIER_ATTRIBUTES = ["Male", "Young", "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bald", "No_Beard",
                         "Mustache", "Wearing_Hat", "Black_Hair", "Blond_Hair", "Gray_Hair", "Pale_Skin", "Bangs"]
EVALUATION_METRICS = ("fid", "kid", "precision", "recall", "attribute_accuracy")


@dataclass(frozen=True)
class EvaluationConfig:
    every_epochs: int = _f(0, "Compute FID, KID, precision/recall and attribute-control accuracy every N epochs "
                           "during training (into history.csv, TensorBoard, metrics); 0 = off.", min=0)
    num_samples: int = _f(2000, "Generated images for FID, KID and precision/recall (labels drawn from the "
                          "training labels).", min=10)
    num_real: int = _f(5000, "Real training images in the cached reference set for FID, KID and "
                       "precision/recall (fewer if the selection is smaller).", min=10)
    reference: str = _f("selection", "Real images of the FID/KID/precision/recall reference: \"selection\" = the "
                        "training selection; \"unlimited\" = the same split, filters and balance without data.limit "
                        "(the distribution a small subset was drawn from, where a generator that memorised its training "
                        "images scores badly: how StyleGAN2-ADA scores its subsets).", choices=("selection", "unlimited"))
    per_combination: int = _f(100, "Generated images per label combination (or class) for attribute-control "
                              "accuracy (`evaluate --n` overrides).", min=1)
    best_metric: str = _f("fid", "Keep `checkpoints/best.*` (+ best.json) by this metric when every_epochs > 0; "
                          "attribute_accuracy needs a conditional run.", choices=EVALUATION_METRICS)
    feature_extractor: str = _f("auto", "Feature space of FID/KID/precision/recall: InceptionV3 pool features, "
                                "the attribute classifier's penultimate layer, or auto (Inception when its weights "
                                "are on disk, else the classifier).", choices=("auto", "inception", "classifier"))
    inception_weights: Optional[str] = _f(None, "Path of inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5; "
                                          "null = look in the Keras cache (~/.keras/models/).")
    cache_dir: Optional[str] = _f(None, "Where trained classifiers and real reference statistics are cached; null "
                                  "= `<data.root>/.homogan` (folder source: `.homogan` beside data.root). Also holds "
                                  "prepared shards (`prepare`).")
    classifier_attributes: list[str] = _f(CLASSIFIER_ATTRIBUTES, "Attributes the attribute classifier learns on "
                                          "CelebA-like data, plus any of data.attributes not listed.")
    classifier_flip: Optional[bool] = _f(None, "Random horizontal flips when the attribute classifier trains; "
                                         "null = on for faces (CelebA layouts, synthetic faces: mirror-symmetric), "
                                         "off for folders and digits (a mirrored digit or letter is another image).")
    classifier_width: int = _f(32, "Channels of the classifier's first convolution (doubling per block, max 256).",
                               min=1)
    classifier_epochs: int = _f(5, "Training epochs of the attribute classifier.", min=1)
    classifier_images: int = _f(20000, "Cap on the real training images the classifier learns from.", min=1)


@dataclass(frozen=True)
class Config:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    @property
    def num_labels(self) -> int:
        """Width of the conditioning vector (attributes, or classes when class-conditional)."""
        return len(self.data.attributes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Loading and overriding


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                written_out: bool = False) -> Config:
    """Read a JSON config file (or the defaults), apply ``KEY.PATH=VALUE`` overrides, validate. ``written_out``:
    the file is one homogan wrote in full (see :data:`LATER_KEYS`)."""
    raw: dict = {}
    if path is not None:
        raw = read_json(path, what="config")
    for item in overrides:
        key, value = parse_override(item)
        set_path(raw, key, value)
    return from_dict(raw, written_out)


def read_json(path: str | Path, what: str = "file") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} file {str(path)!r} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {str(path)!r} is not UTF-8 text")
    if not isinstance(data, dict):
        raise ConfigError(f"{what} file {str(path)!r} must hold a JSON object, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``a.b=VALUE`` → (``"a.b"``, value parsed as JSON where possible, else the raw string)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(f"--set {item!r} is malformed: expected KEY.PATH=VALUE, e.g. --set training.epochs=2")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if text.strip()[:1] in ("[", "{"):
            raise ConfigError(f"--set {key}: {text!r} looks like JSON but does not parse; quote it, "
                              f"e.g. --set {key}='[\"Bald\"]'")
        value = text
    return key, value


def set_path(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------------
# Validation


def from_dict(raw: dict, written_out: bool = False) -> Config:
    """Build and validate a :class:`Config` from plain JSON data (unknown keys are errors); ``written_out``: data
    homogan wrote in full (see :data:`LATER_KEYS`)."""
    raw = _drop_retired(raw)
    config = _by_labels(_build(Config, fill_later_keys(raw) if written_out else raw, ""))
    _check_semantics(config)
    return config


def _smooths_labels(t) -> bool:
    """Whether the training config smooths or flips D's real/fake targets."""
    return t.real_label_range != [1.0, 1.0] or t.fake_label_range != [0.0, 0.0] or t.label_flip > 0


def _by_labels(c: Config) -> Config:
    """``c`` with the discriminator keys and the loss left null decided by the labels, once, here (so everything
    after sees concrete values and a run folder's config.json stores them). One-hot classes
    (``data.class_conditional``) get Miyato & Koyama's (2018) recipe for them: a projection head on a spectrally
    normalised D without batch norm — measured on class folders of faces (32 and 64 px) and of digits, where it
    gave the best FID, recall and class control and batch norm with projection collapsed at 64 px —, trained with
    their hinge loss, which raised the worst class in five of six class-folder runs; plus AC-GAN's softmax class
    loss on the same features (``projection_ac``), which raised the worst class by 0.04–0.11 in every class-folder
    run measured, at a lower recall (README "Small data").
    Multi-label attributes and unconditional data keep the DCGAN D (batch norm, label maps concatenated) and the
    nonsaturating loss, which met the default run's bar."""
    disc, classes, t = c.model.discriminator, c.data.class_conditional, c.training
    decided = {"normalization": "none" if classes else "batch", "spectral_norm": classes,
               "conditioning": "projection_ac" if classes else "concat"}
    filled = {k: v for k, v in decided.items() if getattr(disc, k) is None}
    if t.loss is None and classes and _smooths_labels(t):
        raise ConfigError("training.loss: null picks hinge for one-hot classes (data.class_conditional), which has no "
                          "target labels, so label smoothing/flipping (training.real_label_range / fake_label_range / "
                          f"label_flip) cannot apply; allowed with smoothing: training.loss set to "
                          f"{', '.join(TARGET_LOSSES)}")
    if filled:
        c = dataclasses.replace(c, model=dataclasses.replace(c.model, discriminator=dataclasses.replace(disc, **filled)))
    if t.loss is None:
        c = dataclasses.replace(c, training=dataclasses.replace(t, loss="hinge" if classes else "nonsaturating"))
    return c


def _drop_retired(raw: Any) -> Any:
    """A copy of ``raw`` without retired keys at their neutral value (see ``RETIRED_KEYS``)."""
    for key, (neutral, replacement) in RETIRED_KEYS.items():
        *sections, leaf = key.split(".")
        node = raw
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        if node[leaf] != neutral:
            raise ConfigError(f"{key}: {json.dumps(node[leaf])} is no longer supported; use {replacement} "
                              f"instead (allowed here: {json.dumps(neutral)}, or leave the key out)")
        raw = json.loads(json.dumps(raw))
        node = raw
        for part in sections:
            node = node[part]
        del node[leaf]
    return raw


def fill_later_keys(raw: Any) -> Any:
    """A copy of ``raw`` (a config homogan wrote in full) with the before-value of every :data:`LATER_KEYS` key
    it lacks."""
    for key, before in LATER_KEYS.items():
        *sections, leaf = key.split(".")
        node = raw
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf not in node:
            raw = json.loads(json.dumps(raw))
            set_path(raw, key, before)
    return raw


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be an object (section), got {json.dumps(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        _refuse_credentials(f"{prefix}{key}")
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            allowed = ", ".join(fields)
            raise ConfigError(f"unknown key '{prefix}{key}'{hint} (allowed in {prefix.rstrip('.') or 'the top level'}: "
                              f"{allowed})")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, raw.get(name, {}), key + ".")
        elif name in raw:
            values[name] = _coerce(raw[name], tp, key, f.metadata)
    return cls(**values)


def _refuse_credentials(key: str) -> None:
    leaf = key.rsplit(".", 1)[-1].lower()
    if any(word in leaf for word in CREDENTIAL_WORDS):
        raise ConfigError(f"{key}: configs must not hold credentials; keep Kaggle credentials in "
                          f"~/.kaggle/kaggle.json (the Kaggle tool's own file), not in config.json")


def _optional_inner(tp: Any) -> Any:
    """The T of ``Optional[T]`` (``T | None``), or None when ``tp`` is not optional: one answer for the type name,
    the coercion and the key table."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return inner


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if (inner := _optional_inner(tp)) is not None:
        return f"{_type_name(inner)} or null"
    if origin is list:
        inner = typing.get_args(tp)[0]
        if dataclasses.is_dataclass(inner):
            return f"a list of objects with keys {', '.join(f.name for f in dataclasses.fields(inner))}"
        return f"a list of {_type_name(inner)}"
    if origin is dict:
        return f"an object of {_type_name(typing.get_args(tp)[1])}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[tp]


def _coerce(value: Any, tp: Any, key: str, meta: dict) -> Any:
    shown = json.dumps(value)
    origin = typing.get_origin(tp)
    if (inner := _optional_inner(tp)) is not None:
        if value is None:
            return None
        try:
            return _coerce(value, inner, key, {**meta, "nullable": True})
        except ConfigError as e:
            raise ConfigError(str(e).replace(f"expected {_type_name(inner)}", f"expected {_type_name(tp)}"))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: {shown} is not valid: expected {_type_name(tp)}")
        (inner,) = typing.get_args(tp)
        if dataclasses.is_dataclass(inner):
            return [_build(inner, v, f"{key}[{i}].") for i, v in enumerate(value)]
        return [_coerce(v, inner, f"{key}[{i}]", {}) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: {shown} is not valid: expected {_type_name(tp)}")
        _, inner = typing.get_args(tp)
        return {k: _coerce(v, inner, f"{key}.{k}", {}) for k, v in value.items()}
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        raise ConfigError(f"{key}: {shown} is not valid: expected {_type_name(tp)}")
    if tp is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {shown} is not valid: expected a finite number")
    choices = meta.get("choices")
    if choices and value not in choices:
        allowed = ", ".join(json.dumps(c) for c in (*choices, *([None] if meta.get("nullable") else [])))
        raise ConfigError(f"{key}: {shown} is not allowed; allowed: {allowed}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"{key}: {shown} is out of range; allowed: {op} {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {shown} is out of range; allowed: <= {hi}")
    return value


def _check_attribute_names(names: list[str], key: str) -> None:
    for name in names:
        if name not in CELEBA_ATTRIBUTES:
            close = difflib.get_close_matches(name, CELEBA_ATTRIBUTES, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{key}: unknown CelebA attribute {name!r}; {hint}valid names: {', '.join(CELEBA_ATTRIBUTES)}")


def _check_semantics(c: Config) -> None:
    """Rules that involve more than one key, or the data source."""
    d, t = c.data, c.training
    if not NAME_PATTERN.fullmatch(c.experiment.name):
        raise ConfigError(f"experiment.name: {json.dumps(c.experiment.name)} is not allowed: it becomes a folder name, "
                          f"so use letters, digits, '_' or '-', starting with a letter (e.g. \"default\")")
    celeba_like = is_celeba_like(c)
    if celeba_like:
        _check_attribute_names(d.attributes, "data.attributes")
        _check_attribute_names(list(d.filters), "data.filters")
        if len(set(d.attributes)) != len(d.attributes):
            raise ConfigError(f"data.attributes: {json.dumps(d.attributes)} lists an attribute twice")
        if d.class_conditional:
            raise ConfigError(f"data.class_conditional: true is only for source folder or tfds mnist, "
                              f"not {d.source!r}; use data.attributes for CelebA")
    else:
        if d.attributes:
            raise ConfigError(f"data.attributes: {json.dumps(d.attributes)} needs CelebA attribute labels; "
                              f"source {d.source!r} has none (allowed: []; use data.class_conditional for classes)")
        if d.filters:
            raise ConfigError(f"data.filters: {json.dumps(d.filters)} needs CelebA attribute labels; "
                              f"source {d.source!r} has none (allowed: {{}})")
    for name, v in d.filters.items():
        if v not in (1, 0, -1):
            raise ConfigError(f"data.filters.{name}: {v} is not allowed; allowed: 1 (present), 0 or -1 (absent)")
        if name in d.attributes:
            raise ConfigError(f"data.filters.{name}: filtering on {name} = {v} while conditioning on it "
                              f"(data.attributes) leaves the condition constant; drop one of the two")
    if d.balance is not None:
        if d.balance == "combinations":
            if not d.attributes:
                raise ConfigError("data.balance: \"combinations\" needs data.attributes to combine; allowed "
                                  "with [] attributes: null or an attribute name")
        elif not celeba_like or d.source == "tfds":
            raise ConfigError(f"data.balance: {d.balance!r} needs CelebA's attribute table (source synthetic or "
                              f"celeba); source {d.source!r} cannot be balanced (allowed: null)")
        else:
            _check_attribute_names([d.balance], "data.balance")
            if d.balance in d.filters:
                raise ConfigError(f"data.balance: {d.balance!r} is also filtered (data.filters) so it cannot be "
                                  f"balanced 50/50")
    for key, rng in (("real_label_range", t.real_label_range), ("fake_label_range", t.fake_label_range)):
        if len(rng) != 2 or rng[0] > rng[1]:
            raise ConfigError(f"training.{key}: {json.dumps(rng)} is not valid; expected [low, high] with low <= high")
    if _smooths_labels(t) and t.loss not in TARGET_LOSSES:
        raise ConfigError(f"training.loss: {t.loss!r} has no target labels, so label smoothing/flipping "
                          f"(training.real_label_range / fake_label_range / label_flip) cannot apply; allowed "
                          f"with smoothing: {', '.join(TARGET_LOSSES)}")
    if t.loss == "wasserstein" and t.gradient_penalty == 0 and not c.model.discriminator.spectral_norm:
        raise ConfigError("training.loss: \"wasserstein\" needs a Lipschitz constraint on the critic and the config "
                          "has none (without one the critic's loss has no lower bound); allowed: "
                          "training.gradient_penalty > 0 (WGAN-GP, e.g. 10) or model.discriminator.spectral_norm: true "
                          "(WGAN-SN)")
    if t.gradient_penalty > 0 and c.model.discriminator.normalization == "batch":
        raise ConfigError("model.discriminator.normalization: \"batch\" is invalid with training.gradient_penalty "
                          "> 0 (the penalty is per sample, batch norm mixes samples); allowed: \"layer\", \"none\"")
    for i, policy in enumerate(t.augment):
        if policy not in AUGMENT_POLICIES:
            raise ConfigError(f"training.augment[{i}]: {json.dumps(policy)} is not allowed; allowed: "
                              f"{', '.join(json.dumps(p) for p in AUGMENT_POLICIES)}")
    if len(set(t.augment)) != len(t.augment):
        raise ConfigError(f"training.augment: {json.dumps(t.augment)} lists a policy twice")
    for i, group in enumerate(t.ada_ops):
        if group not in ADA_OPS:
            raise ConfigError(f"training.ada_ops[{i}]: {json.dumps(group)} is not allowed; allowed: "
                              f"{', '.join(json.dumps(g) for g in ADA_OPS)}")
    if not t.ada_ops or len(set(t.ada_ops)) != len(t.ada_ops):
        raise ConfigError(f"training.ada_ops: {json.dumps(t.ada_ops)} is not allowed; allowed: a non-empty list of "
                          f"{', '.join(json.dumps(g) for g in ADA_OPS)}, each once")
    g = c.model.generator
    if g.conditioning == "conditional_bn" and not g.batch_norm:
        raise ConfigError("model.generator.conditioning: \"conditional_bn\" needs model.generator.batch_norm "
                          "true but it is false; allowed without batch norm: \"concat\"")
    if c.model.discriminator.conditioning in ONE_HOT_CONDITIONING and not d.class_conditional:
        raise ConfigError(f"model.discriminator.conditioning: {json.dumps(c.model.discriminator.conditioning)} "
                          "classifies one-hot classes with a softmax and needs data.class_conditional true but it is "
                          "false; allowed for attributes: \"projection\", \"acgan\" or \"concat\"")
    for key, conditioning in (("generator", g.conditioning), ("discriminator", c.model.discriminator.conditioning)):
        if conditioning != "concat" and not d.attributes and not d.class_conditional:
            raise ConfigError(f"model.{key}.conditioning: {json.dumps(conditioning)} needs labels (data.attributes "
                              f"or data.class_conditional) but the config is unconditional; allowed without labels: "
                              f"\"concat\"")
    if t.instance_noise_anneal_steps > 0 and t.instance_noise_stddev == 0:
        raise ConfigError(f"training.instance_noise_anneal_steps: {t.instance_noise_anneal_steps} anneals nothing "
                          f"because training.instance_noise_stddev is 0; allowed with no noise: 0")
    if t.r1_every > 1 and t.r1_gamma == 0:
        raise ConfigError(f"training.r1_every: {t.r1_every} has no effect because training.r1_gamma is 0; allowed "
                          f"without R1: 1")
    if t.ema_batch_norm == "average" and t.ema_decay is None:
        raise ConfigError(f"training.ema_batch_norm: {json.dumps(t.ema_batch_norm)} has no effect because "
                          f"training.ema_decay is null; allowed without EMA: \"standing\" (the default) or \"copy\"")
    if t.ema_start_step > 0 and t.ema_decay is None:
        raise ConfigError(f"training.ema_start_step: {t.ema_start_step} has no effect because training.ema_decay is "
                          f"null; allowed without EMA: 0")
    if t.update_mode == "simultaneous" and (t.d_steps, t.g_steps) != (1, 1):
        raise ConfigError(f"training.update_mode: \"simultaneous\" needs training.d_steps = 1 and training.g_steps = 1 "
                          f"(got d_steps {t.d_steps}, g_steps {t.g_steps}); allowed with other ratios: \"alternating\"")
    if t.distribute != "none" and t.d_skip_threshold is not None:
        raise ConfigError("training.d_skip_threshold: must be null when training.distribute is not \"none\"")
    epochs = [phase.epoch for phase in t.schedule]
    if epochs != sorted(set(epochs)):
        raise ConfigError(f"training.schedule: phase epochs {epochs} must be increasing and distinct "
                          f"(phases after training.epochs are never reached)")
    if c.logging.sample_columns > 64:
        raise ConfigError(f"logging.sample_columns: {c.logging.sample_columns} is out of range; allowed: <= 64")
    _check_evaluation(c, celeba_like)


def _check_evaluation(c: Config, celeba_like: bool) -> None:
    e = c.evaluation
    if celeba_like:
        _check_attribute_names(e.classifier_attributes, "evaluation.classifier_attributes")
    if len(set(e.classifier_attributes)) != len(e.classifier_attributes):
        raise ConfigError(f"evaluation.classifier_attributes: {json.dumps(e.classifier_attributes)} lists an "
                          f"attribute twice")
    if e.best_metric == "attribute_accuracy" and not c.data.attributes and not c.data.class_conditional:
        raise ConfigError("evaluation.best_metric: \"attribute_accuracy\" needs a conditional run (data.attributes "
                          "or data.class_conditional); allowed without labels: \"fid\", \"kid\", \"precision\", "
                          "\"recall\"")


def is_celeba_like(c: Config) -> bool:
    """Whether the data has CelebA's layout — faces with CelebA's attribute names: a CelebA copy, the synthetic
    faces, or tfds ``celeb_a``."""
    d = c.data
    return d.source in ("synthetic", "celeba") or (d.source == "tfds" and d.tfds_name == "celeb_a")


def mirror_symmetric(c: Config) -> bool:
    """Whether the data's images keep their meaning when mirrored: faces (CelebA layouts, the synthetic faces)
    do; folders and digits are not assumed to (a mirrored digit or letter is another image)."""
    return is_celeba_like(c)


def doubts(c: Config) -> list[str]:
    """Combinations that are valid to run but whose results are not to be trusted, one line each saying
    why (the run summary prints them; the report marks such runs). The README's "Which combinations are
    principled" lists them."""
    t, disc = c.training, c.model.discriminator
    out = []
    if t.loss == "wasserstein" and t.gradient_penalty == 0 and disc.spectral_norm and disc.normalization == "batch":
        out.append("Wasserstein critic with spectral norm and batch norm in D: batch norm's free scale and its division "
                   "by the batch's std undo the Lipschitz bound spectral norm gives, so the critic's loss has no lower "
                   "bound (use model.discriminator.normalization \"none\" or \"layer\")")
    if t.r1_gamma > 0 and disc.normalization == "batch":
        out.append("R1 with batch norm in D: D's gradient for one image then depends on the other images of the batch, "
                   "so the per-example penalty is not one, and the R1 call updates D's moving statistics a second time "
                   "(use model.discriminator.normalization \"none\" or \"layer\")")
    if (disc.conditioning in ("projection", "projection_ac", "projection_tac") and disc.normalization == "batch"
            and not disc.spectral_norm and c.data.image_size >= 64):
        out.append("projection in a batch-normalised D without spectral norm at 64 px or more: measured to collapse "
                   "(one image per class at 64 px in both layouts, README \"Small data\"); Miyato & Koyama's "
                   "projection D has spectral norm (use model.discriminator.normalization \"none\" with "
                   "spectral_norm true, or conditioning \"concat\")")
    return out


# --------------------------------------------------------------------------------------------
# Documentation


def describe() -> list[tuple[str, str, str, str]]:
    """(key, default, allowed, meaning) for every key: the README's table is made from this."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            m = f.metadata
            allowed = (" | ".join(json.dumps(c) for c in m["choices"]) if m["choices"] else _type_name(tp))
            if m["choices"] and _optional_inner(tp) is not None:
                allowed += " | null"
            if m["min"] is not None:
                allowed += f", {'>' if m['min_exclusive'] else '>='} {m['min']}"
            if m["max"] is not None:
                allowed += f", <= {m['max']}"
            rows.append((f"{prefix}{f.name}", json.dumps(default), allowed, m["doc"]))

    walk(Config, "")
    return rows


def lookup(tree: dict, dotted: str) -> Any:
    """The value at ``a.b.c`` in a config dict, or None where the path does not exist."""
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def diff(a: dict, b: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two config dicts: (key, value in a, value in b)."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append((f"{prefix}{key}", va, vb))
    return out


