r"""The Keras model wrapper shared by every training method.

`Algorithm` wraps a functional model (kept as ``.model``; training the wrapper updates that
model's variables) in a subclassed `tf.keras.Model` whose ``train_step`` is the method, so
``compile``/``fit``/``evaluate``/``predict``, callbacks, checkpoints and progress bars work
unchanged. ``call`` is the wrapped model's forward pass; only training differs.

Conventions shared by all methods (methods.md §3):

- the model outputs logits; the default loss is
  ``SparseCategoricalCrossentropy(from_logits=True)`` and the output error is taken from the
  compiled loss: \\(e = B\, \partial L / \partial z\\), which for that loss is
  \\(\operatorname{softmax}(z) - \operatorname{onehot}(y)\\) (one-hot labels work too);
- the output layer always trains on its true loss, on its stopped input;
- gradients are applied with ``self.optimizer.apply_gradients`` (coupled weight decay, Larq's
  weight clip constraints and `larq.optimizers.CaseOptimizer` work as with ``fit``);
- under `tf.distribute` the compiled loss is scaled by the global batch (Keras does it) and
  per-replica local losses are scaled so that the all-reduced gradients are those of the global
  batch; fixed random matrices are non-trainable variables created from a seeded NumPy
  generator, hence identical on every replica and worker and saved with the model.

Update-unlocked methods (DRTP, HSIC, SigpropTL) run segment by segment (`TapGraph.segments`),
one `tf.GradientTape` per segment, so a segment's activations can be freed before the next
segment runs (in graph mode every op of a segment, its backward pass included, waits for the
previous segment's gradients or update: ResNet-20 DRTP peaks at 0.24x BP's memory, 0.50x
when signals that read no activation could run early). ``update="segment"`` applies each segment's update before the next segment runs
(the optimizer's ``iterations`` is restored between segments so Adam's bias correction and
schedules see one step per batch); ``update="step"`` keeps each segment's gradients and applies
them once at the end of the step (identical maths, needed by `CaseOptimizer`, which maps
variables to optimizers on its first call); ``update="auto"`` (default) picks ``"segment"``
unless the optimizer has sub-optimizers.

**Distillation** (``distillation=`` a `lqbench.distillation.Distillation`): ``_output_loss``,
the one place every method computes its output loss, then returns ReActNet's distillation loss

\\[ L = w_{CE}\, \operatorname{CE}(z, y) + \alpha\, \mathcal{L}_{KD}(z_T, z) + \text{(layer losses)} \\]

with the teacher's logits \\(z_T\\) computed once per step on the batch (frozen, inference
mode, outside every tape; `Algorithm._teacher_logits`). So every method's output layer trains on
the distillation target, and what reaches the hidden layers is whatever the method derives from
the output loss: backprop its full gradient; DFA and SigpropTL the output error
\\(e = B\, \partial L / \partial z\\) of the distillation loss; DRTP and HSIC nothing (their
hidden signals are built from the labels, unchanged). Under `tf.distribute`
\\(\mathcal{L}_{KD}\\) is scaled like the compiled loss (divided by the replicas). The
``loss`` metric stays the compiled loss (cross-entropy on the labels plus layer losses, what
``evaluate`` reports as ``val_loss``); ``kd_loss`` reports \\(\mathcal{L}_{KD}\\).

A method is a subclass that sets ``algorithm``, ``defaults`` (and ``choices``) and implements
``_train_step(x, y, sample_weight)`` returning the logits (passing ``self._teacher_logits(x)``
to ``_output_loss`` / ``_output_gradient`` / ``_train_segments``); `register` makes it a Keras
custom object and ``lqbench.algorithms`` lists it by ``algorithm`` for `build`.

!!! example
    ```python
    import lqbench, lqbench.algorithms, lqbench.models
    import tensorflow as tf
    model = lqbench.models.build("lenet", (28, 28, 1), 10, lqbench.Binarization())
    trainer = lqbench.algorithms.build("dfa", model, seed=0)  # an `Algorithm`
    trainer.compile(tf.keras.optimizers.legacy.Adam(1e-3), metrics=["accuracy"])
    trainer.fit(x, y, batch_size=32, epochs=1)  # trains `model`'s own variables
    # the same, distilling from a trained float model
    distill = lqbench.distillation.Distillation(teacher, alpha=1.0, temperature=1.0)
    trainer = lqbench.algorithms.build("dfa", model, seed=0, distillation=distill)
    ```

# References
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
- [Frenkel, Lefebvre & Bol, Learning Without Feedback: Fixed Random Learning Signals Allow for
  Feedforward Training of Deep Neural Networks, Frontiers in Neuroscience 2021](https://arxiv.org/abs/1909.01311)
  (update locking and update-unlocked, layer-wise training).
- [Liu et al., ReActNet (ECCV 2020)](https://arxiv.org/abs/2003.03488), §4.3 (the
  distributional loss of ``distillation``).
"""
from __future__ import annotations

import contextlib
from typing import Any

import larq as lq
import numpy as np
import tensorflow as tf

from tensorflow.compiler.tf2xla.python import xla as xla_ops

from lqbench.algorithms.taps import TapGraph
from lqbench.distillation import Distillation
from lqbench.errors import ConfigTypeError, ConfigValueError

__all__ = ["Algorithm", "UPDATE_MODES"]

UPDATE_MODES = ("auto", "segment", "step")


class Algorithm(tf.keras.Model):
    """Base class: a `tf.keras.Model` wrapping ``model`` whose ``train_step`` is a method.

    # Arguments
        model: functional Keras model with one output of logits.
        seed: seed of the method's fixed random matrices.
        name: Keras name of the wrapper (default ``"<algorithm>_<model name>"``).
        distillation: a `lqbench.distillation.Distillation` to train the output on (see above),
            or None.
        **hparams: the method's hyperparameters (``defaults`` of each subclass).

    # Attributes
        model: the wrapped model.
        supports_xla: whether ``compile(jit_compile=True)`` works with this method.
        hparams: the hyperparameters in effect.
        distillation: the `Distillation` or None; its teacher is also tracked as ``teacher``
            (frozen, so saved with the wrapper and never trained).
    """

    algorithm: str = ""
    defaults: dict[str, Any] = {}
    choices: dict[str, tuple] = {}
    supports_xla: bool = True
    tap_granularity: str | None = None
    block_taps: bool = False

    def __init__(self, model: tf.keras.Model, seed: int = 0, name: str | None = None,
                 distillation: Distillation | None = None, **hparams):
        if not isinstance(model, tf.keras.Model):
            raise ValueError(f"{self.algorithm}: model must be a tf.keras.Model, got {type(model).__name__}")
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(f"{self.algorithm}: unknown hyperparameter(s) {', '.join(unknown)}; allowed: {allowed}")
        values = dict(self.defaults, **hparams)
        for key, allowed in self.choices.items():
            if values[key] not in allowed:
                raise ValueError(
                    f"{self.algorithm}: {key}={values[key]!r} is not allowed; allowed: {', '.join(map(str, allowed))}"
                )
        super().__init__(name=name or f"{self.algorithm}_{model.name}")
        self.model = model
        self.seed = int(seed)
        self._hp = tuple(values.items())
        self.num_classes = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
        self.graph = None
        if self.tap_granularity is not None:
            self.graph = TapGraph(model, granularity=self.tap_granularity, block_taps=self.block_taps)
        self._rng = np.random.default_rng(self.seed)
        self._trackers: list[tf.keras.metrics.Metric] = []
        self._set_distillation(distillation)
        self._setup()

    def _set_distillation(self, distillation: Distillation | None) -> None:
        if distillation is not None and not isinstance(distillation, Distillation):
            raise ConfigTypeError(f"{self.algorithm}: distillation must be an lqbench.distillation.Distillation "
                                  f"or None, got {type(distillation).__name__}")
        self.distillation = distillation
        if distillation is None:
            return
        teacher = distillation.teacher
        if getattr(teacher, "outputs", None) and self.num_classes is not None:
            classes = teacher.outputs[0].shape[-1]
            if classes is not None and int(classes) != self.num_classes:
                raise ConfigValueError(f"distillation: the teacher {teacher.name!r} outputs {int(classes)} logits, "
                                       f"the model {self.num_classes}")
        mine, theirs = getattr(self.model, "inputs", None), getattr(teacher, "inputs", None)
        if mine and theirs and tuple(mine[0].shape[1:]) != tuple(theirs[0].shape[1:]):
            raise ConfigValueError(f"distillation: the teacher {teacher.name!r} takes inputs of shape "
                                   f"{tuple(theirs[0].shape[1:])}, the model {tuple(mine[0].shape[1:])}")
        self.teacher = teacher  # tracked: saved and restored with the wrapper (frozen, never trained)
        self.kd_tracker = self._tracker("kd_loss")

    # ------------------------------------------------------------------ hooks for subclasses
    def _setup(self) -> None:
        """Create feedback matrices and metric trackers (called once from ``__init__``)."""

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self._hp)

    def _fixed_matrix(self, name: str, value: np.ndarray) -> tf.Variable:
        """A non-trainable variable holding a fixed random matrix (saved with the model), in
        Keras's float type (``tf.keras.backend.floatx()``, float32 unless set)."""
        dtype = tf.keras.backend.floatx()
        value = np.asarray(value, dtype=dtype)
        return self.add_weight(
            name=name,
            shape=value.shape,
            dtype=dtype,
            initializer=tf.keras.initializers.Constant(value),
            trainable=False,
        )

    def _tracker(self, name: str) -> tf.keras.metrics.Mean:
        tracker = tf.keras.metrics.Mean(name=name)
        self._trackers.append(tracker)
        return tracker

    # ------------------------------------------------------------------ Keras plumbing
    def call(self, inputs, training=None, mask=None):
        return self.model(inputs, training=training)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """`tf.keras.Model.compile`; ``loss`` defaults to sparse cross-entropy on logits."""
        if loss is None:
            loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        # Keras's non-legacy optimizers only update the variables they were built with; segment
        # updates reach them one part of the model at a time, so build on all of them now.
        if self.graph is not None and not isinstance(self.optimizer, tf.keras.optimizers.legacy.Optimizer):
            build = getattr(self.optimizer, "build", None)
            if build is not None and not getattr(self.optimizer, "_built", False):
                build(self.model.trainable_variables)

    @property
    def metrics(self):
        metrics = list(super().metrics)
        known = {id(m) for m in metrics}
        return metrics + [t for t in self._trackers if id(t) not in known]

    def get_config(self):
        config = {
            "model": tf.keras.layers.serialize(self.model),
            "seed": self.seed,
            "name": self.name,
            **self.hparams,
        }
        if self.distillation is not None:  # absent without distillation: the configs of earlier versions
            config["distillation"] = tf.keras.utils.serialize_keras_object(self.distillation)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = tf.keras.layers.deserialize(config.pop("model"), custom_objects=custom_objects)
        distillation = config.pop("distillation", None)
        if distillation is not None:
            distillation = tf.keras.utils.deserialize_keras_object(
                distillation, module_objects={"Distillation": Distillation}, custom_objects=custom_objects)
        return cls(model, distillation=distillation, **config)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """Keras's ``compute_loss`` (used by ``evaluate``) with the wrapped model's layer losses only
        (a distillation teacher's regularizers are not the model's)."""
        return self.compiled_loss(y, y_pred, sample_weight, regularization_losses=self.model.losses or None)

    def train_step(self, data):
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(f"{self.algorithm}: training needs labels (x, y) batches")
        logits = self._train_step(x, y, sample_weight)
        return self.compute_metrics(x, y, logits, sample_weight)

    def test_step(self, data):
        """Keras's ``test_step`` without the training-only trackers (per-tap local losses,
        ``kd_loss``): ``evaluate`` never updates them, so they would log as ``val_<name>: 0``."""
        logs = super().test_step(data)
        training_only = {t.name for t in self._trackers}
        return {name: value for name, value in logs.items() if name not in training_only}

    def _train_step(self, x, y, sample_weight):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _num_replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    def _teacher_logits(self, x) -> tf.Tensor | None:
        """The distillation teacher's logits on ``x`` (inference mode, gradient stopped), or None."""
        return None if self.distillation is None else self.distillation.teacher_logits(x)

    def _output_loss(self, y, logits, sample_weight, regularization_losses=None, teacher_logits=None):
        r"""The output loss: the compiled loss on the logits plus ``regularization_losses``
        (summed and scaled for `tf.distribute` by Keras, as in ``Model.compute_loss``; updates the
        ``loss`` metric).

        With ``teacher_logits`` (a distilling algorithm, `_teacher_logits`) it is instead
        \\(w_{CE} L_{compiled} + \alpha \mathcal{L}_{KD} / R + \text{(layer losses)} / R\\)
        (\\(R\\) replicas), the `lqbench.distillation` loss; the ``loss`` metric still reports the
        compiled loss with the layer losses, ``kd_loss`` \\(\mathcal{L}_{KD}\\).
        """
        compiled = self.compiled_loss(y, logits, sample_weight, regularization_losses=regularization_losses or None)
        if teacher_logits is None:
            return compiled
        distill = self.distillation
        kd = distill.kd_loss(teacher_logits, logits, sample_weight)
        self.kd_tracker.update_state(kd)
        reg = self._regularization(regularization_losses or [])
        loss = distill.alpha * kd / float(self._num_replicas())
        if distill.ce_weight:  # a Python branch: with w_CE = 0 the labels' loss is not in the graph of L
            loss += distill.ce_weight * (compiled if reg is None else compiled - reg)
        return loss if reg is None else loss + reg

    def _regularization(self, losses) -> tf.Tensor | None:
        """Sum of layer losses (regularizers), scaled per replica like Keras's compiled loss."""
        losses = [tf.cast(l, tf.keras.backend.floatx()) for l in losses]
        if not losses:
            return None
        return tf.add_n(losses) / float(self._num_replicas())

    def _output_gradient(self, y, logits, sample_weight, regularization_losses=None, teacher_logits=None):
        """Loss and \\(\\partial L / \\partial z\\) (\\(= e / B_{global}\\) for mean cross-entropy)."""
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = self._output_loss(y, logits, sample_weight, regularization_losses, teacher_logits)
        return loss, tf.stop_gradient(tape.gradient(loss, logits))

    def _global_batch(self, logits) -> tf.Tensor:
        return tf.cast(tf.shape(logits)[0] * self._num_replicas(), logits.dtype)

    def _onehot(self, y) -> tf.Tensor:
        """Labels as one-hot rows (accepts integer labels or one-hot/probability rows)."""
        y = tf.convert_to_tensor(y)
        if y.shape.rank == 2 and y.shape[-1] == self.num_classes and self.num_classes > 1:
            return tf.cast(y, tf.keras.backend.floatx())
        return tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), self.num_classes, dtype=tf.keras.backend.floatx())

    def _apply(self, grads_and_vars):
        grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
        if grads_and_vars:
            return self.optimizer.apply_gradients(grads_and_vars)
        return None

    def _update_mode(self) -> str:
        mode = self.hparams.get("update", "step")
        has_children = bool(getattr(self.optimizer, "optimizers", None))
        if mode == "auto":
            return "step" if has_children else "segment"
        if mode == "segment" and has_children:
            raise ValueError(
                f"{self.algorithm}: update='segment' does not work with {type(self.optimizer).__name__} "
                "(it maps variables to optimizers on its first call); use update='step' or 'auto'"
            )
        return mode

    def _train_segments(
        self, inputs, segment_loss, segments=None, initial=None, labels=None, sample_weight=None, training=True,
        teacher_logits=None, run_ops=None,
    ):
        """Train segment by segment: one tape per segment, ``segment_loss(segment, env)``.

        The output segment, when among ``segments``, trains on the output loss of the logits
        against ``labels`` (and ``teacher_logits`` when distilling; ``segment_loss`` is only
        called for tap segments). ``initial`` is an
        optional list of ``(gradient, variable)`` computed before the segments (SigpropTL's
        output layer), applied first. Returns the environment of computed tensors
        (``env[graph.output_key]`` holds the logits when the output segment ran).

        Every segment's loss includes its layers' own losses (weight regularizers), and only
        the variables trainable when the step is traced are updated (the tf-keras
        ``train_step`` / ``compute_loss`` contract). ``run_ops`` replaces `TapGraph.run_ops`
        (same signature) for the segments' forward passes (SigpropTL runs its weight layers
        on the two halves of its batch separately).
        """
        graph = self.graph
        run_ops = graph.run_ops if run_ops is None else run_ops
        segments = graph.segments if segments is None else segments
        env = graph.new_env(inputs)
        mode = self._update_mode()
        iterations = self.optimizer.iterations
        start = tf.identity(iterations) if mode == "segment" else None
        pending = []

        def commit(grads_and_vars):
            if mode == "step":
                pending.extend(grads_and_vars)
                return [g for g, _ in grads_and_vars]
            update = self._apply(grads_and_vars)
            with tf.control_dependencies([update]):
                return [iterations.assign(start)]

        xla = bool(getattr(self, "_jit_compile", False)) and not tf.executing_eagerly()
        boundary = set(graph.input_keys) | {t.key for t in graph.taps}
        barrier = None

        def sequence(after):
            """Make the following segments wait for ``after`` (the previous segment's gradients
            or update), so the runtime cannot interleave segments and keep their activations.
            Graph mode: control dependencies on the boundary tensors later segments read. XLA
            (which ignores control dependencies between pure ops): an optimization barrier
            tying those tensors to the gradients."""
            if not xla:
                return (after, set(env))
            keys = [k for k in env if k in boundary]
            tied = xla_ops.optimization_barrier(*([env[k] for k in keys] + list(after)))
            env.update(zip(keys, tied[: len(keys)]))
            return None

        if initial:
            done = commit(initial)
            barrier = sequence(done if not xla else [g for g, _ in initial])
        for segment in segments:
            variables = segment.variables  # read at trace time: frozen layers stay frozen
            with _after(barrier), tf.GradientTape() as tape:
                run_ops(segment.ops, env, training, barrier)
                if segment.is_output:
                    loss = self._output_loss(labels, env[graph.output_key], sample_weight, segment.losses,
                                             teacher_logits)
                else:
                    loss = segment_loss(segment, env)
                    reg = self._regularization(segment.losses)
                    if reg is not None:
                        loss = reg if loss is None else loss + reg
            if loss is None or not variables:
                continue
            with _after(barrier):
                grads = tape.gradient(loss, variables)
            grads_and_vars = [(g, v) for g, v in zip(grads, variables) if g is not None]
            if grads_and_vars:
                done = commit(grads_and_vars)
                barrier = sequence(done if not xla else [g for g, _ in grads_and_vars])
        if mode == "segment":
            iterations.assign(start + 1)
        else:
            self._apply(pending)
        return env

def _after(barrier):
    """Context in which every new op waits for ``barrier``'s control inputs (graph mode).

    A segment's ops that read no earlier tensor (a feedback signal computed from the labels,
    the constant seed of its loss gradient, a broadcast of it to the tap's shape) would
    otherwise be ready when the step starts: the runtime would compute those of every segment
    at once and keep them all alive until their segment runs."""
    if barrier is None:
        return contextlib.nullcontext()
    return tf.control_dependencies(barrier[0])


def register(cls):
    """Register an `Algorithm` subclass as a Keras custom object."""
    return lq.utils.register_keras_custom_object(cls)
