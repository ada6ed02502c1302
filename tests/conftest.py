"""Shared test setup: Keras 2, real MNIST from ../shared/data, small and deterministic."""
import os
import pathlib
import tempfile

import pytest

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow is imported)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()

if "LQBENCH_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["LQBENCH_DATA_DIR"] = str(SHARED_DATA)

# Never let a test wait on a network download.
os.environ.setdefault("LQBENCH_OFFLINE", "1")
# Decoded image folders are cached in a folder of the test session's own, not the user's cache.
os.environ.setdefault("LQBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="lqbench-test-cache-"))


def _mnist_dir():
    root = os.environ.get("LQBENCH_DATA_DIR")
    if root and (pathlib.Path(root) / "mnist" / "train-images-idx3-ubyte.gz").exists():
        return pathlib.Path(root) / "mnist"
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder with the four official MNIST .gz files; the test skips with a reason if absent."""
    path = _mnist_dir()
    if path is None:
        pytest.skip("real MNIST not found: set LQBENCH_DATA_DIR to a folder holding mnist/*.gz")
    return path


@pytest.fixture(autouse=True)
def _seed():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1234)
    yield
    tf.keras.backend.clear_session()


# ----------------------------------------------------------------------------- the smoke subset
# `pytest -m smoke` (`make test-smoke`): what CI runs on Python 3.10 and 3.12, next to the full
# suite on 3.11 (.ci/run). Import, data, one training per algorithm and per binarizing optimizer or
# method, one LCE conversion, the CLI. Listed here by test id (file::test, optionally [parameter
# id]; without one, every parameter) rather than decorated in each file, so the subset is one list;
# tests/test_install.py fails when an entry no longer names a test. Keep it under ~3 minutes.
SMOKE = (
    # the installed package: every module imports, console script, metadata, source within 3.10
    "test_install.py::test_every_module_imports",
    "test_install.py::test_console_script_help_and_version",
    "test_install.py::test_every_command_has_help",
    "test_install.py::test_supported_versions_agree_in_metadata_makefile_and_ci",
    "test_install.py::test_toml_reader_is_the_standard_library_or_its_backport",
    "test_keras_env.py::test_tf_keras_is_selected",
    "test_keras_env.py::test_keras3_import_first_raises_a_clear_error",
    "test_keras_env.py::test_seeded_initializers_draw_integral_seeds_on_every_python",
    # data: embedded digits, real MNIST files, CIFAR python batches; specs and presets (TOML)
    "test_data.py::test_digits_sizes_fixed_test_split_and_determinism",
    "test_data.py::test_mnist_arrays_sizes_dtypes_and_test_class_counts",
    "test_data_formats.py::test_cifar10_batches_and_tarball",
    "test_spec.py::test_toml_round_trip_keeps_every_field",
    "test_presets.py::test_every_preset_validates",
    # one training step of every algorithm against numpy (dense network)
    "test_algorithms.py::test_bp_update_is_plain_gradient",
    "test_algorithms.py::test_dfa_update_matches_numpy[dense]",
    "test_algorithms.py::test_drtp_update_matches_numpy[centred-dense]",
    "test_algorithms.py::test_hsic_loss_and_update_match_numpy[dense]",
    "test_algorithms.py::test_sigprop_update_matches_authors_code[dense]",
    # every sign estimator; every binarizing optimizer and method
    "test_estimators.py::test_forward_is_larq_sign_and_backward_matches_formula",
    "test_estimators.py::test_quantizers_serialise_by_string_and_with_saved_models",
    "test_optimizers.py::test_bop_flips_exactly_where_w_m_exceeds_threshold",
    "test_optimizers.py::test_bop2_flips_exactly_where_normalised_momentum_exceeds_threshold[False]",
    "test_optimizers.py::test_bnew_push_and_clip_matches_numpy",
    "test_optimizers.py::test_proxquant_step_is_adam_then_prox_with_kappa_lr_times_lambda[l1]",
    "test_optimizers.py::test_bmd_forward_is_tanh_beta_w_with_identity_gradient_and_beta_schedule",
    "test_optimizers.py::test_every_method_trains_under_xla",
    "test_recipes.py::test_recipe_ends_binary_and_fine_tuning_keeps_kernels_while_real_params_train",
    "test_recipes.py::test_bmd_and_bop_recipes_end_binary_and_learn",
    "test_continuous.py::test_pcf_forward_and_true_gradients_match_numpy",
    "test_distillation.py::test_distillation_trains_student_towards_teacher_and_leaves_teacher_unchanged",
    # the experiment runner end to end (train, save, reload) for every algorithm and recipe; a report
    "test_experiment.py::test_every_algorithm_trains_saves_and_reloads",
    "test_experiment.py::test_binarizing_optimizers_leave_binary_kernels",
    "test_experiment.py::test_continuous_binarization_recipe_ends_with_binary_activations",
    "test_experiment.py::test_naive_post_training_binarization_trains_float_and_deploys_binary",
    "test_report.py::test_summarise_matches_numpy_mean_and_sample_std",
    # one LCE conversion, verified against Keras, and the convert command
    "test_tflite.py::test_binary_convs_become_lce_ops",
    "test_tflite.py::test_lce_outputs_equal_keras",
    "test_tflite.py::test_convert_command",
)


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: the subset CI runs on every supported Python (tests/conftest.py SMOKE)")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    tests = pathlib.Path(__file__).resolve().parent
    collected = {}  # file::test -> parameter ids
    for item in items:
        try:
            file = item.path.resolve().relative_to(tests).as_posix()
        except ValueError:
            continue
        name = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
        function, _, param = name.partition("[")
        collected.setdefault(f"{file}::{function}", set()).add(f"[{param}" if param else "")
        if f"{file}::{name}" in SMOKE or f"{file}::{function}" in SMOKE:
            item.add_marker(pytest.mark.smoke)
    if "smoke" in (config.option.markexpr or ""):
        # an entry whose test was collected but whose parameter id no longer exists
        stale = [e for e in SMOKE if "[" in e and e.split("[")[0] in collected
                 and "[" + e.split("[", 1)[1] not in collected[e.split("[")[0]]]
        if stale:
            raise pytest.UsageError(f"tests/conftest.py SMOKE names parameters that no longer exist: {stale}")
