"""Train-step throughput (images/s): homogan's GAN step beside a plain-Keras reference, same process.

    python bench/bench_train_step.py                       # both models, default rounds
    python bench/bench_train_step.py --model dcgan64 --no-xla --steps 10 --rounds 3
    python bench/bench_train_step.py --model config --steps 20 --rounds 10   # the shipped config.json

Models:
  dcgan64    standard unconditional DCGAN-64 (Radford widths: G 512→256→128→64, D 64→128→256→512,
             dense stem, batch norm in G and in D after its first layer), batch 64.
  homogan128 HomoGAN's 128-px conditional model (Experiment15/16: 3 labels concatenated to z and
             as label maps to D's input, 1x1→4x4 transposed-conv stem, G widths 512-512-256-128-64
             with batch norm and Gaussian noise 0.1, D 64-128-256-512-512 with spectral norm and
             no normalisation), batch 100, label smoothing [0.9, 1] / [0, 0.1] and 5 % flips in
             ours. Measured at d_steps = g_steps = 1 (Experiment16 uses 3 D steps per G step; that
             changes the work per step, not the per-update speed, and 1:1 is what the reference and
             the simultaneous mode do).

Contenders per model, each timed on the same in-memory batch (no input pipeline):
  reference  plain Keras 3: the same architecture written here with the functional API, float32,
             one generator forward, two GradientTapes (the TensorFlow DCGAN tutorial's step), two
             Adam optimizers, in one tf.function.
  ours ...   homogan.gan.GAN.train_step in a tf.function: float32 / mixed_bfloat16, XLA off/on,
             update_mode alternating (D step on fresh fakes, then G step on fresh fakes: 2 generator
             forwards, 3 discriminator forwards) / simultaneous (one generator forward feeding both
             losses: same work as the reference).
  config     the train step exactly as `python main.py` builds it from a config (--config, --set:
             homogan.train.build_gan, the config's batch size, d_steps and uint8 input), as configured
             (training.precision "auto" resolved for this machine, as training resolves it) and with
             precision float32/mixed_bfloat16 × update_mode alternating/simultaneous; ratios are to the
             step as configured (there is no plain-Keras twin of every config).
  seed style (homogan128 only) the seed project's Keras idiom: functional models, fakes from
             g.predict(z), d.train_on_batch on real then on fake, then the combined model's
             train_on_batch for G.

Timing (homogan.steptime, shared with `python -m homogan doctor`): every round runs every contender
for --steps steps (order rotated per round) so that machine load hits all of them alike. The table
gives images/s over all rounds, the ratio of totals to the reference, and the median of the
per-round ratios (each against the reference's time in the same round), which a single disturbed
round cannot move, and the fastest round of each against the reference's fastest: on a shared host
whose other tenants slow some windows by 2× (seen here), the fastest window is the least disturbed
estimate of what the step itself costs. The output starts with the device block (CPU model and the
flags that matter), so every table says which machine it belongs to.

To measure the float32 path of a CPU class you do not have, restrict oneDNN's instruction set, e.g.
`ONEDNN_MAX_CPU_ISA=AVX2 python bench/bench_train_step.py --precision float32` (oneDNN then runs its
AVX2 kernels; its bf16 kernels do not exist there, hence --precision), and say so beside the figure.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def arguments() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("dcgan64", "homogan128", "config", "all"), default="all",
                   help="all = dcgan64 and homogan128")
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config.json"),
                   help="--model config: the config file (default: the shipped config.json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="--model config: an override")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per contender (tracing included)")
    p.add_argument("--steps", type=int, default=8,
                   help="timed steps per contender per round (windows under ~5 s move by ±15 %% on a busy CPU)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", action="append", choices=("float32", "mixed_bfloat16"), default=None,
                   help="time only these precisions (repeatable; default both)")
    p.add_argument("--no-xla", action="store_true",
                   help="leave out the XLA (jit_compile) contenders: on CPU they are slower and compile for minutes "
                        "(--model config: its variants keep the config's own training.jit_compile)")
    return p


if __name__ == "__main__":
    arguments().parse_args()  # --help and bad arguments answer before TensorFlow loads (seconds)

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from homogan import steptime  # noqa: E402
from homogan.gan import GAN  # noqa: E402
from homogan.models import Discriminator, Generator  # noqa: E402

L = keras.layers
tf.get_logger().setLevel("ERROR")  # each contender is its own tf.function: TF's "retracing" warning is noise here

SPECS = {  # channels and uint8: the in-memory batch (float [-1, 1] images here; the config model feeds uint8)
    "dcgan64": dict(size=64, channels=3, uint8=False, labels=0, batch=64, latent=100,
                    g=dict(stem="dense", batch_norm=True),
                    d=dict(normalization="batch", spectral_norm=False), noise=0.0, smoothing=False),
    "homogan128": dict(size=128, channels=3, uint8=False, labels=3, batch=100, latent=100,
                       g=dict(stem="conv_transpose", batch_norm=True, noise_stddev=0.1),
                       d=dict(normalization="none", spectral_norm=True), noise=0.1, smoothing=True),
}


# ------------------------------------------------------------------------------------------------
# The reference networks, written out with the functional API


def _sn(layer, on):
    return L.SpectralNormalization(layer) if on else layer


def ref_generator(s):
    n = int(np.log2(s["size"])) - 2
    widths = [min(64 * 2 ** (n - 1 - i), 512) for i in range(n)]
    z = keras.Input((s["latent"],))
    y = keras.Input((s["labels"],))
    x = L.Concatenate()([z, y]) if s["labels"] else z
    if s["g"]["stem"] == "dense":
        x = L.Reshape((4, 4, widths[0]))(L.Dense(16 * widths[0], use_bias=False)(x))
    else:
        x = L.Conv2DTranspose(widths[0], 4, padding="valid", use_bias=False)(L.Reshape((1, 1, x.shape[-1]))(x))
    x = L.ReLU()(L.BatchNormalization(momentum=0.9)(x))
    for w in widths[1:]:
        x = L.ReLU()(L.BatchNormalization(momentum=0.9)(L.Conv2DTranspose(w, 4, 2, padding="same", use_bias=False)(x)))
        if s["noise"]:
            x = L.GaussianNoise(s["noise"])(x)
    x = L.Activation("tanh", dtype="float32")(L.Conv2DTranspose(3, 4, 2, padding="same")(x))
    return keras.Model([z, y], x)


def ref_discriminator(s, sigmoid=False):
    n = int(np.log2(s["size"])) - 2
    sn, bn = s["d"]["spectral_norm"], s["d"]["normalization"] == "batch"
    img = keras.Input((s["size"], s["size"], 3))
    y = keras.Input((s["labels"],))
    x = img
    if s["labels"]:
        maps = L.Lambda(lambda t: tf.tile(tf.reshape(t, (-1, 1, 1, s["labels"])), (1, s["size"], s["size"], 1)))(y)
        x = L.Concatenate()([img, maps])
    for i in range(n):
        x = _sn(L.Conv2D(min(64 * 2 ** i, 512), 4, 2, padding="same", use_bias=i == 0 or not bn), sn)(x)
        if i > 0 and bn:
            x = L.BatchNormalization(momentum=0.9)(x)
        x = L.LeakyReLU(0.2)(x)
    out = _sn(L.Dense(1, dtype="float32", activation="sigmoid" if sigmoid else None), sn)(L.Flatten()(x))
    return keras.Model([img, y], out)


def reference_step(s):
    """The plain two-tape step (float32): one G forward feeds both losses."""
    g, d = ref_generator(s), ref_discriminator(s)
    g_opt, d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def step(real, labels):
        z = tf.random.normal((s["batch"], s["latent"]))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = g([z, labels], training=True)
            real_logits = d([real, labels], training=True)
            fake_logits = d([fake, labels], training=True)
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
            d_loss = bce(tf.ones_like(real_logits), real_logits) + bce(tf.zeros_like(fake_logits), fake_logits)
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g.trainable_variables), g.trainable_variables))
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d.trainable_variables), d.trainable_variables))
        return g_loss

    return step


def seed_style_step(s):
    """The seed project's idiom: compiled functional models and train_on_batch."""
    g, d = ref_generator(s), ref_discriminator(s, sigmoid=True)
    d.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), "binary_crossentropy")
    b = s["batch"]
    ones, zeros = np.ones((b, 1), "float32"), np.zeros((b, 1), "float32")
    warm_x = np.zeros((b, s["size"], s["size"], 3), "float32")
    warm_y = np.zeros((b, s["labels"]), "float32")
    d.train_on_batch([warm_x, warm_y], ones)  # trace D's train function while D is trainable
    d.trainable = False
    z_in, y_in = keras.Input((s["latent"],)), keras.Input((s["labels"],))
    combined = keras.Model([z_in, y_in], d([g([z_in, y_in]), y_in]))
    combined.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), "binary_crossentropy")
    rng = np.random.default_rng(0)

    def step(real, labels):
        z = rng.standard_normal((b, s["latent"])).astype("float32")
        fake = g.predict([z, labels], verbose=0, batch_size=b)
        d.train_on_batch([real, labels], ones * 0.9)
        d.train_on_batch([fake, labels], zeros)
        z = rng.standard_normal((b, s["latent"])).astype("float32")
        return combined.train_on_batch([z, labels], ones)

    return step


def ours_step(s, precision, jit, mode):
    from homogan.precision import policy

    with policy(precision):
        g = Generator(s["size"], 3, s["latent"], s["labels"], width=64, **s["g"])
        d = Discriminator(s["size"], 3, s["labels"], width=64, **s["d"])
        d(g(tf.zeros((2, s["latent"])), tf.zeros((2, s["labels"]))), tf.zeros((2, s["labels"])))
    gan = GAN(g, d, seed=0)
    g_opt, d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    rules = dict(real_label_range=(0.9, 1.0), fake_label_range=(0.0, 0.1), label_flip=0.05) if s["smoothing"] else {}
    gan.compile(g_opt, d_opt, global_batch_size=s["batch"], update_mode=mode, **rules)
    fn = tf.function(gan.train_step, jit_compile=jit)

    def step(real, labels):
        return fn((real, labels))["g_loss"]

    return step


# ------------------------------------------------------------------------------------------------


def config_contenders(path, overrides, no_xla, precisions):
    """(shape of a step's input, contenders) for the step that training builds from a config."""
    from homogan import device, precision
    from homogan.config import load_config
    from homogan.train import with_precision

    base = load_config(path, overrides)
    if base.data.class_conditional:
        raise SystemExit("--model config: a class-conditional config takes its number of labels from the data "
                         "source; this bench times attribute-conditioned (or unconditional) configs only")
    resolved = precision.resolve(base.training.precision, device.read_facts()).precision
    variants = steptime.config_variants(base, resolved, precisions)
    if not no_xla:
        variants.append(("XLA: " + variants[0][0].removeprefix("as configured: "),
                         with_precision(load_config(path, [*overrides, "training.jit_compile=true"]), resolved)))
    num_labels = len(base.data.attributes)
    return steptime.config_batch(base, num_labels), [(name, steptime.config_step(c, num_labels)) for name, c in variants]


def contenders(model, variants):
    s = SPECS[model]
    out = [("reference (plain Keras, fp32, 2 tapes)", reference_step(s))]
    for precision, jit, mode in variants:
        name = f"ours {'fp32' if precision == 'float32' else 'bf16'} {mode}{' XLA' if jit else ''}"
        out.append((name, ours_step(s, precision, jit, mode)))
    if model == "homogan128":
        out.append(("seed style (train_on_batch, predict)", seed_style_step(s)))
    return out


ALL_VARIANTS = [(p, j, m) for p in ("float32", "mixed_bfloat16") for j in (False, True)
                for m in ("alternating", "simultaneous")]


def main(argv=None):
    args = arguments().parse_args(argv)
    from homogan import device

    precisions = args.precision or ["float32", "mixed_bfloat16"]
    for line in device.describe(device.read_facts()):
        print(line)
    print(f"load average at start: {steptime.load_average()}")
    print(f"warm-up {args.warmup} steps, timed {args.rounds} rounds × {args.steps} steps per contender")
    models = ["dcgan64", "homogan128"] if args.model == "all" else [args.model]
    tables = []
    for model in models:
        if model == "config":
            batch, items = config_contenders(args.config, args.set, args.no_xla, precisions)
            model = f"config {args.config}{''.join(' --set ' + kv for kv in args.set)}"
        else:
            s = SPECS[model]
            batch = steptime.Batch(s["batch"], s["size"], s["channels"], s["labels"], s["uint8"])
            items = contenders(model, [v for v in ALL_VARIANTS if not (args.no_xla and v[1]) and v[0] in precisions])
        print(f"{model}: batch {batch.batch}, {batch.size} px, {batch.labels} labels", flush=True)
        tables.append((model, batch, steptime.time_steps(items, batch, args.warmup, args.steps, args.rounds,
                                                         echo=lambda *a: print(*a, flush=True))))
    print(f"\nload average at end: {steptime.load_average()}")
    for model, batch, rows in tables:
        print(f"\n{model} (batch {batch.batch}, {batch.size} px, {batch.labels} labels)")
        print(f"| {'contender':<44} | img/s | × reference | median × per round | fastest × fastest "
              f"| img/s per round (min–max) |")
        print(f"|{'-' * 46}|------:|------------:|-------------------:|------------------:|---------------------------|")
        for r in rows:
            print(f"| {r.name:<44} | {r.images_per_second:5.1f} | {r.ratio:11.2f} | {r.median_ratio:18.2f} | "
                  f"{r.fastest_ratio:17.2f} | {r.low:.1f}–{r.high:.1f} |")


if __name__ == "__main__":
    main()
