"""``lqbench convert``: turn a saved Keras model into an LCE ``.tflite`` file and report on it."""
from __future__ import annotations

import json
import pathlib
import sys
import warnings

from lqbench._lazy import lazy_module
from lqbench.commands._types import add_fallback_flags
from lqbench.errors import UsageError

tfl = lazy_module("lqbench.tflite")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a saved model to an LCE .tflite file",
        description=(
            "Convert a saved Keras model (.keras, .h5 or SavedModel folder) with Larq Compute Engine. "
            "Reports the op counts, which binary layers became LceBconv2d, float fallbacks and why, "
            "the size next to the float twin and the largest LCE-vs-Keras output difference."
        ),
    )
    parser.add_argument("model", metavar="MODEL_PATH", help="saved Keras model")
    parser.add_argument("--output", "-o", help="output .tflite path (default: MODEL_PATH with .tflite)")
    parser.add_argument("--target", choices=("arm", "xcore"), default="arm",
                        help="LCE converter target: arm (Android, Raspberry Pi; also runs on x86 hosts) or xcore "
                             "(default: arm)")
    add_fallback_flags(parser)
    parser.add_argument("--float-output", metavar="PATH", help="also write the float twin's .tflite")
    parser.add_argument("--no-verify", action="store_true", help="skip the LCE-vs-Keras output check")
    parser.add_argument("--no-rewrite", action="store_true",
                        help="convert the model as written (no binary-dense-as-conv, BN-before-pool or sign-at-zero rewrite)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def default_output(model_path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(model_path)
    return path.with_suffix(".tflite") if path.is_file() else path.parent / f"{path.name}.tflite"


def run(args) -> int:
    model = tfl.load_model(args.model)
    output = pathlib.Path(args.output) if args.output else default_output(args.model)
    if output.suffix != ".tflite":
        raise UsageError(f"--output {output}: expected a .tflite path")
    with warnings.catch_warnings():
        # the report lists every fallback; keep the terminal to one copy of each
        warnings.simplefilter("ignore", tfl.ConversionWarning)
        try:
            report = tfl.convert(
                model, output, target=args.target, fallback=args.fallback,
                float_path=args.float_output, verify=not args.no_verify, rewrite=not args.no_rewrite,
            )
        except tfl.ConversionError as error:
            if error.report is not None:
                print(json.dumps({**error.report.to_dict(), "error": str(error)}, indent=2)
                      if args.json else error.report)
            print(f"lqbench convert: error: {error} (no file written)", file=sys.stderr)
            return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0
