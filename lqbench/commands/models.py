"""``lqbench models``: list the zoo, or summarise one model."""
from __future__ import annotations

import json

import lqbench
from lqbench._lazy import lazy_module

models = lazy_module("lqbench.models")
from lqbench.commands._types import positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list zoo models or show one's summary",
        description="Without NAME: the zoo's model names (what --model takes). With NAME: build that model and "
                    "print its Larq summary (layers, binary and float parameters, memory footprint).")
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help="model to summarise (`lqbench models` lists them)")
    parser.add_argument("--input-shape", type=positive_int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"),
                        help="input image shape (default: 32 32 3)")
    parser.add_argument("--classes", type=positive_int, default=10, help="number of classes (default: 10)")
    parser.add_argument("--full-precision", action="store_true", help="build the float twin (no quantizers)")
    parser.add_argument("--no-skip", action="store_true", help="build without skip connections")
    parser.add_argument("--model-args", type=json.loads, default={}, metavar="JSON",
                        help='architecture arguments, e.g. \'{"hidden_units": [512, 512]}\' for binarynet_mlp')
    parser.add_argument("--inputs", choices=("all", "activations"), default="all",
                        help="binary activations at every weight layer's input (all) or in place of activation "
                             "functions (activations, paper 000's code); the summary lists the real inputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    if not args.name:
        for name in models.available():
            print(name)
        return 0
    binarization = (lqbench.Binarization.full_precision() if args.full_precision
                    else lqbench.Binarization(inputs=args.inputs))
    model = models.build(args.name, tuple(args.input_shape), args.classes, binarization=binarization,
                         skip_connections=not args.no_skip, **args.model_args)
    models.summary(model)
    return 0
