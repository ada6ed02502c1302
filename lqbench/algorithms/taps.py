r"""Tap points of a functional Keras model: where the alternatives to backprop inject signals.

Every training method of paper 000 other than backprop needs the same thing from a network:
the tensors at its *tap points*, and control over the gradient that crosses them. `TapGraph`
finds them in any functional (or Sequential) Keras model, without per-architecture code, and
re-runs the model's own layer objects (so variables are shared with the wrapped model) with a
gradient gate at every tap.

# Where the taps are (methods.md §3)

The weight layers are the layers that own a ``kernel`` or ``depthwise_kernel`` (Dense, Conv,
DepthwiseConv, their Larq ``Quant*`` versions, EinsumDense ...). A weight layer is *first*
when no weight layer lies upstream of it (it sees the image). Taps:

- **input taps**: the input of every weight layer that is not a first layer, i.e. the tensor
  after activation, pooling, normalisation, flatten or residual add;
- **block taps** (``block_taps=True``, used by DRTP, HSIC and SigpropTL): every tensor
  downstream of a weight layer that is consumed by more than one layer -- in residual
  networks these are exactly the residual-block inputs (MobileNetV2 inverted-residual
  inputs, MLP-Mixer pre-norm block inputs).

Two granularities:

- ``granularity="edge"`` (DFA): a tap sits on the edge from the tensor to one weight layer;
  only that edge's gradient is gated, other consumers (e.g. a skip connection's ``Add``)
  backpropagate normally, exactly like the authors' backward hooks on each weight module.
- ``granularity="tensor"`` (DRTP, HSIC, SigpropTL): a tap gates the tensor for all its
  consumers, which cuts the network into independent *segments* that can be trained one
  after the other (`TapGraph.segments`).

# Where a tap sits relative to a binary activation

With binary activations the sign is the ``input_quantizer`` *inside* the next Larq layer, so
the tensor at a tap, \\(h_k\\), is the real-valued pre-sign tensor. The methods define their
signals on what the weight layer really consumes, the *tap view*

\\[ a_k = q_k(h_k), \\]

with \\(q_k\\) the consumer's input quantizer (identity when activations are real, or when the
consumers of a tensor tap do not share one quantizer, e.g. a residual-block input feeding a
binary conv and an ``Add``: block inputs stay real-valued, methods.md §1). A local loss
\\(L_k(a_k)\\) therefore reaches \\(h_k\\) through the quantizer's gradient estimator (the
saturating STE by default), as in the authors' PyTorch code where the hooked weight module's
input is the output of a separate ``Sign`` module. The quantizer is evaluated a second time on
the tap tensor for this purpose: exact for every deterministic estimator; for the stochastic
``gumbel`` estimator the noise sample of the view differs from the layer's own sample.

# Gates

Inside a `TapGraph` run every consumer behind a tap reads \\(\operatorname{sg}(h_k)\\)
(stop-gradient), and \\(h_k\\) itself is exposed. A method then *replaces* the gradient
by adding the surrogate \\(\sum \operatorname{sg}(s_k) \odot a_k\\) (its gradient w.r.t.
\\(a_k\\) is \\(s_k\\)), *stops* it by adding nothing, or trains the segment on a local loss
\\(L_k(a_k)\\). Backprop (`bp`) does not use taps.

!!! example
    ```python
    graph = TapGraph(model, granularity="tensor", block_taps=True)
    for tap in graph.taps:
        print(tap.name, tap.shape, tap.quantizer)
    env, logits = graph.run(x, training=True)      # env[tap.key] is h_k
    ```

# References
- [Crulis, Serres, de Runz & Venturini, An experimental comparative study of backpropagation
  and alternatives for training binary neural networks for image classification, 2024
  (paper 000)](https://arxiv.org/abs/2408.04460); code: https://github.com/BenCrulis/binary_nn_extended
  (per-module backward hooks on the weight layers, ``binary_nn/algorithms/``).
- [Nøkland, Direct Feedback Alignment Provides Learning in Deep Neural Networks,
  NeurIPS 2016](https://arxiv.org/abs/1609.01596) (a signal injected at every hidden layer).
- [Frenkel, Lefebvre & Bol, Learning Without Feedback: Fixed Random Learning Signals Allow for
  Feedforward Training of Deep Neural Networks, Frontiers in Neuroscience 15, 2021](https://arxiv.org/abs/1909.01311)
  (gradients stopped between layers: update-unlocked segments).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import tensorflow as tf

__all__ = ["Tap", "Segment", "TapGraph", "is_weight_layer", "tap_signal", "GRANULARITIES"]

GRANULARITIES = ("edge", "tensor")
_KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel")
_ACTIVATIONS = (
    tf.keras.layers.Activation,
    tf.keras.layers.ReLU,
    tf.keras.layers.LeakyReLU,
    tf.keras.layers.PReLU,
    tf.keras.layers.ELU,
    tf.keras.layers.ThresholdedReLU,
    tf.keras.layers.Softmax,
)
_RESHAPING = (tf.keras.layers.Reshape, tf.keras.layers.Permute, tf.keras.layers.Flatten)


def is_weight_layer(layer: tf.keras.layers.Layer) -> bool:
    """Whether ``layer`` is a weight layer (owns a kernel): Dense, Conv, DepthwiseConv, Larq's."""
    if isinstance(layer, tf.keras.Model):
        return False
    return any(getattr(layer, name, None) is not None for name in _KERNEL_ATTRIBUTES)


class _Ref:
    """Placeholder for a tensor of the flattened graph inside an op's argument list."""

    __slots__ = ("key",)

    def __init__(self, key: int):
        self.key = key


@dataclasses.dataclass
class _Op:
    index: int
    layer: tf.keras.layers.Layer
    call_args: Any
    call_kwargs: Any
    flat_arguments: list
    in_keys: list[int]
    out_keys: list[int]
    expects_training: bool


@dataclasses.dataclass
class Tap:
    """One tap point.

    # Attributes
        index: position in `TapGraph.taps` (data-flow order).
        key: the graph tensor \\(h_k\\) (a key of the environment returned by `TapGraph.run`).
        consumer: index of the weight-layer op for an edge tap, ``None`` for a tensor tap.
        kind: ``"input"`` (input of a weight layer) or ``"block"`` (branching tensor).
        shape: static shape of \\(h_k\\) without the batch dimension.
        quantizer: \\(q_k\\), the input quantizer of the consumer(s), or ``None`` (identity).
        name: readable name, e.g. ``"tap3_dense_2"``.
    """

    index: int
    key: int
    consumer: int | None
    kind: str
    shape: tuple
    quantizer: Any
    name: str
    axis: int = -1

    @property
    def channels(self) -> int:
        """Feature/channel dimension \\(d_k\\): the last axis (channels-last), or for a token
        tensor in transposed (hidden, tokens) layout (MLP-Mixer token mixing) the hidden axis,
        as the authors' code builds its feedback over the hidden axis broadcast over tokens."""
        return int(self.shape[self.axis])

    @property
    def positions(self) -> int:
        """Number of positions the channel dimension is broadcast over (1 for vectors)."""
        n = 1
        for d in self.shape:
            n *= int(d)
        return n // self.channels

    @property
    def size(self) -> int:
        return self.positions * self.channels

    def view(self, h: tf.Tensor, training=None) -> tf.Tensor:
        """The tap view \\(a_k = q_k(h_k)\\).

        ``training`` is passed to the quantizer (stochastic estimators such as ``gumbel``
        sample, and pass their pseudo-gradient, only in training)."""
        if self.quantizer is None:
            return h
        return self.quantizer(h, training=training)


@dataclasses.dataclass
class Segment:
    """Ops that compute one tensor tap (or the model output) from earlier taps and inputs.

    # Attributes
        tap: the `Tap` this segment ends at, ``None`` for the output segment.
        ops: indices of the ops run by this segment, in topological order.
        variables: trainable variables of those ops' layers.
    """

    tap: Tap | None
    ops: list[int]
    layers: list[tf.keras.layers.Layer]

    @property
    def variables(self) -> list[tf.Variable]:
        """Trainable variables of the segment's layers, read now (not when the graph was
        built): a layer frozen later (``layer.trainable = False``, e.g. by a phase callback
        before ``compile``) is left out at the next trace, as Keras's ``train_step`` does."""
        return _trainable_variables(self.layers)

    @property
    def losses(self) -> list[tf.Tensor]:
        """The segment's layers' own losses (weight regularizers, ``add_loss``), read now."""
        losses = []
        for layer in self.layers:
            losses.extend(layer.losses)
        return losses

    @property
    def is_output(self) -> bool:
        return self.tap is None


def _trainable_variables(layers) -> list[tf.Variable]:
    variables, seen = [], set()
    for layer in layers:
        for v in layer.trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    return variables


class TapGraph:
    """The flattened layer graph of a functional model, with tap points and segments.

    # Arguments
        model: a built functional or Sequential Keras model with one input and one output
            (nested functional models are flattened, other layers are atomic ops).
        granularity: ``"edge"`` or ``"tensor"`` (see the module docstring).
        block_taps: also tap branching tensors downstream of a weight layer.

    # Raises
        ValueError: for a subclassed (non-graph) model, several outputs, or a bad argument.
    """

    def __init__(self, model: tf.keras.Model, granularity: str = "tensor", block_taps: bool = False):
        if granularity not in GRANULARITIES:
            raise ValueError(f"TapGraph: unknown granularity {granularity!r}; allowed: {', '.join(GRANULARITIES)}")
        if granularity == "edge" and block_taps:
            raise ValueError("TapGraph: block_taps needs granularity='tensor'")
        if not getattr(model, "_is_graph_network", False):
            raise ValueError(
                f"TapGraph: model {model.name!r} is not a functional/Sequential graph model; "
                "the alternatives to backprop need a functional model (lqbench.models.build returns one)"
            )
        if len(model.outputs) != 1:
            raise ValueError(f"TapGraph: model {model.name!r} has {len(model.outputs)} outputs; exactly 1 is supported")
        self.model = model
        self.granularity = granularity
        self.block_taps = block_taps
        self.ops: list[_Op] = []
        self._shapes: dict[int, tuple] = {}
        self._next_key = 0
        mapping: dict[str, int] = {}
        self.input_keys = []
        for kt in model.inputs:
            key = self._new_key(kt)
            mapping[str(id(kt))] = key
            self.input_keys.append(key)
        self._flatten(model, mapping)
        self.output_key = mapping[str(id(model.outputs[0]))]
        self._analyse()

    # ------------------------------------------------------------------ construction
    def _new_key(self, kt) -> int:
        key = self._next_key
        self._next_key += 1
        self._shapes[key] = tuple(kt.shape[1:]) if kt.shape.rank is not None else ()
        return key

    def _flatten(self, model: tf.keras.Model, mapping: dict[str, int]) -> None:
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                if any(t_id not in mapping for t_id in node.flat_input_ids):
                    continue  # a node of another model sharing this layer
                layer = node.layer
                flat_outputs = tf.nest.flatten(node.outputs)
                if getattr(layer, "_is_graph_network", False) and len(layer.inputs) == len(node.flat_input_ids):
                    inner = {str(id(kt)): mapping[t_id] for kt, t_id in zip(layer.inputs, node.flat_input_ids)}
                    self._flatten(layer, inner)
                    for kt, inner_kt in zip(flat_outputs, layer.outputs):
                        mapping[str(id(kt))] = inner[str(id(inner_kt))]
                    continue
                flat_arguments = []
                in_keys = []
                for item in node._flat_arguments:
                    if str(id(item)) in mapping and hasattr(item, "_keras_history"):
                        key = mapping[str(id(item))]
                        flat_arguments.append(_Ref(key))
                        in_keys.append(key)
                    else:
                        flat_arguments.append(item)
                out_keys = []
                for kt in flat_outputs:
                    key = self._new_key(kt)
                    mapping[str(id(kt))] = key
                    out_keys.append(key)
                self.ops.append(
                    _Op(
                        index=len(self.ops),
                        layer=layer,
                        call_args=node.call_args,
                        call_kwargs=node.call_kwargs,
                        flat_arguments=flat_arguments,
                        in_keys=in_keys,
                        out_keys=out_keys,
                        expects_training=bool(getattr(layer, "_expects_training_arg", False)),
                    )
                )

    def _analyse(self) -> None:
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for op in self.ops:
            for key in op.out_keys:
                self.producer[key] = op.index
            for key in op.in_keys:
                users = self.consumers.setdefault(key, [])
                if op.index not in users:
                    users.append(op.index)
        # keys with a weight layer upstream (inclusive of the weight layer's own output)
        downstream: dict[int, bool] = {k: False for k in self.input_keys}
        for op in self.ops:
            upstream = any(downstream.get(k, False) for k in op.in_keys)
            for key in op.out_keys:
                downstream[key] = upstream or is_weight_layer(op.layer)
        # tensors in transposed (hidden, tokens) layout: after an odd number of last-two-axes
        # Permutes (MLP-Mixer's token mixing)
        self._transposed: dict[int, bool] = {k: False for k in self.input_keys}
        for op in self.ops:
            flag = any(self._transposed.get(k, False) for k in op.in_keys[:1])
            if isinstance(op.layer, tf.keras.layers.Permute) and tuple(op.layer.dims) == (2, 1):
                flag = not flag
            for key in op.out_keys:
                self._transposed[key] = flag
        self.weight_ops = [op.index for op in self.ops if is_weight_layer(op.layer)]
        self.first_ops = [i for i in self.weight_ops if not any(downstream[k] for k in self.ops[i].in_keys)]

        taps: list[Tap] = []
        if self.granularity == "edge":
            for i in self.weight_ops:
                op = self.ops[i]
                for key in dict.fromkeys(op.in_keys):
                    if downstream[key]:
                        taps.append(self._make_tap(len(taps), key, i, "input", [i]))
        else:
            keys: dict[int, str] = {}
            for i in self.weight_ops:
                for key in self.ops[i].in_keys:
                    if downstream[key]:
                        keys.setdefault(key, "input")
            if self.block_taps:
                for key, users in self.consumers.items():
                    if downstream.get(key) and len(users) > 1 and key != self.output_key:
                        keys[key] = "block"
            ordered = sorted(keys, key=lambda k: (self.producer.get(k, -1), k))
            for key in ordered:
                taps.append(self._make_tap(len(taps), key, None, keys[key], self.consumers.get(key, [])))
        self.taps = taps
        self._edge_taps = {(t.key, t.consumer) for t in taps if t.consumer is not None}
        self._tensor_taps = {t.key for t in taps if t.consumer is None}
        self.segments = self._make_segments() if self.granularity == "tensor" else []

    def _make_tap(self, index: int, key: int, consumer: int | None, kind: str, users: Sequence[int]) -> Tap:
        quantizer = None
        quantizers = [getattr(self.ops[u].layer, "input_quantizer", None) for u in users]
        if users and all(u in self.weight_ops for u in users) and all(q is not None for q in quantizers):
            configs = {(type(q).__name__, repr(sorted(q.get_config().items()))) for q in quantizers}
            if len(configs) == 1:
                quantizer = quantizers[0]
        where = self.ops[consumer].layer.name if consumer is not None else (
            self.ops[self.producer[key]].layer.name if key in self.producer else "input"
        )
        shape = self._shapes[key]
        axis = 0 if len(shape) == 2 and self._transposed.get(key, False) else -1
        return Tap(index, key, consumer, kind, shape, quantizer, f"tap{index}_{where}", axis)

    def _ancestors(self, key: int) -> set[int]:
        """Ops needed to compute ``key`` from inputs, stopping at (other) gated tensors."""
        found: set[int] = set()
        stack = [key]
        seen = set()
        while stack:
            k = stack.pop()
            if k in seen or k not in self.producer:
                continue
            seen.add(k)
            op = self.ops[self.producer[k]]
            found.add(op.index)
            for in_key in op.in_keys:
                if in_key in self._tensor_taps or (in_key, op.index) in self._edge_taps:
                    continue
                stack.append(in_key)
        return found

    def _make_segments(self) -> list[Segment]:
        assigned: set[int] = set()
        segments = []
        for tap in self.taps + [None]:
            key = self.output_key if tap is None else tap.key
            ops = sorted(self._ancestors(key) - assigned)
            assigned.update(ops)
            segments.append(Segment(tap, ops, self._layers_of(ops)))
        return segments

    def _layers_of(self, ops: Sequence[int]) -> list[tf.keras.layers.Layer]:
        layers, seen = [], set()
        for i in ops:
            layer = self.ops[i].layer
            if id(layer) not in seen:
                seen.add(id(layer))
                layers.append(layer)
        return layers

    def _variables_of(self, ops: Sequence[int]) -> list[tf.Variable]:
        return _trainable_variables(self._layers_of(ops))

    # ------------------------------------------------------------------ activation points
    def activation_point(self, op_index: int) -> tuple[int, Any]:
        """Where the activation right after weight op ``op_index`` lies: ``(key, quantizer)``.

        Walks from the weight layer's output through the ops that keep the tensor's shape and
        have one input and one consumer (batch / layer normalisation, dropout, float
        activations), as the authors' SigpropTL pairs each weight module with the next
        activation module it calls. It stops after a float activation layer (the activation
        output, ``quantizer`` ``None``) or before an op that pools, reshapes, adds, branches or
        weighs; there the activation is the sign the next weight layer applies (the
        quantizer of the tap the path reaches through pooling / flattening, ``None`` when
        no single one): conv -> BN -> max-pool -> sign equals conv -> BN -> sign -> max-pool
        (the authors' order), so the error is taken before the pool.
        """
        key = self.ops[op_index].out_keys[0]
        while key != self.output_key:
            users = self.consumers.get(key, [])
            if len(users) != 1:
                break
            op = self.ops[users[0]]
            if (
                is_weight_layer(op.layer)
                or len(set(op.in_keys)) != 1
                or len(op.out_keys) != 1
                or self._shapes[op.out_keys[0]] != self._shapes[key]
                or isinstance(op.layer, _RESHAPING)
            ):
                break
            key = op.out_keys[0]
            if isinstance(op.layer, _ACTIVATIONS):
                return key, None
        return key, self._downstream_quantizer(key)

    def _downstream_quantizer(self, key: int):
        taps = {t.key: t for t in self.taps if t.consumer is None}
        while key not in taps and key != self.output_key:
            users = self.consumers.get(key, [])
            if len(users) != 1:
                return None
            op = self.ops[users[0]]
            if is_weight_layer(op.layer):
                return getattr(op.layer, "input_quantizer", None)
            if len(set(op.in_keys)) != 1 or len(op.out_keys) != 1:
                return None
            key = op.out_keys[0]
        return taps[key].quantizer if key in taps else None

    # ------------------------------------------------------------------ execution
    @property
    def output_variables(self) -> list[tf.Variable]:
        """Variables trained by the true loss only: those of the output segment (or, with
        edge taps, of every op between the output layer's gated input and the logits)."""
        if self.segments:
            return self.segments[-1].variables
        return self._variables_of(sorted(self._ancestors(self.output_key)))

    def _read(self, env: dict, key: int, op_index: int, barrier=None) -> tf.Tensor:
        value = env[key]
        if key in self._tensor_taps or (key, op_index) in self._edge_taps:
            value = tf.stop_gradient(value)
        if barrier is not None and key in barrier[1]:
            with tf.control_dependencies(barrier[0]):
                value = tf.identity(value)
        return value

    def run_ops(self, ops: Sequence[int], env: dict, training: bool, barrier=None) -> None:
        """Run ``ops`` (indices), reading and writing tensors in ``env`` (key -> tensor).

        Consumers behind a tap read the stop-gradient of the tapped tensor. ``barrier`` is an
        optional ``(control_inputs, keys)``: reads of those keys wait for ``control_inputs``.
        """
        for i in ops:
            op = self.ops[i]
            flat = [self._read(env, a.key, i, barrier) if isinstance(a, _Ref) else a for a in op.flat_arguments]
            args, kwargs = tf.nest.pack_sequence_as((op.call_args, op.call_kwargs), flat)
            kwargs = dict(kwargs)
            if kwargs.get("training") is None:
                # also for layers whose ``call`` takes no ``training`` (Larq's Quant* layers):
                # Keras then uses it as the training mode of the layers called inside, e.g.
                # the input quantizer, which would otherwise fall back to the global learning
                # phase (0: the stochastic ``gumbel`` sign would be deterministic, no gradient)
                kwargs["training"] = training
            outputs = op.layer(*args, **kwargs)
            for key, value in zip(op.out_keys, tf.nest.flatten(outputs)):
                env[key] = value

    def new_env(self, inputs) -> dict:
        flat = tf.nest.flatten(inputs)
        if len(flat) != len(self.input_keys):
            raise ValueError(f"TapGraph: model takes {len(self.input_keys)} input(s), got {len(flat)}")
        return {k: tf.convert_to_tensor(v) for k, v in zip(self.input_keys, flat)}

    def run(self, inputs, training: bool = True) -> tuple[dict, tf.Tensor]:
        """Run the whole model with gates at the taps; returns ``(env, logits)``.

        ``env[tap.key]`` is the (differentiable) tapped tensor \\(h_k\\).
        """
        env = self.new_env(inputs)
        needed = sorted(set().union(self._ancestors(self.output_key), *[self._ancestors(t.key) for t in self.taps]))
        self.run_ops(needed, env, training)
        return env, env[self.output_key]

    def summary(self) -> str:
        """One line per tap: name, kind, shape, quantizer."""
        lines = []
        for t in self.taps:
            q = type(t.quantizer).__name__ if t.quantizer is not None else "identity"
            lines.append(f"{t.name}: {t.kind} tap, shape {t.shape}, view {q}")
        return "\n".join(lines)


def tap_signal(signal: tf.Tensor, tap: Tap, per_position: bool = False) -> tf.Tensor:
    """Reshape a ``(batch, d)`` signal to broadcast over the tap tensor.

    ``per_position=False``: ``d`` is the channel dimension, broadcast over positions;
    ``per_position=True``: ``d`` is the full tap size, reshaped to the tap shape.
    """
    if per_position:
        return tf.reshape(signal, [-1, *tap.shape])
    shape = [1] * len(tap.shape)
    shape[tap.axis] = tap.channels
    return tf.reshape(signal, [-1] + shape)

