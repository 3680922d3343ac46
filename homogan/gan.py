"""The GAN as a ``keras.Model``: networks in ``__init__``, optimizers and rules in ``compile``, the
alternating update in ``train_step`` (run under ``tf.function`` by ``fit``).

One training step = ``d_steps`` discriminator updates, each on its own slice of the real batch
(the pipeline delivers ``batch_size × d_steps`` images per step), then ``g_steps`` generator
updates (``update_mode="alternating"``, HomoGAN's). With ``update_mode="simultaneous"`` (1:1 only) a
step makes one generator forward pass whose fakes feed both D's loss and G's loss, and applies both
updates from it (:meth:`GAN.simultaneous_gradients`): one G forward and one D scoring of the
fakes fewer per step. Every random draw — latent vectors, smoothed targets, flips, GP interpolation weights,
augmentation parameters, instance noise — comes from the model's ``SeedGenerator``, whose state is
a variable: values differ per sample and per step (never frozen at trace time), repeat for a given
``experiment.seed``, and are saved in checkpoints.

**What D sees.** Every image D scores — real and fake, in D's update and in G's — goes through
:meth:`GAN.discriminator_view`: DiffAugment (fresh parameters per image, drawn separately for the
real and the fake batch as in Zhao et al.'s code), then instance noise (fresh per pixel). Both are
differentiable, so G's gradient flows through them. The penalties are taken on these same inputs:
the GP interpolates between the *viewed* real and fake batches and R1 is taken at the viewed real
images, i.e. they constrain D's gradient where D is actually trained, without drawing extra
augmentations or noise for the penalty (the interpolates carry noise only as a mix of the two).

**Spectral norm.** Each update of a network first moves the power-iteration vector of its
spectrally normalised layers once (:func:`homogan.models.spectral.power_iteration`); its forward
passes in that update (real, fake, the penalties' critics, G's scoring) all use the same u.

**Step counters.** Schedules read the optimizers' ``iterations`` (variables saved in every
checkpoint, so resume continues them): the training step is ``g_optimizer.iterations // g_steps``
(G is never skipped, unlike D under ``d_skip_threshold``; under mixed_float16 a G update skipped for
non-finite gradients does not count), lazy R1 counts D updates, the EMA start counts G updates.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from homogan import augment as diffaugment, losses, regularizers
from homogan.config import ONE_HOT_CONDITIONING
from homogan.models import spectral
from homogan.pixels import to_unit_range
from homogan.seeds import ReplicaSeedGenerator

#: ``training.update_mode``: see :meth:`GAN.train_step`.
UPDATE_MODES = ("alternating", "simultaneous")


def rules_from_config(training, mirror_symmetric: bool = True, ada: bool = False) -> dict:
    """``GAN.compile`` keyword arguments for a :class:`homogan.config.TrainingConfig` (the update
    rules; optimizers and ``jit_compile`` are the caller's). One mapping, used by ``train`` and tests.
    Whether ADA runs for the data at hand is the caller's decision (``ada``; training's is
    :func:`homogan.train.ada_decision`); ``mirror_symmetric`` is the data's (ADA's x-flip default)."""
    t = training
    return dict(loss=t.loss, g_steps=t.g_steps, d_steps=t.d_steps, real_label_range=t.real_label_range,
                fake_label_range=t.fake_label_range, label_flip=t.label_flip, d_skip_threshold=t.d_skip_threshold,
                gradient_penalty=t.gradient_penalty, r1_gamma=t.r1_gamma, r1_every=t.r1_every,
                ema_decay=t.ema_decay, ema_start_step=t.ema_start_step, ema_batch_norm=t.ema_batch_norm,
                instance_noise_stddev=t.instance_noise_stddev,
                instance_noise_anneal_steps=t.instance_noise_anneal_steps, augment=t.augment,
                acgan_weight=t.acgan_weight, global_batch_size=t.batch_size, update_mode=t.update_mode,
                ada_target=t.ada_target if ada else None, ada_speed_images=t.ada_speed_images, ada_interval=t.ada_interval,
                ada_xflip=mirror_symmetric if t.ada_xflip is None else t.ada_xflip, ada_ops=t.ada_ops)


def _data_to_data_cross_entropy(labels, aux):
    """ReACGAN's loss on D's auxiliary output with ``conditioning="reacgan"``: the embeddings, then the proxies."""
    half = aux.shape[-1] // 2
    return losses.data_to_data_cross_entropy(labels, aux[:, :half], aux[:, half:])


class GAN(keras.Model):
    """A (conditional) GAN trained with a custom ``train_step``.

    Args:
        generator: a :class:`homogan.models.Generator`.
        discriminator: a :class:`homogan.models.Discriminator`.
        ema_generator: optional copy of the generator that tracks an exponential moving average of
            its weights (set ``ema_decay`` in ``compile``).
        seed: int, seed of the model's random stream.

    Example:
        >>> gan = GAN(g, d, seed=42)
        >>> gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5),
        ...             real_label_range=(0.9, 1.0), fake_label_range=(0.0, 0.1))
        >>> gan.fit(dataset_of_images_and_labels, epochs=5)
    """

    def __init__(self, generator, discriminator, ema_generator=None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.latent_dim = generator.latent_dim
        self.num_labels = generator.num_labels
        self.seed_generator = ReplicaSeedGenerator(seed, name="gan_seed")
        self.last_g_loss = tf.Variable(0.0, trainable=False, name="last_g_loss")
        # ADA's state (used when compiled with ada_target): p, and the sums over the current interval of
        # sign(D(real)) and of the images they came from. ONLY_FIRST_REPLICA: every replica assigns the
        # same all-reduced value, so p is identical across replicas.
        ada = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_WRITE,
                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.ada_p = tf.Variable(0.0, name="ada_p", **ada)
        self.ada_sign_sum = tf.Variable(0.0, name="ada_sign_sum", **ada)
        self.ada_seen = tf.Variable(0.0, name="ada_seen", **ada)
        self.ada_updates = tf.Variable(0, dtype=tf.int64, name="ada_updates", **ada)
        names = ["g_loss", "d_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake", "d_updates"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def compile(self, g_optimizer, d_optimizer, *, loss: str = "nonsaturating", g_steps: int = 1,
                d_steps: int = 1, real_label_range=(1.0, 1.0), fake_label_range=(0.0, 0.0),
                label_flip: float = 0.0, d_skip_threshold: float | None = None,
                gradient_penalty: float = 0.0, r1_gamma: float = 0.0, r1_every: int = 1,
                ema_decay: float | None = None, ema_start_step: int = 0, ema_batch_norm: str = "standing",
                instance_noise_stddev: float = 0.0,
                instance_noise_anneal_steps: int = 0, augment=(), acgan_weight: float = 1.0,
                ada_target: float | None = None, ada_speed_images: int = 100_000, ada_interval: int = 4,
                ada_xflip: bool = True, ada_ops=diffaugment.ADA_OPS,
                global_batch_size: int | None = None, update_mode: str = "alternating", **kwargs):
        """Args: the optimizers, then the update rules (see ``homogan.config.TrainingConfig``).

        ``global_batch_size`` is the number of images per discriminator update across all
        replicas; per-example losses are summed and divided by it (tf.distribute's rule).
        ``acgan_weight`` is used when the discriminator was built with ``conditioning="acgan"``,
        ``"projection_ac"``, ``"projection_tac"`` (the twin classifier's terms have the same weight) or ``"reacgan"``.
        ``update_mode``: ``"alternating"`` (D updates, then G updates on fresh fakes) or
        ``"simultaneous"`` (one generator forward feeds both losses; needs ``g_steps = d_steps = 1``).
        """
        super().compile(**kwargs)
        if g_steps < 1 or d_steps < 1:
            raise ValueError(f"`g_steps` and `d_steps` should be >= 1. Received: `g_steps={g_steps}`, `d_steps={d_steps}`")
        if update_mode not in UPDATE_MODES:
            raise ValueError(f"`update_mode` should be one of {', '.join(UPDATE_MODES)}. Received: `update_mode={update_mode!r}`")
        if update_mode == "simultaneous" and (g_steps, d_steps) != (1, 1):
            raise ValueError(f"`update_mode='simultaneous'` needs `g_steps=1` and `d_steps=1`. "
                             f"Received: `g_steps={g_steps}`, `d_steps={d_steps}`")
        if r1_every < 1:
            raise ValueError(f"`r1_every` should be >= 1. Received: `r1_every={r1_every}`")
        if ema_decay is not None and self.ema_generator is None:
            raise ValueError("`ema_decay` needs the GAN built with an `ema_generator`.")
        if ema_batch_norm not in ("standing", "copy", "average"):
            raise ValueError(f"`ema_batch_norm` should be 'standing', 'copy' or 'average'. "
                             f"Received: `ema_batch_norm={ema_batch_norm!r}`")
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.adversarial = losses.get(loss)
        self.g_steps, self.d_steps = g_steps, d_steps
        self.real_label_range, self.fake_label_range = tuple(real_label_range), tuple(fake_label_range)
        self.label_flip, self.d_skip_threshold = label_flip, d_skip_threshold
        self.gp_weight, self.r1_gamma, self.r1_every = gradient_penalty, r1_gamma, r1_every
        self.ema_decay, self.ema_start_step, self.ema_batch_norm = ema_decay, ema_start_step, ema_batch_norm
        self.instance_noise_stddev = instance_noise_stddev
        self.instance_noise_anneal_steps = instance_noise_anneal_steps
        self.augment_policy = diffaugment.check_policy(augment)
        if ada_target is not None and self.adversarial.decision_threshold is None:
            raise ValueError(f"`ada_target` needs a loss whose D output has a sign that means real or fake; "
                             f"Received: `loss={loss!r}`")
        self.ada_target, self.ada_speed_images, self.ada_interval = ada_target, ada_speed_images, ada_interval
        self.ada_xflip, self.ada_ops = ada_xflip, tuple(ada_ops)
        if not self.ada_ops or set(self.ada_ops) - set(diffaugment.ADA_OPS):
            raise ValueError(f"`ada_ops` should be a non-empty list of {', '.join(diffaugment.ADA_OPS)}. "
                             f"Received: `ada_ops={list(ada_ops)}`")
        # The auxiliary label loss is trained wherever D was built with an auxiliary head (acgan, projection_ac,
        # projection_tac, reacgan): one sigmoid per attribute for acgan (multi-label), ReACGAN's data-to-data
        # cross-entropy for reacgan, a softmax over one-hot classes for the others; with a twin head (projection_tac)
        # TAC-GAN's twin classifier too.
        self.acgan = getattr(self.discriminator, "aux_head", None) is not None
        self.twin = getattr(self.discriminator, "twin_head", None) is not None
        conditioning = getattr(self.discriminator, "conditioning", "concat")
        if conditioning == "reacgan":
            self.auxiliary_loss = _data_to_data_cross_entropy
        elif conditioning in ONE_HOT_CONDITIONING:
            self.auxiliary_loss = losses.auxiliary_softmax_ce
        else:
            self.auxiliary_loss = losses.auxiliary_bce
        self.acgan_weight = acgan_weight
        self.global_batch_size = global_batch_size
        self.update_mode = update_mode
        if gradient_penalty > 0:
            self.trackers["gradient_penalty"] = keras.metrics.Mean(name="gradient_penalty")
        if r1_gamma > 0:
            self.trackers["r1_penalty"] = keras.metrics.Mean(name="r1_penalty")
        if instance_noise_stddev > 0:
            self.trackers["instance_noise"] = keras.metrics.Mean(name="instance_noise")
        if self.acgan:
            self.trackers["aux_loss"] = keras.metrics.Mean(name="aux_loss")
            self.trackers["g_aux_loss"] = keras.metrics.Mean(name="g_aux_loss")
        if self.twin:
            self.trackers["twin_loss"] = keras.metrics.Mean(name="twin_loss")
        if self.adversarial.decision_threshold is None:
            # No accuracy without a threshold (see homogan.losses): the critic's score gap instead.
            del self.trackers["d_acc_real"], self.trackers["d_acc_fake"]
            self.trackers["critic_gap"] = keras.metrics.Mean(name="critic_gap")
        else:
            # ADA's overfitting heuristic r_t = E[sign(D(real))], logged with or without ADA: near 1, D is sure
            # of every real image — it has memorised the training set.
            self.trackers["ada_rt"] = keras.metrics.Mean(name="ada_rt")
        if self.ada_target is not None:
            self.trackers["ada_p"] = keras.metrics.Mean(name="ada_p")

    def set_global_batch_size(self, global_batch_size: int) -> None:
        """A new batch size (a schedule phase) changes the step's shapes and the per-example loss scale
        (sum ÷ global batch): the train step is traced again on the next ``fit``."""
        self.global_batch_size = global_batch_size
        self.train_function = None

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of every epoch.
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        """D's logits for ``(images, labels)``; lets ``fit`` build the model under a strategy."""
        images, labels = inputs
        return self.discriminator(images, labels, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras (TF backend, under a strategy) first averages one data batch across replicas with an
        eager ``strategy.reduce``, which fails under MultiWorkerMirroredStrategy ("Attempt to convert
        a value (PerReplica…) to a Tensor"), then builds what is unbuilt. Our networks are built before
        ``fit`` (and the optimizers are attributes, built by the caller), so there is nothing to build:
        skip it then."""
        if all(layer.built for layer in self._flatten_layers(include_self=False)):
            self.built = True
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # ---------------------------------------------------------------------------------------------
    # Pieces of the step

    def sample_latent(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def generate(self, labels, training=False, z=None):
        """Images for ``labels`` from fresh latent vectors (or the given ``z``)."""
        if z is None:
            z = self.sample_latent(tf.shape(labels)[0])
        return self.generator(z, labels, training=training)

    def _uniform(self, batch_size, bounds):
        lo, hi = bounds
        if lo == hi:
            return tf.fill((batch_size,), tf.constant(lo, tf.float32))
        return keras.random.uniform((batch_size,), lo, hi, seed=self.seed_generator)

    def discriminator_targets(self, batch_size):
        """Per-sample targets for real and fake: smoothed U(lo, hi), a fraction swapped (flipped)."""
        real_t = self._uniform(batch_size, self.real_label_range)
        fake_t = self._uniform(batch_size, self.fake_label_range)
        if self.label_flip > 0:
            flip = keras.random.uniform((batch_size,), seed=self.seed_generator) < self.label_flip
            real_t, fake_t = tf.where(flip, fake_t, real_t), tf.where(flip, real_t, fake_t)
        return real_t, fake_t

    def _mean(self, per_example):
        """Sum / global batch: the loss each replica minimises so that gradients add up correctly."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def training_step_count(self):
        """Training steps completed so far, in-graph (G updates ÷ g_steps; see the module docstring)."""
        return keras.ops.convert_to_tensor(self.g_optimizer.iterations) // self.g_steps

    def instance_noise_stddev_now(self):
        """σ of the instance noise this step: constant, or linear from σ₀ at step 0 to 0 at
        ``instance_noise_anneal_steps`` (and 0 after) — D is helped early, when real and fake
        distributions barely overlap, and trains on clean images in the end."""
        sigma = tf.constant(self.instance_noise_stddev, tf.float32)
        if self.instance_noise_anneal_steps > 0:
            step = tf.cast(self.training_step_count(), tf.float32)
            sigma = sigma * tf.maximum(0.0, 1.0 - step / float(self.instance_noise_anneal_steps))
        return sigma

    def discriminator_view(self, images):
        """What D sees of ``images`` during training: DiffAugment, then instance noise (each drawn
        afresh per call from the seed generator); the identity when both are off."""
        x = images
        if self.ada_target is not None:
            x = diffaugment.ada_augment(x, self.ada_p, self.seed_generator, xflip=self.ada_xflip, ops=self.ada_ops)
        if self.augment_policy:
            x = diffaugment.diff_augment(x, self.augment_policy, self.seed_generator)
        if self.instance_noise_stddev > 0:
            noise = keras.random.normal(tf.shape(x), seed=self.seed_generator, dtype=x.dtype)
            x = x + tf.cast(self.instance_noise_stddev_now(), x.dtype) * noise
        return x

    def _score(self, images, labels):
        """D's logits (and auxiliary label logits with ACGAN — the classifier's, then the twin's with TAC —, else
        None) in training mode."""
        if self.acgan:
            return self.discriminator(images, labels, training=True, return_aux=True)
        return self.discriminator(images, labels, training=True), None

    def _classifier(self, aux):
        """The auxiliary classifier's logits: all of D's auxiliary output, or its first half with a twin."""
        return aux[:, : self.num_labels] if self.twin else aux

    def _twin(self, aux):
        """The twin classifier's logits, the second half of D's auxiliary output (``projection_tac``)."""
        return aux[:, self.num_labels:]

    def discriminator_step(self, real, labels):
        spectral.power_iteration(self.discriminator)  # u moves once per D update, not per D call
        batch = tf.shape(real)[0]
        fake = self.generate(labels, training=True)
        real_t, fake_t = self.discriminator_targets(batch)
        with tf.GradientTape() as tape:
            real_in, fake_in = self.discriminator_view(real), self.discriminator_view(fake)
            real_logits, real_aux = self._score(real_in, labels)
            fake_logits, fake_aux = self._score(fake_in, labels)
            loss, stats = self._discriminator_loss(real_in, fake_in, real_logits, real_aux, fake_logits, fake_aux,
                                                   labels, real_t, fake_t)
            scaled = self.d_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        stats["d_updates"] = self._update_discriminator(grads)
        return stats

    def _discriminator_loss(self, real_in, fake_in, real_logits, real_aux, fake_logits, fake_aux, labels, real_t,
                            fake_t):
        """(D's loss scaled by the global batch, its statistics) for D's scores of the viewed batches;
        adds the penalties (drawing the GP's epsilon here), the ACGAN auxiliary loss on real images and, with a
        twin classifier, its loss on the fakes (TAC-GAN: the twin learns which class G drew)."""
        batch = tf.shape(real_in)[0]
        stats = {}
        d_real, d_fake = self.adversarial.discriminator(real_logits, fake_logits, real_t, fake_t)
        per_example = d_real + d_fake
        critic = lambda x: self.discriminator(x, labels, training=True)  # noqa: E731
        if self.gp_weight > 0:
            epsilon = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
            gp = regularizers.gradient_penalty(critic, real_in, fake_in, epsilon)
            per_example += self.gp_weight * gp
            stats["gradient_penalty"] = tf.reduce_mean(gp)
        if self.r1_gamma > 0:
            r1, applied = self._lazy_r1(critic, real_in)
            per_example += 0.5 * self.r1_gamma * self.r1_every * r1
            # Averaged over the D updates that computed it (sample weight 0 on the others).
            stats["r1_penalty"] = (tf.reduce_mean(r1), applied)
        if self.acgan:
            aux = self.auxiliary_loss(labels, self._classifier(real_aux))
            per_example += self.acgan_weight * aux
            stats["aux_loss"] = tf.reduce_mean(aux)
        if self.twin:
            twin = self.auxiliary_loss(labels, self._twin(fake_aux))
            per_example += self.acgan_weight * twin
            stats["twin_loss"] = tf.reduce_mean(twin)
        threshold = self.adversarial.decision_threshold
        stats.update(d_loss=tf.reduce_mean(per_example), d_loss_real=tf.reduce_mean(d_real),
                     d_loss_fake=tf.reduce_mean(d_fake))
        if threshold is None:
            stats["critic_gap"] = tf.reduce_mean(real_logits) - tf.reduce_mean(fake_logits)
        else:
            stats.update(d_acc_real=tf.reduce_mean(tf.cast(real_logits > threshold, tf.float32)),
                         d_acc_fake=tf.reduce_mean(tf.cast(fake_logits <= threshold, tf.float32)))
            stats.update(self._ada_observe(real_logits - threshold))
        if self.instance_noise_stddev > 0:
            stats["instance_noise"] = self.instance_noise_stddev_now()
        return self._mean(per_example), stats

    def _ada_observe(self, real_margin) -> dict:
        """r_t = E[sign(D(real))] over this D update's global batch (all-reduced over replicas); with ADA, the
        interval's sums grow and, every ``ada_interval`` D updates, p moves by ``sign(r_t − target) · images /
        ada_speed_images`` (:func:`homogan.augment.ada_step`). Returns the statistics to track."""
        signs = tf.reduce_sum(tf.sign(tf.cast(real_margin, tf.float32)))
        count = tf.cast(tf.shape(real_margin)[0], tf.float32)
        context = tf.distribute.get_replica_context()
        if context is not None:
            signs, count = context.all_reduce("SUM", [signs, count])
        stats = {"ada_rt": signs / count}
        if self.ada_target is None:
            return stats
        total, seen = self.ada_sign_sum.assign_add(signs), self.ada_seen.assign_add(count)
        due = tf.equal(self.ada_updates.assign_add(1) % self.ada_interval, 0)
        # Unconditional assigns of tf.where values, not a tf.cond: assigning a mirrored variable is a
        # synchronisation point, which tf.distribute does not allow inside control flow.
        stepped = diffaugment.ada_step(self.ada_p, total / seen, self.ada_target, seen, float(self.ada_speed_images))
        self.ada_p.assign(tf.where(due, stepped, self.ada_p))
        self.ada_sign_sum.assign(tf.where(due, 0.0, total))
        self.ada_seen.assign(tf.where(due, 0.0, seen))
        stats["ada_p"] = tf.convert_to_tensor(self.ada_p)
        return stats

    def _update_discriminator(self, grads):
        """Apply D's gradients (unless HomoGAN's skip rule holds D back); 1.0 if applied, else 0.0."""
        if self.d_skip_threshold is None:
            self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
            update = tf.constant(True)
        else:
            # HomoGAN's rule: leave D alone while G is losing badly (last G loss above the threshold).
            update = self.last_g_loss <= self.d_skip_threshold
            tf.cond(update, lambda: self._apply_d(grads), tf.no_op)
        return tf.cast(update, tf.float32)

    def _lazy_r1(self, critic, real):
        """(per-example R1, 1.0 if computed this D update else 0.0). With ``r1_every = k`` R1 is
        computed only when D's update count is a multiple of k (a ``tf.cond``, so the double
        backward pass is really skipped on the other updates); the caller scales it by k so that
        its average pull is that of R1 on every update (Karras et al. 2020, lazy regularisation)."""
        if self.r1_every == 1:
            return regularizers.r1_penalty(critic, real), tf.constant(1.0)
        due = tf.equal(keras.ops.convert_to_tensor(self.d_optimizer.iterations) % self.r1_every, 0)
        r1 = tf.cond(due, lambda: regularizers.r1_penalty(critic, real), lambda: tf.zeros((tf.shape(real)[0],)))
        return r1, tf.cast(due, tf.float32)

    def _apply_d(self, grads):
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        return tf.no_op()

    def generator_step(self, labels):
        spectral.power_iteration(self.generator)
        with tf.GradientTape() as tape:
            fake = self.generate(labels, training=True)
            fake_logits, fake_aux = self._score(self.discriminator_view(fake), labels)
            loss, stats = self._generator_loss(fake_logits, fake_aux, labels)
            scaled = self.g_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self._update_generator(grads, stats["g_loss"])
        return stats

    def _generator_loss(self, fake_logits, fake_aux, labels):
        """(G's loss scaled by the global batch, its statistics) for D's scores of the viewed fakes."""
        stats = {}
        per_example = self.adversarial.generator(fake_logits)
        if self.acgan:
            aux = self.auxiliary_loss(labels, self._classifier(fake_aux))
            per_example += self.acgan_weight * aux
            stats["g_aux_loss"] = tf.reduce_mean(aux)
        if self.twin:
            # TAC-GAN (Gong et al. 2019, eq. 6): G maximises the twin's loss on its fakes. The classifier term alone
            # lowers the fakes' conditional entropy (G draws what the classifier is sure of, AC-GAN's lost
            # variety); minus the twin's cross-entropy cancels that term, leaving G to match P(x | y).
            per_example -= self.acgan_weight * self.auxiliary_loss(labels, self._twin(fake_aux))
        stats["g_loss"] = tf.reduce_mean(per_example)
        return self._mean(per_example), stats

    def _update_generator(self, grads, g_loss):
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.ema_decay is not None:
            self.update_ema()
        self.last_g_loss.assign(g_loss)

    def simultaneous_gradients(self, real, labels, z=None, targets=None):
        """(D's gradients, G's gradients, statistics) from ONE generator forward pass.

        The same fakes G(z, labels) — seen once through :meth:`discriminator_view` and scored once by
        D — feed D's loss and G's loss; a persistent tape records the single forward pass and gives
        both gradients (D's loss w.r.t. D's weights, G's loss w.r.t. G's weights). Both are taken at
        the *current* weights of both networks. ``z`` and ``targets`` (``(real_t, fake_t)``) are drawn
        from the seed generator unless given (tests pass them to compare with hand-made gradients).
        """
        batch = tf.shape(real)[0]
        if z is None:
            z = self.sample_latent(batch)
        real_t, fake_t = self.discriminator_targets(batch) if targets is None else targets
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(z, labels, training=True)
            real_in, fake_in = self.discriminator_view(real), self.discriminator_view(fake)
            real_logits, real_aux = self._score(real_in, labels)
            fake_logits, fake_aux = self._score(fake_in, labels)
            d_loss, stats = self._discriminator_loss(real_in, fake_in, real_logits, real_aux, fake_logits, fake_aux,
                                                     labels, real_t, fake_t)
            g_loss, g_stats = self._generator_loss(fake_logits, fake_aux, labels)
            d_scaled, g_scaled = self.d_optimizer.scale_loss(d_loss), self.g_optimizer.scale_loss(g_loss)
        d_grads = tape.gradient(d_scaled, self.discriminator.trainable_variables)
        g_grads = tape.gradient(g_scaled, self.generator.trainable_variables)
        del tape
        stats.update(g_stats)
        return d_grads, g_grads, stats

    def simultaneous_step(self, real, labels):
        """One D update and one G update from the same fakes (``update_mode="simultaneous"``)."""
        spectral.power_iteration(self.discriminator)
        spectral.power_iteration(self.generator)
        d_grads, g_grads, stats = self.simultaneous_gradients(real, labels)
        stats["d_updates"] = self._update_discriminator(d_grads)
        self._update_generator(g_grads, stats["g_loss"])
        return stats

    def update_ema(self):
        """ema ← decay·ema + (1-decay)·w for trainable weights; batch-norm statistics copied
        (``ema_batch_norm="copy"``, and ``"standing"``, whose statistics are recomputed from the EMA
        generator itself at every epoch's end by :class:`homogan.callbacks.StandingStatistics`) or averaged
        the same way (``"average"``); other state (spectral norm's u) copied.

        Until G has made ``ema_start_step`` updates the EMA is a plain copy (decay 0): averaging in
        the first, near-random generators would drag the EMA samples for thousands of steps.
        Called after G's update, so ``g_optimizer.iterations`` counts that update.
        """
        decay = tf.constant(self.ema_decay, tf.float32)
        if self.ema_start_step > 0:
            started = keras.ops.convert_to_tensor(self.g_optimizer.iterations) > self.ema_start_step
            decay = tf.where(started, decay, 0.0)
        averaged = {id(v) for v in self._ema_statistics(self.ema_generator)} if self.ema_batch_norm == "average" else set()
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            d = tf.cast(decay, ema_w.dtype)
            ema_w.assign(d * ema_w + (1.0 - d) * w)
        for ema_w, w in zip(self.ema_generator.non_trainable_weights, self.generator.non_trainable_weights):
            if id(ema_w) in averaged:
                d = tf.cast(decay, ema_w.dtype)
                ema_w.assign(d * ema_w + (1.0 - d) * w)
            else:
                ema_w.assign(w)

    @staticmethod
    def _ema_statistics(network) -> list:
        """The batch-norm moving means and variances of ``network``."""
        return [v for layer in network._flatten_layers(include_self=False)
                if isinstance(layer, keras.layers.BatchNormalization) for v in (layer.moving_mean, layer.moving_variance)]

    # ---------------------------------------------------------------------------------------------

    def _track(self, stats):
        """Update the trackers; a value may come as (value, sample_weight)."""
        for name, value in stats.items():
            if isinstance(value, tuple):
                self.trackers[name].update_state(value[0], sample_weight=value[1])
            else:
                self.trackers[name].update_state(value)

    def train_step(self, data):
        """One training step. ``"alternating"``: ``d_steps`` D updates (each on its own real slice and
        fresh fakes), then ``g_steps`` G updates on fresh fakes — 1 + 1 generator forwards at 1:1.
        ``"simultaneous"``: one generator forward whose fakes feed both losses, then both updates.

        ``data`` is (images, labels); images as the pipeline delivers them (uint8 [0, 255], scaled here,
        on the device) or as floats already in [-1, 1]."""
        images, labels = data
        images = to_unit_range(images)
        if self.update_mode == "simultaneous":
            self._track(self.simultaneous_step(images, labels))
            return self._logs()
        real_chunks = tf.split(images, self.d_steps)
        label_chunks = tf.split(labels, self.d_steps)
        for real, lab in zip(real_chunks, label_chunks):
            self._track(self.discriminator_step(real, lab))
        # Fakes are generated for the label distribution of the data (the last real slice's labels).
        for _ in range(self.g_steps):
            self._track(self.generator_step(label_chunks[-1]))
        return self._logs()

    def _logs(self):
        """The trackers' results. Keras averages the step's logs over replicas; under a multi-worker
        strategy it does so with ``strategy.reduce("MEAN", value, axis=0)``, which needs an axis to
        reduce (scalars fail: "Invalid reduction dimension 0 for input with 0 dimensions"), so there
        each value gets a length-1 axis — the reduced log is the same scalar mean over replicas."""
        logs = {name: m.result() for name, m in self.trackers.items()}
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode():
            logs = {name: tf.reshape(value, (1,)) for name, value in logs.items()}
        return logs
