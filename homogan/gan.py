"""The GAN as a ``keras.Model``: networks in ``__init__``, optimizers and rules in ``compile``, the
alternating update in ``train_step`` (run under ``tf.function`` by ``fit``).

One training step = ``d_steps`` discriminator updates, each on its own slice of the real batch
(the pipeline delivers ``batch_size × d_steps`` images per step), then ``g_steps`` generator
updates. Every random draw — latent vectors, smoothed targets, flips, GP interpolation weights —
comes from the model's ``SeedGenerator``, whose state is a variable: values differ per sample and
per step (never frozen at trace time), repeat for a given ``experiment.seed``, and are saved in
checkpoints.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from homogan import losses, regularizers


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
        self.seed_generator = keras.random.SeedGenerator(seed, name="gan_seed")
        self.last_g_loss = tf.Variable(0.0, trainable=False, name="last_g_loss")
        names = ["g_loss", "d_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake", "d_updates"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def compile(self, g_optimizer, d_optimizer, *, loss: str = "nonsaturating", g_steps: int = 1,
                d_steps: int = 1, real_label_range=(1.0, 1.0), fake_label_range=(0.0, 0.0),
                label_flip: float = 0.0, d_skip_threshold: float | None = None,
                gradient_penalty: float = 0.0, r1_gamma: float = 0.0, ema_decay: float | None = None,
                global_batch_size: int | None = None, **kwargs):
        """Args: the optimizers, then the update rules (see ``homogan.config.TrainingConfig``).

        ``global_batch_size`` is the number of images per discriminator update across all
        replicas; per-example losses are summed and divided by it (tf.distribute's rule).
        """
        super().compile(**kwargs)
        if g_steps < 1 or d_steps < 1:
            raise ValueError(f"`g_steps` and `d_steps` should be >= 1. Received: `g_steps={g_steps}`, `d_steps={d_steps}`")
        if ema_decay is not None and self.ema_generator is None:
            raise ValueError("`ema_decay` needs the GAN built with an `ema_generator`.")
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.adversarial = losses.get(loss)
        self.g_steps, self.d_steps = g_steps, d_steps
        self.real_label_range, self.fake_label_range = tuple(real_label_range), tuple(fake_label_range)
        self.label_flip, self.d_skip_threshold = label_flip, d_skip_threshold
        self.gp_weight, self.r1_gamma, self.ema_decay = gradient_penalty, r1_gamma, ema_decay
        self.global_batch_size = global_batch_size
        if gradient_penalty > 0:
            self.trackers["gradient_penalty"] = keras.metrics.Mean(name="gradient_penalty")
        if r1_gamma > 0:
            self.trackers["r1_penalty"] = keras.metrics.Mean(name="r1_penalty")

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of every epoch.
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        """D's logits for ``(images, labels)``; lets ``fit`` build the model under a strategy."""
        images, labels = inputs
        return self.discriminator(images, labels, training=training)

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

    def discriminator_step(self, real, labels):
        batch = tf.shape(real)[0]
        fake = self.generate(labels, training=True)
        real_t, fake_t = self.discriminator_targets(batch)
        stats = {}
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, labels, training=True)
            fake_logits = self.discriminator(fake, labels, training=True)
            d_real, d_fake = self.adversarial.discriminator(real_logits, fake_logits, real_t, fake_t)
            per_example = d_real + d_fake
            critic = lambda x: self.discriminator(x, labels, training=True)  # noqa: E731
            if self.gp_weight > 0:
                epsilon = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
                gp = regularizers.gradient_penalty(critic, real, fake, epsilon)
                per_example += self.gp_weight * gp
                stats["gradient_penalty"] = tf.reduce_mean(gp)
            if self.r1_gamma > 0:
                r1 = regularizers.r1_penalty(critic, real)
                per_example += 0.5 * self.r1_gamma * r1
                stats["r1_penalty"] = tf.reduce_mean(r1)
            loss = self._mean(per_example)
            scaled = self.d_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        update = self.d_skip_threshold is None or self.last_g_loss <= self.d_skip_threshold
        if self.d_skip_threshold is None:
            self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        else:
            tf.cond(update, lambda: self._apply_d(grads), lambda: tf.no_op())
        threshold = self.adversarial.decision_threshold
        stats.update(d_loss=tf.reduce_mean(per_example), d_loss_real=tf.reduce_mean(d_real),
                     d_loss_fake=tf.reduce_mean(d_fake),
                     d_acc_real=tf.reduce_mean(tf.cast(real_logits > threshold, tf.float32)),
                     d_acc_fake=tf.reduce_mean(tf.cast(fake_logits <= threshold, tf.float32)),
                     d_updates=tf.cast(update, tf.float32))
        return stats

    def _apply_d(self, grads):
        self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        return tf.no_op()

    def generator_step(self, labels):
        with tf.GradientTape() as tape:
            fake = self.generate(labels, training=True)
            fake_logits = self.discriminator(fake, labels, training=True)
            per_example = self.adversarial.generator(fake_logits)
            loss = self._mean(per_example)
            scaled = self.g_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.ema_decay is not None:
            self.update_ema()
        g_loss = tf.reduce_mean(per_example)
        self.last_g_loss.assign(g_loss)
        return {"g_loss": g_loss}

    def update_ema(self):
        """ema ← decay·ema + (1-decay)·w for trainable weights; non-trainable (BN statistics) copied."""
        decay = self.ema_decay
        for ema_w, w in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            ema_w.assign(decay * ema_w + (1.0 - decay) * w)
        for ema_w, w in zip(self.ema_generator.non_trainable_weights, self.generator.non_trainable_weights):
            ema_w.assign(w)

    # ---------------------------------------------------------------------------------------------

    def train_step(self, data):
        images, labels = data
        real_chunks = tf.split(images, self.d_steps)
        label_chunks = tf.split(labels, self.d_steps)
        for real, lab in zip(real_chunks, label_chunks):
            for name, value in self.discriminator_step(real, lab).items():
                self.trackers[name].update_state(value)
        # Fakes are generated for the label distribution of the data (the last real slice's labels).
        for _ in range(self.g_steps):
            for name, value in self.generator_step(label_chunks[-1]).items():
                self.trackers[name].update_state(value)
        return {name: m.result() for name, m in self.trackers.items()}
