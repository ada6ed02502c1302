#!/usr/bin/env python3
r"""Reference equivalence of lqbench's paper-000 methods with their authors' PyTorch code.

Seed 000's code (``BenCrulis/binary_nn_extended`` @212664d) trains binary networks with its
own binarization (``replace_activations_to_sign``: every activation function becomes a sign
with the saturating STE; ``apply_binarization_parametrization``: sign weights with the
saturating STE, first and last weight layers spared; ``clip_weights_for_binary_layers`` after
every batch) and its ``DFA``, ``DRTPFast``, ``HSIC`` and ``Pepita`` (SigpropTL) classes, or
plain backprop (``train_iteration``). This script builds the same small network on both
sides, copies the Keras weights into torch (kernel layouts HWIO -> OIHW, dense (in, out) ->
(out, in), the classifier's flattened NHWC rows reordered to NCHW), copies lqbench's fixed
random feedback matrices into the reference's buffers (``dfa_backward``, ``drtp_backward``,
``Pepita.bw``), feeds the identical batches, takes ``k`` update steps on both sides with the
same optimizer, and compares every trainable variable.

lqbench side: ``Binarization(inputs="activations", ...)`` (the sign in place of each
activation function, zero padding), VGG-small with ``block_order="conv_bn_act_pool"``
(torchvision's order, the sign before pooling), ``lqbench.algorithms.build(method, ...)``,
``lqbench.optimizers.build(...)`` (coupled weight decay, PyTorch semantics).

Networks (a binary MLP and a small convolutional network):

- ``mlp``: Flatten, Dense 64-32 (float), sign, Dense 32-32 (binary), sign, Dense 32-10
  (float), biases, no BN (the peer harness's MLP, narrower);
- ``cnn``: lqbench's ``vgg_small`` at width 1/16 on 16x16x1: conv 8 BN sign, conv 8 BN sign
  pool, conv 16 BN sign, conv 16 BN sign pool, conv 32 BN sign, conv 32 BN sign pool, Flatten,
  Dense 128-10 (float); first conv float, 3x3 convs without bias, zero padding.

Needs torch (``.venv/bin/pip install torch==2.13.0 mlp-mixer-pytorch==0.1.1 einops tqdm``)
and a checkout of the reference (``--peer``, default /work/refsrc/BenCrulis+binary_nn_extended);
runs outside CI. Writes ``bench/results/reference/<method>.json``.

    .venv/bin/python bench/reference/seed000.py --methods bp dfa drtp hsic sigprop
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import types

import lqbench  # noqa: F401  (tf-keras before TensorFlow)

import larq as lq
import numpy as np
import tensorflow as tf

import lqbench.algorithms
import lqbench.models
import lqbench.optimizers
from lqbench import Binarization

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REPO = "BenCrulis/binary_nn_extended"
COMMIT = "212664d5a526566275ee9ff44119985bf8113189"
DEFAULT_PEER = "/work/refsrc/BenCrulis+binary_nn_extended"
CLASSES = 10
METHODS = ("bp", "dfa", "drtp", "hsic", "sigprop")
REFERENCE = {
    "bp": ("binary_nn/training/training.py", "train_iteration"),
    "dfa": ("binary_nn/algorithms/dfa.py", "DFA"),
    "drtp": ("binary_nn/algorithms/drtp.py", "DRTPFast"),
    "hsic": ("binary_nn/algorithms/hsic.py", "HSIC"),
    "sigprop": ("binary_nn/algorithms/pepita.py", "Pepita"),
}
TESTS = {
    "bp": "tests/test_algorithms.py::test_bp_update_is_plain_gradient",
    "dfa": "tests/test_algorithms.py::test_dfa_update_matches_numpy",
    "drtp": "tests/test_algorithms.py::test_drtp_update_matches_numpy",
    "hsic": "tests/test_algorithms.py::test_hsic_loss_and_update_match_numpy",
    "sigprop": "tests/test_algorithms.py::test_sigprop_update_matches_authors_code",
}


# ----------------------------------------------------------------------------- the reference
def import_peer(peer_dir: str):
    """Put the reference on sys.path; stub torchvision's InvertedResidual (imported by drtp/hsic/
    pepita only to list it among modules to detach; none of our networks contains one)."""
    if not os.path.isdir(os.path.join(peer_dir, "binary_nn")):
        raise SystemExit(f"reference checkout not found at {peer_dir} (--peer)")
    sys.path.insert(0, peer_dir)
    import torch.nn as nn

    try:
        import torchvision.models.mobilenetv2  # noqa: F401
    except Exception:
        class InvertedResidual(nn.Module):  # placeholder, never instantiated
            pass

        tv, tvm, mnv2 = (types.ModuleType(n) for n in ("torchvision", "torchvision.models",
                                                       "torchvision.models.mobilenetv2"))
        mnv2.InvertedResidual = InvertedResidual
        tv.models, tvm.mobilenetv2 = tvm, mnv2
        sys.modules.update({"torchvision": tv, "torchvision.models": tvm, "torchvision.models.mobilenetv2": mnv2})


# ----------------------------------------------------------------------------- networks
def keras_mlp(b: Binarization) -> tf.keras.Model:
    from lqbench.models import _blocks as B

    inputs = tf.keras.Input((8, 8, 1), name="input")
    x = tf.keras.layers.Flatten(name="flatten")(inputs)
    x = B.dense(x, 32, binarization=b, role="first", name="fc1")
    x = B.activation(x, b, "relu", "fc1_relu")
    x = B.dense(x, 32, binarization=b, role="hidden", name="fc2")
    x = B.activation(x, b, "relu", "fc2_relu")
    outputs = B.dense(x, CLASSES, binarization=b, role="last", name="classifier")
    return tf.keras.Model(inputs, outputs, name="mlp")


def keras_cnn(b: Binarization) -> tf.keras.Model:
    return lqbench.models.build("vgg_small", (16, 16, 1), CLASSES, b, width_multiplier=1 / 16, activation="relu",
                                block_order="conv_bn_act_pool")


def torch_mlp(torch):
    nn = torch.nn

    class MLP(nn.Module):  # layout of the peer harness's MLP
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
            self.output = nn.Linear(32, CLASSES)

        def forward(self, x):
            return self.output(self.layers(x))

    model = MLP()
    names = {"fc1": "layers.1", "fc2": "layers.3", "classifier": "output"}
    return model, names, "output", ["layers.1", "output"]


def torch_cnn(torch):
    nn = torch.nn
    layers, names, index = [], {}, 0
    cin = 1
    for item in (8, 8, "M", 16, 16, "M", 32, 32, "M"):  # VGG-small / 16, torchvision vgg_bn order
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        index += 1
        names[f"conv{index}"] = f"features.{len(layers)}"
        names[f"conv{index}_bn"] = f"features.{len(layers) + 1}"
        layers += [nn.Conv2d(cin, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU()]
        cin = item

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 2 * 2, CLASSES))

        def forward(self, x):
            return self.classifier(self.features(x))

    names["classifier"] = "classifier.1"
    return CNN(), names, "classifier.1", ["features.0", "classifier.1"]


def flatten_permutation(shape_hwc):
    """Index map: torch's NCHW-flattened position i reads Keras's NHWC-flattened position perm[i]."""
    h, w, c = shape_hwc
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def copy_weights(kmodel, tmodel, names, torch, classifier_in_hwc=None):
    """Keras -> torch, before the reference's parametrizations are registered."""
    with torch.no_grad():
        for kname, tname in names.items():
            layer, module = kmodel.get_layer(kname), tmodel.get_submodule(tname)
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                module.weight.copy_(torch.from_numpy(layer.gamma.numpy()))
                module.bias.copy_(torch.from_numpy(layer.beta.numpy()))
                module.running_mean.copy_(torch.from_numpy(layer.moving_mean.numpy()))
                module.running_var.copy_(torch.from_numpy(layer.moving_variance.numpy()))
                continue
            kernel = layer.kernel.numpy()
            if kernel.ndim == 4:
                value = kernel.transpose(3, 2, 0, 1)
            else:
                value = kernel.T
                if kname == "classifier" and classifier_in_hwc is not None:
                    value = value[:, flatten_permutation(classifier_in_hwc)]
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(value)))
            if getattr(layer, "bias", None) is not None:
                module.bias.copy_(torch.from_numpy(layer.bias.numpy()))


def torch_param(module, attribute):
    if hasattr(module, "parametrizations") and attribute in module.parametrizations:
        return getattr(module.parametrizations, attribute).original
    return getattr(module, attribute)


def compare(kmodel, tmodel, names, classifier_in_hwc=None):
    """Max |difference| per variable (trainable variables, and BN moving statistics apart)."""
    diffs, stats = {}, {}
    for kname, tname in names.items():
        layer, module = kmodel.get_layer(kname), tmodel.get_submodule(tname)
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            pairs = {"gamma": (layer.gamma, module.weight), "beta": (layer.beta, module.bias)}
            for key, kv, tv in (("moving_mean", layer.moving_mean, module.running_mean),
                                ("moving_variance", layer.moving_variance, module.running_var)):
                stats[f"{kname}/{key}"] = float(np.max(np.abs(kv.numpy() - tv.detach().numpy())))
        else:
            pairs = {"kernel": (layer.kernel, torch_param(module, "weight"))}
            if getattr(layer, "bias", None) is not None:
                pairs["bias"] = (layer.bias, module.bias)
        for key, (kv, tv) in pairs.items():
            k = kv.numpy()
            t = tv.detach().numpy()
            if key == "kernel":
                if k.ndim == 4:
                    k = k.transpose(3, 2, 0, 1)
                else:
                    k = k.T
                    if kname == "classifier" and classifier_in_hwc is not None:
                        k = k[:, flatten_permutation(classifier_in_hwc)]
            diffs[f"{kname}/{key}"] = float(np.max(np.abs(k - t)))
    return diffs, stats


# ----------------------------------------------------------------------------- one comparison
def run_case(method, network, optimizer, steps, args, torch):
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(args.seed)
    torch.manual_seed(args.seed)
    b = Binarization(weights=True, activations=True, weight_estimator="ste", activation_estimator="ste_clipped",
                     keep_first_last=True, inputs="activations", pad_values=0.0)
    kmodel = keras_mlp(b) if network == "mlp" else keras_cnn(b)
    tmodel, names, output_layer, spared = torch_mlp(torch) if network == "mlp" else torch_cnn(torch)
    classifier_in = None if network == "mlp" else (2, 2, 32)
    # Non-zero biases: a binary dense layer's integer sums plus a zero bias hit exactly 0, where
    # Larq's sign is +1 and the reference's -1 (deviation "sign(0)").
    bias_rng = np.random.default_rng(args.seed + 2)
    for layer in kmodel.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(bias_rng.uniform(-0.5, 0.5, layer.bias.shape).astype("float32"))
    copy_weights(kmodel, tmodel, names, torch, classifier_in)

    from binary_nn.models.common.binary.binarization import (
        apply_binarization_parametrization, clip_weights_for_binary_layers, replace_activations_to_sign)
    from binary_nn.training.training import train_iteration

    replace_activations_to_sign(tmodel, unsaturating=False)
    apply_binarization_parametrization(tmodel, spared)

    # lqbench trainer
    hparams = {"sigprop": {"alpha": 1.0, "normalize_error": True}, "hsic": {"gamma": args.gamma}}.get(method, {})
    trainer = lqbench.algorithms.build(method, kmodel, seed=args.seed, **hparams)
    eps = {"adam": {"epsilon": args.adam_epsilon}, "sgd": {"momentum": args.momentum}}[optimizer]
    kopt = lqbench.optimizers.build(optimizer, args.lr, args.weight_decay, **eps)
    trainer.compile(kopt, run_eagerly=True)

    # reference algorithm, with lqbench's feedback matrices copied into its buffers
    algo = None
    if method == "dfa":
        from binary_nn.algorithms.dfa import DFA

        algo = DFA(output_layer, init="normal")
        for tap, fb in zip(trainer.graph.taps, trainer.feedback):
            consumer = trainer.graph.ops[tap.consumer].layer.name
            register_feedback(tmodel, names, consumer, "dfa_backward", fb.numpy(), tap, classifier_in, torch)
    elif method == "drtp":
        from binary_nn.algorithms.drtp import DRTPFast

        algo = DRTPFast(output_layer, CLASSES, init="normal")
        for tap, fb in zip(trainer.graph.taps, trainer.feedback):
            for op_index in trainer.graph.consumers[tap.key]:
                consumer = trainer.graph.ops[op_index].layer.name
                if consumer in names:
                    register_feedback(tmodel, names, consumer, "drtp_backward", fb.numpy(), tap, classifier_in, torch)
    elif method == "hsic":
        from binary_nn.algorithms.hsic import HSIC

        algo = HSIC(CLASSES, gamma=args.gamma, mode="biased")
    elif method == "sigprop":
        from binary_nn.algorithms.pepita import Pepita

        algo = Pepita(CLASSES, output_layer, gain=1.0)
        f = trainer.input_feedback.numpy()  # (C, H*W*Cin) in NHWC order
        algo.bw = torch.from_numpy(np.ascontiguousarray(f[:, flatten_permutation((*kmodel.input_shape[1:3], kmodel.input_shape[3]))]))
    if optimizer == "adam":
        topt = torch.optim.Adam(tmodel.parameters(), lr=args.lr, weight_decay=args.weight_decay, eps=args.adam_epsilon)
    else:
        topt = torch.optim.SGD(tmodel.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)

    rng = np.random.default_rng(args.seed + 1)
    loss_fn = torch.nn.functional.cross_entropy
    history = []
    for step in range(steps):
        x = rng.normal(size=(args.batch, *kmodel.input_shape[1:])).astype("float32")
        y = rng.integers(0, CLASSES, size=(args.batch,))
        # standard strides (a size-1 channel axis would otherwise let torch pick channels_last,
        # and the reference's HSIC calls .view on the tensors)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).clone(memory_format=torch.contiguous_format)
        yt = torch.from_numpy(y.astype("int64"))
        if step == 0:  # forward passes before any update (train mode; both sides' BN statistics move once)
            tmodel.train()
            with torch.no_grad():
                forward_diff = float(np.max(np.abs(kmodel(x, training=True).numpy() - tmodel(xt).numpy())))
        trainer.train_on_batch(x, y)
        if algo is None:
            train_iteration(tmodel, xt, yt, topt, loss_fn)
        else:
            algo(tmodel, xt, yt, topt, loss_fn)
        clip_weights_for_binary_layers(tmodel)  # the reference's train.py, after every batch
        diffs, stats = compare(kmodel, tmodel, names, classifier_in)
        history.append({"step": step + 1, "max_abs_weight_diff": max(diffs.values()),
                        "worst": max(diffs, key=diffs.get),
                        "max_abs_bn_stat_diff": max(stats.values()) if stats else 0.0})
    diffs, stats = compare(kmodel, tmodel, names, classifier_in)
    # diagnostic: pre-sign values at (or within float rounding of) the sign's threshold on the last batch
    sign_inputs = [layer.input for layer in kmodel.layers if type(layer).__name__ == "SteSign"]
    near = tf.keras.Model(kmodel.inputs, sign_inputs)(x, training=True)
    near = near if isinstance(near, list) else [near]
    ties = {"exact_zero": int(sum(int(np.sum(v.numpy() == 0)) for v in near)),
            "abs_below_1e-5": int(sum(int(np.sum(np.abs(v.numpy()) < 1e-5)) for v in near)),
            "values": int(sum(int(np.prod(v.shape)) for v in near))}
    return {"network": network, "optimizer": optimizer, "steps": steps, "initial_logit_diff": forward_diff,
            "max_abs_weight_diff": max(diffs.values()), "pre_sign_ties_last_batch": ties, "per_variable": diffs, "bn_statistics": stats,
            "per_step": history}


def register_feedback(tmodel, names, consumer, buffer, value, tap, classifier_in, torch):
    module = tmodel.get_submodule(names[consumer])
    if consumer == "classifier" and classifier_in is not None and value.shape[1] == int(np.prod(classifier_in)):
        value = value[:, flatten_permutation(classifier_in)]
    module.register_buffer(buffer, torch.from_numpy(np.ascontiguousarray(value)), persistent=True)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--networks", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    ap.add_argument("--optimizers", nargs="+", default=["sgd", "adam"], choices=["sgd", "adam"])
    ap.add_argument("--steps", type=int, default=3, help="update steps (each on a new identical batch)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--weight-decay", type=float, default=1e-5)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--adam-epsilon", type=float, default=1e-30,
                    help="both sides (Keras's epsilon-hat and PyTorch's eps enter differently; tiny = same formula)")
    ap.add_argument("--gamma", type=float, default=2.0)
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer", default=DEFAULT_PEER)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "reference"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--rewrite", action="store_true",
                    help="rebuild the summaries from the runs stored in the existing JSON files (no training)")
    args = ap.parse_args(argv)
    if args.rewrite:
        for method in args.methods:
            path = os.path.join(args.out, f"{method}.json")
            with open(path) as f:
                old = json.load(f)
            args.steps = old["steps"]
            write(method, old["runs"], args, old["command"])
        return
    import torch

    torch.set_num_threads(2)
    import_peer(args.peer)
    command = "python bench/reference/seed000.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    for method in args.methods:
        runs = []
        for network in args.networks:
            for optimizer in args.optimizers:
                run = run_case(method, network, optimizer, args.steps, args, torch)
                print(f"{method:8s} {network:4s} {optimizer:4s} k={args.steps}: max|dW| = {run['max_abs_weight_diff']:.3g} "
                      f"(worst {run['per_step'][-1]['worst']}; per step "
                      f"{', '.join('%.2g' % h['max_abs_weight_diff'] for h in run['per_step'])})", flush=True)
                runs.append(run)
        write(method, runs, args, command)


_COMMON = [
    {"name": "sign(0)", "reason": "Larq's sign is +1 at 0, the reference's -1 (x > 0 ? 1 : -1); a binary dense layer's "
     "integer sums with a zero bias hit 0 (about 14% of units at width 32), so the script starts from non-zero "
     "biases; untrained BN in eval mode (running statistics 0/1) also leaves integer conv sums at 0"},
    {"name": "Adam epsilon", "reason": "Keras's legacy Adam adds epsilon-hat to sqrt(v_t), PyTorch adds eps to "
     "sqrt(v_t / (1 - beta_2^t)); compared with epsilon 1e-30 on both sides (same formula); with the defaults "
     "(1e-7 / 1e-8) steps of parameters whose gradient is only the weight decay (|g| ~ 1e-6) differ by up to ~0.75 lr"},
    {"name": "BN moving variance", "reason": "Keras updates it with the biased batch variance, PyTorch with the "
     "unbiased one (factor m/(m-1)); no effect on trained weights, only on eval-mode outputs"},
]
DEVIATIONS: dict[str, list[dict]] = {
    "bp": list(_COMMON),
    "dfa": list(_COMMON),
    "drtp": _COMMON + [
        {"name": "residual-block inputs", "reason": "lqbench also injects t B_k at residual-block inputs (the "
         "reference only detaches them); the compared networks have none"}],
    "hsic": list(_COMMON),
    "sigprop": _COMMON + [
        {"name": "alpha", "reason": "the reference ignores alpha (passed as kaiming_normal_'s `a` with a linear "
         "nonlinearity) and uses the batch-mean error e/B; compared with alpha=1, normalize_error=True"},
        {"name": "error_at / pass1 options", "reason": "lqbench's defaults follow the reference since issue 14 "
         "item 8 (error at the activation right after each weight layer, eval-mode pass 1, BN parameters fixed); "
         "error_at='tap' and pass1='train' keep lqbench's earlier rule as options"},
    ],
}


def write(method, runs, args, command):
    """The headline is the binary MLP (SGD and Adam); the CNN runs are reported in ``runs`` and,
    while they differ, as an open deviation (the script's CNN set-up is not yet equal before any
    update, see ``initial_logit_diff``)."""
    headline = [r for r in runs if r["network"] == "mlp"] or runs
    worst = max(headline, key=lambda r: r["max_abs_weight_diff"])
    file, symbol = REFERENCE[method]
    deviations = list(DEVIATIONS.get(method, []))
    cnn = [r for r in runs if r["network"] == "cnn"]
    if cnn and max(r["max_abs_weight_diff"] for r in cnn) > args.tolerance:
        deviations.append({"name": "cnn comparison open", "reason": (
            f"on VGG-small/16 the weights differ by up to {max(r['max_abs_weight_diff'] for r in cnn):.3g} after "
            f"{args.steps} steps, but the two networks' training-mode logits already differ by "
            f"{max(r['initial_logit_diff'] for r in cnn):.3g} before any update with no pre-sign value within 1e-5 "
            "of 0: a set-up difference of this script's CNN, not yet located (in an isolated check, one batch's "
            "forward pass and every gradient agreed to 1e-6); not a method result")})
    result = {
        "method": method,
        "reference": {"repo": REPO, "commit": COMMIT, "file": file, "symbol": symbol},
        "network": "binary MLP (" + NETWORK_TEXT.split(";")[0] + "); SGD and Adam",
        "steps": args.steps,
        "max_abs_weight_diff": worst["max_abs_weight_diff"],
        "tolerance": args.tolerance,
        "equal": bool(worst["max_abs_weight_diff"] <= args.tolerance),
        "test": TESTS[method],
        "deviations": deviations,
        "command": command,
        "settings": {"batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay, "momentum": args.momentum,
                     "adam_epsilon": args.adam_epsilon, "gamma": args.gamma if method == "hsic" else None,
                     "binarization": "Binarization(inputs='activations', pad_values=0, weight_estimator='ste', "
                                     "activation_estimator='ste_clipped', keep_first_last=True)"},
        "runs": runs,
    }
    if args.no_write:
        return
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{method}.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


NETWORK_TEXT = ("mlp: 64-32(float)-sign-32(binary)-sign-10(float) with biases; cnn: vgg_small width 1/16 on 16x16x1, "
                "conv->BN->sign->pool, zero padding, first conv and classifier float")

if __name__ == "__main__":
    main()
