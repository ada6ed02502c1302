"""``lqbench models``: list the zoo, or summarise one model."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list zoo models or show one's summary")
    parser.add_argument("name", nargs="?", help="model to summarise")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(32, 32, 3), metavar=("H", "W", "C"))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--full-precision", action="store_true")
    parser.add_argument("--no-skip", action="store_true", help="build without skip connections")
    parser.add_argument("--model-args", type=json.loads, default={}, metavar="JSON")
    parser.add_argument("--inputs", choices=("all", "activations"), default="all",
                        help="binary activations at every weight layer's input (all) or in place of activation "
                             "functions (activations, paper 000's code); the summary lists the real inputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    import lqbench
    import lqbench.models as models

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
