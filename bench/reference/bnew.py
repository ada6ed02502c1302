"""lqbench vs the BNEW authors' code (Alasdair-P/bnew @f0c2019): STE, BNEW, BMD, ProxQuant, Bop.

Both sides train the same 3-layer MLP (12 -> 16 float "conv1" -> ReLU -> 16 binary "hidden"
-> ReLU -> 4 float "fc"; the authors' ``prox_opt`` binarizes every >1-D parameter except
``conv1.weight`` and ``fc.weight``, so only ``hidden.weight`` is binary on both sides) from
identical weights on identical batches (2 batches of 8 per epoch, no shuffling) and the
resulting weights are compared after every epoch. The authors' side is their training step
(``binary_main.py:82-95``: ``reg.pre_update(); model(x); loss.backward(); reg.post_update();
optimizer.step()``, ``reg._epoch(epoch)`` after each epoch) with their ``prox.py`` and
``bop.py`` imported from the checkout; the lqbench side is ``model.fit`` with what
``lqbench train`` builds from a method object (``lqbench.methods.get(name, **hparams)``: its
``prepare(model)``, ``optimizer(lr)`` and ``callbacks(epochs)``).

    .venv/bin/python bench/reference/bnew.py [--methods ste bnew bmd proxquant bop]

Needs torch (``pip install torch==2.13.0``, CPU); not part of the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

tf = H.quiet_tf()
import larq as lq  # noqa: E402
import torch  # noqa: E402

import lqbench  # noqa: E402
from lqbench import methods as M  # noqa: E402
from lqbench import optimizers as O  # noqa: E402
from lqbench.callbacks import set_hyper  # noqa: E402
from lqbench.optimizers.bmd import release_weight_clip, restore_weight_clip  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
REPO = "Alasdair-P/bnew"
COMMIT = "f0c2019"
SRC = H.REFSRC / "Alasdair-P+bnew"
D_IN, HID, CLASSES, BATCH, PER_EPOCH = 12, 16, 4, 8, 2
NETWORK = (f"MLP {D_IN}-{HID}-{HID}-{CLASSES} (ReLU), binary hidden kernel, float first/last layers; "
           f"batches of {BATCH}, {PER_EPOCH} per epoch, no shuffling")
#: lqbench's Adam is Keras's legacy Adam, whose epsilon-hat is added to sqrt(v) *before* bias
#: correction (effective eps / sqrt(1 - beta_2^t), 3.2e-6 at step 1 for the default 1e-7); torch adds
#: eps = 1e-8 after it. The comparison uses epsilon-hat 1e-10 so both are negligible next to |g|.
EPS_HAT = 1e-10
ADAM_EPS = {"name": "Adam epsilon",
            "reason": "lqbench uses Keras's legacy Adam (epsilon-hat added to sqrt(v) before bias correction: "
                      "1e-7 / sqrt(1 - 0.999^t), 3.2e-6 at step 1), the authors torch.optim.Adam (1e-8 after it). "
                      "With lqbench's default epsilon the weights differ by up to lr * eps_eff / |g| per step "
                      "(reported as max_abs_weight_diff_default_epsilon); the comparison above sets epsilon-hat to 1e-10"}


def _load_reference():
    if not SRC.is_dir():
        raise SystemExit(f"reference checkout not found: {SRC} (set LQBENCH_REFSRC)")
    if "matplotlib.pyplot" not in sys.modules:  # prox.py imports pyplot and never uses it
        with contextlib.suppress(ImportError):
            import matplotlib

            matplotlib.use("Agg")
    prox = H.import_file("bnew_prox", SRC / "prox.py")
    bop = H.import_file("bnew_bop", SRC / "bop.py")
    return prox, bop


PROX, BOP = _load_reference()


# ----------------------------------------------------------------------------- networks
class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Linear(D_IN, HID)
        self.hidden = torch.nn.Linear(HID, HID)
        self.fc = torch.nn.Linear(HID, CLASSES)

    def forward(self, x):
        return self.fc(torch.relu(self.hidden(torch.relu(self.conv1(x)))))


def keras_net():
    b = lqbench.Binarization(weights=True, activations=False, weight_estimator="ste")
    inputs = tf.keras.Input((D_IN,))
    x = tf.keras.layers.Dense(HID, activation="relu", name="conv1")(inputs)
    x = lq.layers.QuantDense(HID, activation="relu", name="hidden", **b.dense_kwargs("hidden"))(x)
    outputs = tf.keras.layers.Dense(CLASSES, name="fc")(x)
    return tf.keras.Model(inputs, outputs)


LAYERS = ("conv1", "hidden", "fc")


def keras_weights(model):
    """[W_conv1, b_conv1, W_hidden, ...] in torch layout (out, in), latent kernels."""
    out = []
    for name in LAYERS:
        layer = model.get_layer(name)
        kernel = getattr(layer.kernel, "latent_variable", layer.kernel)
        out += [kernel.numpy().T, layer.bias.numpy()]
    return out


def load_torch(net, weights):
    with torch.no_grad():
        for i, name in enumerate(LAYERS):
            getattr(net, name).weight.copy_(torch.tensor(weights[2 * i]))
            getattr(net, name).bias.copy_(torch.tensor(weights[2 * i + 1]))


def torch_weights(net):
    return [t.detach().numpy().copy() for name in LAYERS for t in (getattr(net, name).weight, getattr(net, name).bias)]


def data(epochs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * PER_EPOCH, D_IN)).astype("float32")
    y = rng.integers(0, CLASSES, BATCH * PER_EPOCH)
    return x, y


def init_model(seed, near_one=False):
    tf.keras.utils.set_random_seed(seed)
    model = keras_net()
    if near_one:  # a few latent weights at the edge of [-1, 1], to exercise clipping
        layer = model.get_layer("hidden")
        k = getattr(layer.kernel, "latent_variable", layer.kernel)
        w = k.numpy()
        w[0, :] = 0.995 * np.where(w[0, :] >= 0, 1.0, -1.0)
        k.assign(w)
    return model


# ----------------------------------------------------------------------------- authors' side
def authors_args(reg_type, reg, epochs, freeze=(-1,)):
    return types.SimpleNamespace(reg_type=reg_type, reg=reg, epochs=epochs, quant_val=False, eval=False,
                                 model="mlp", freeze_epoch=list(freeze))


def run_authors(weights, reg_type, reg, epochs, lr, x, y, bop=False):
    """The authors' loop; returns (weights after each epoch, reg value used in each epoch)."""
    net = TorchNet()
    load_torch(net, weights)
    loss_fn = torch.nn.CrossEntropyLoss()
    with contextlib.redirect_stdout(io.StringIO()):
        regulariser = PROX.prox_opt(net, authors_args(reg_type, reg, epochs), None)
        if bop:  # bop_main.py:79-90
            float_params = [p for n, p in net.named_parameters()
                            if p.dim() == 1 or n in ("conv1.weight", "fc.weight") or "bias" in n]
            ids = {id(p) for p in float_params}
            optimizers = [BOP.BOP([p for p in net.parameters() if id(p) not in ids], gamma=1e-4, tau=1e-8),
                          torch.optim.Adam(float_params, lr=lr)]
        else:  # optim.py get_optimizer("adam"), weight_decay 0
            optimizers = [torch.optim.Adam(net.parameters(), lr=lr)]
    snapshots, regs = [], []
    xt, yt = torch.tensor(x), torch.tensor(y)
    with contextlib.redirect_stdout(io.StringIO()):
        for epoch in range(epochs):
            regs.append(float(regulariser.reg))
            for i in range(PER_EPOCH):
                xb, yb = xt[i * BATCH:(i + 1) * BATCH], yt[i * BATCH:(i + 1) * BATCH]
                regulariser.pre_update()
                loss = loss_fn(net(xb), yb)
                for opt in optimizers:
                    opt.zero_grad()
                loss.backward()
                regulariser.post_update()
                for opt in optimizers:
                    opt.step()
            regulariser._epoch(epoch)
            snapshots.append(torch_weights(net))
    return snapshots, regs


# ----------------------------------------------------------------------------- lqbench side
class Snapshot(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(keras_weights(self.model))


class SetHyper(tf.keras.callbacks.Callback):
    def __init__(self, optimizer, name, values):
        super().__init__()
        self.optimizer_, self.name, self.values = optimizer, name, values

    def on_epoch_begin(self, epoch, logs=None):
        set_hyper(self.optimizer_, self.name, float(self.values[epoch]))


def with_epsilon(optimizer, epsilon=EPS_HAT):
    """Set epsilon-hat of every Adam-like optimizer in ``optimizer`` (itself or a CaseOptimizer's)."""
    for inner in getattr(optimizer, "optimizers", None) or [optimizer]:
        if hasattr(inner, "epsilon"):
            inner.epsilon = epsilon
    return optimizer


def run_lqbench(model, optimizer, x, y, epochs, callbacks=()):
    model.compile(optimizer, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    snap = Snapshot()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[*callbacks, snap])
    return snap.weights


def worst(a_snaps, b_snaps, transform=None):
    transform = transform or (lambda i, w: w)
    return max(H.max_abs_diff([transform(i, w) for i, w in enumerate(a)], b) for a, b in zip(a_snaps, b_snaps))


def clamp_hidden(i, w):
    return np.clip(w, -1, 1) if i == 2 else w


# ----------------------------------------------------------------------------- methods
def method_ste(args):
    epochs, lr = 3, 1e-2
    x, y = data(epochs)
    model = init_model(1, near_one=True)
    w0 = keras_weights(model)
    ref, _ = run_authors(w0, "ste_binary", 0.0, epochs, lr, x, y)
    method = M.get("ste", epsilon=EPS_HAT)
    method.prepare(model)
    clone = keras_net()
    clone.set_weights(model.get_weights())
    default = M.get("ste")  # lqbench's default epsilon-hat 1e-7
    default.prepare(clone)
    default_eps = worst(ref, run_lqbench(clone, default.optimizer(lr), x, y, epochs, default.callbacks(epochs)),
                        clamp_hidden)
    ours = run_lqbench(model, method.optimizer(lr), x, y, epochs, method.callbacks(epochs))
    diff = worst(ref, ours, clamp_hidden)
    raw = worst(ref, ours)
    H.write_result(
        "ste", reference={"repo": REPO, "commit": COMMIT, "file": "prox.py",
                          "symbol": "prox_opt.pre_update/post_update (reg_type='ste_binary') + torch.optim.Adam"},
        network=NETWORK, steps=epochs * PER_EPOCH, max_abs_weight_diff=diff, tolerance=1e-5,
        test="tests/test_optimizers.py::test_adam_coupled_weight_decay_matches_numpy",
        deviations=[
            {"name": "where the latent clip acts",
             "reason": "the authors clamp the saved latent weights to [-1, 1] before the Adam step (pre_update), "
                       "lqbench's WeightClip clamps after it; the binarized forward pass and every update are the "
                       f"same (compared as clamp(authors) vs lqbench; unclamped the latent weights differ by {raw:.3g} "
                       "only where the authors' step left the box)"},
            {"name": "sign(0)", "reason": "torch.sign(0) = 0, Larq's sign(0) = +1 (measure-zero for real weights)"},
            ADAM_EPS,
        ],
        extra={"raw_max_abs_weight_diff": raw, "max_abs_weight_diff_default_epsilon": default_eps})


def _projected(args, method, reg_type, make_optimizer, rule):
    """``make_optimizer(lr, project_first)``: the method's CaseOptimizer; ``rule``: its binary rule's class.

    The method's own lambda / kappa callbacks are replaced by `SetHyper` with the authors' values."""
    epochs, lr = 3, 1e-2
    x, y = data(epochs)
    reg0 = 0.3 if method == "bnew" else 0.03
    model = init_model(2)
    M.get(method).prepare(model)  # RealKernel quantizers, latent kernels clipped to [-1, 1]
    w0 = keras_weights(model)
    ref, regs = run_authors(w0, reg_type, reg0, epochs, lr, x, y)
    results = {}
    for order in ("after", "before"):
        m = keras_net()
        M.get(method).prepare(m)
        m.set_weights(model.get_weights())
        opt = with_epsilon(make_optimizer(lr, order == "before"))
        binary = next(inner for inner in opt.optimizers if isinstance(inner, rule))
        if order == "before":
            release_weight_clip(m)  # the authors' weights after the step are not clipped
        values = regs if method == "bnew" else [r / lr for r in regs]  # ProxQuant: kappa = lr * reg
        results[order] = worst(ref, run_lqbench(m, opt, x, y, epochs, [SetHyper(binary, "reg", values)]))
    return results, regs


def method_bnew(args):
    results, regs = _projected(args, "bnew", "bnew_binary",
                               lambda lr, first: M.get("bnew", project_first=first).optimizer(lr), O.BNEW)
    E = 3
    H.write_result(
        "bnew", reference={"repo": REPO, "commit": COMMIT, "file": "prox.py",
                           "symbol": "u_reg via prox_opt.soft_project_params (reg_type='bnew_binary'), binary_main.py:82-95"},
        network=NETWORK, steps=E * PER_EPOCH, max_abs_weight_diff=results["before"], tolerance=1e-5,
        test="tests/test_reference_formulas.py::test_project_first_applies_the_projection_before_the_adam_step",
        deviations=[
            {"name": "push after the Adam step (default) vs before (project_first=True)",
             "reason": "lqbench's default projects the weights after the Adam step so they always lie in [-1, 1]; "
                       "the authors push between backward() and step() and the forward pass then sees the "
                       f"unprojected weights. Default order: max |dw| {results['after']:.3g} after {E * PER_EPOCH} "
                       f"steps; BNEW(project_first=True) with the kernel clip lifted: {results['before']:.3g} "
                       "(the number above)"},
            {"name": "lambda schedule off by one epoch",
             "reason": "the authors' prox_opt sets lambda = reg (e + 1) / E after epoch e, so epoch e trains with "
                       "reg max(e, 1) / E (values used here: " + ", ".join(f"{r:.3g}" for r in regs) + "); "
                       "lqbench.methods.bnew.bnew_lambda uses reg (e + 1) / E during epoch e (one epoch ahead); "
                       "both sides were given the authors' values here"},
            ADAM_EPS,
        ],
        extra={"max_abs_weight_diff_default_order": results["after"], "lambda_per_epoch": regs})


def method_proxquant(args):
    out = {}
    for prox, reg_type in (("l1", "l1_binary"), ("l2", "l2_binary")):
        # the method object has no project_first option: the same CaseOptimizer by rule name
        out[prox], regs = _projected(
            args, "proxquant", reg_type,
            lambda lr, first, p=prox: (M.get("proxquant", prox=p).optimizer(lr) if not first else
                                       O.build("proxquant", lr, prox=p, project_first=True)), O.ProxQuant)
    E = 3
    H.write_result(
        "proxquant", reference={"repo": REPO, "commit": COMMIT, "file": "prox.py",
                                "symbol": "w_reg / U_reg (reg_type='l1_binary' / 'l2_binary')"},
        network=NETWORK, steps=E * PER_EPOCH, max_abs_weight_diff=max(out["l1"]["before"], out["l2"]["before"]),
        tolerance=1e-5, test="tests/test_reference_formulas.py::test_project_first_applies_the_projection_before_the_adam_step",
        deviations=[
            {"name": "kappa = lr * reg_rate * e (Bai et al.) vs kappa = reg (e + 1) / E (paper 001's code)",
             "reason": "lqbench follows ProxQuant's own homotopy (kappa scales with the current learning rate); "
                       "the BNEW authors' re-implementation uses the BNEW lambda schedule as kappa directly. "
                       "Here lqbench's reg was set to the authors' kappa / lr so the prox maps are compared"},
            {"name": "prox after the Adam step (default) vs before (project_first=True)",
             "reason": f"default order: max |dw| l1 {out['l1']['after']:.3g}, l2 {out['l2']['after']:.3g}; "
                       f"ProxQuant(project_first=True) with the kernel clip lifted: l1 {out['l1']['before']:.3g}, "
                       f"l2 {out['l2']['before']:.3g}"},
            ADAM_EPS,
        ],
        extra={"by_prox": out, "kappa_per_epoch": regs})


def method_bmd(args):
    epochs, lr, rho = 4, 1e-2, 1.3
    x, y = data(epochs)
    model = init_model(3, near_one=True)
    w0 = keras_weights(model)
    ref, betas = run_authors(w0, "mirror_binary", rho, epochs, lr, x, y)
    results = {}
    for clip in (False, True):
        m = keras_net()
        m.set_weights(model.get_weights())
        method = M.get("bmd", rho=rho, interval="epoch", finetune_fraction=0.0)  # no sign + freeze epoch
        method.prepare(m)
        if clip:
            restore_weight_clip(m)  # the former behaviour: Larq's WeightClip left on the latent weights
        opt = with_epsilon(method.optimizer(lr))
        results[clip] = worst(ref, run_lqbench(m, opt, x, y, epochs, method.callbacks(epochs)))
    H.write_result(
        "bmd", reference={"repo": REPO, "commit": COMMIT, "file": "prox.py",
                          "symbol": "prox_opt.pre_update/post_update + adjust_reg (reg_type='mirror_binary')"},
        network=NETWORK, steps=epochs * PER_EPOCH, max_abs_weight_diff=results[False], tolerance=1e-5,
        test="tests/test_reference_formulas.py::test_bmd_beta_follows_the_authors_epoch_rule_and_cap",
        deviations=[
            {"name": "fixed: weight clip on the latent weights",
             "reason": "lqbench used to leave Larq's WeightClip on BMD's latent weights; the authors never clamp "
                       f"them. With the clip (the former behaviour) max |dw| was {results[True]:.3g}; "
                       "lqbench.methods.get('bmd').prepare(model) now lifts it (release_weight_clip)"},
            {"name": "fixed: beta per epoch, capped at 1e35",
             "reason": "beta during epoch e is min(rho^max(e-1, 0), 1e35) as in prox_opt.adjust_reg (values here: "
                       + ", ".join(f"{b:.4g}" for b in betas) + "), the default interval='epoch' of BMDSchedule; "
                       "an integer interval keeps the per-step form as an option"},
            ADAM_EPS,
        ],
        extra={"max_abs_weight_diff_with_weight_clip": results[True], "beta_per_epoch": betas})


def method_bop(args):
    epochs, lr = 3, 1e-2
    x, y = data(epochs)
    model = init_model(4)
    method = M.get("bop", threshold=1e-8, gamma=1e-4)  # gamma_schedule 'constant'
    method.prepare(model)  # binary kernels set to sign(w)
    w0 = keras_weights(model)
    ref, _ = run_authors(w0, "bop_binary", 0.0, epochs, lr, x, y, bop=True)
    ours = run_lqbench(model, with_epsilon(method.optimizer(lr)), x, y, epochs, method.callbacks(epochs))
    diff = worst(ref, ours)
    flips = int(np.sum(ours[-1][2] != w0[2]))
    H.write_result(
        "bop", reference={"repo": REPO, "commit": COMMIT, "file": "bop.py", "symbol": "BOP.step (bop_main.py:89-90)"},
        network=NETWORK, steps=epochs * PER_EPOCH, max_abs_weight_diff=diff, tolerance=1e-5,
        test="tests/test_optimizers.py::test_bop_flips_exactly_where_w_m_exceeds_threshold",
        deviations=[
            {"name": "implementation",
             "reason": "lqbench runs larq.optimizers.Bop unchanged (larq/larq@fe3ce52 larq/optimizers.py:337-338, "
                       "identical to the installed larq 0.14.0); the authors' torch BOP flips where |m| > tau and "
                       "sign(m) = sign(w), the same set as w m > tau for w in {-1, +1}"},
            {"name": "gamma schedule",
             "reason": "the authors decay gamma linearly to 0 (bop_main.py:92-93, LRScheduler 'linear'); lqbench's "
                       "gamma_schedule='linear' does that per epoch (one value per epoch, the authors' per "
                       "iteration), used by the paper-001 presets since issue 14 item 13 "
                       "(tests/test_presets.py::test_paper001_presets_follow_the_authors_code). "
                       "Constant here on both sides"},
            ADAM_EPS,
        ],
        extra={"flipped_weights": flips})


METHODS = {"ste": method_ste, "bnew": method_bnew, "bmd": method_bmd, "proxquant": method_proxquant, "bop": method_bop}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args(argv)
    for name in args.methods:
        METHODS[name](args)


if __name__ == "__main__":
    main()
