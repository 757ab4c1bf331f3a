"""``tinyspeech train``: train a zoo model or a spec, convert to int8, evaluate in TFLM."""

from __future__ import annotations

import argparse
import dataclasses

from tinyspeech_tf.apps.common import add_recipe_arguments, parse_model_args, recipe_fields
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.train import TrainConfig, check_config, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--model", default=None,
                        help=f"zoo model name (default {defaults.model}; with --spec: the run's "
                             "name in reports, default the spec's name)")
    parser.add_argument("--spec", default=None, metavar="SPEC.json",
                        help="train the architecture in this spec file (e.g. one written by "
                             "`tinyspeech explore`) instead of a zoo model")
    parser.add_argument("--data", default=defaults.data,
                        help="'synthetic' (offline default), 'tfds', or a dataset folder")
    parser.add_argument("--out", default=None, help="run directory (default runs/MODEL)")
    add_recipe_arguments(parser)
    parser.add_argument("--extra-train", action="append", default=[], metavar="SRC",
                        help="another source whose train split joins --data's (repeatable), "
                             "e.g. synthetic")
    parser.add_argument("--prune", type=float, default=defaults.prune, metavar="SPARSITY",
                        help="magnitude-prune convs and dense layers to this fraction of zero "
                             "weights during float training (tensorflow-model-optimization), "
                             "masks kept through QAT; e.g. 0.5 (default 0: off)")
    parser.add_argument("--cluster-bits", type=int, default=defaults.cluster_bits,
                        metavar="BITS",
                        help="during QAT, hold the filters that TFLM LUT compression would "
                             "shrink on 2**BITS learned values, so `tinyspeech compress --bits "
                             "BITS` loses nothing (default 0: off)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a builder argument of the zoo model, e.g. f_mode=residual "
                             "(VALUE read as JSON when it parses, else as text; repeatable)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--words", default=None, metavar="W1,W2,...",
                        help="your own keywords (folders of a Speech Commands archive, e.g. "
                             "marvin,sheila,bed): labels _silence_,_unknown_ and these, every "
                             "other word is unknown (default: the ten protocol words)")
    parser.add_argument("--init-from", default=None, metavar="pretrained|RUN",
                        help="start from trained weights: 'pretrained' (the shipped model, see "
                             "`tinyspeech pretrained`) or a run directory of the same model; "
                             "the classifier starts fresh when the labels differ (fine-tuning "
                             "for small custom --words sets)")
    parser.add_argument("--strategy", default=defaults.strategy,
                        choices=("default", "mirrored", "multiworker"),
                        help="tf.distribute: one device (default), every local GPU "
                             "(mirrored) or the machines of TF_CONFIG (multiworker); "
                             "--batch-size is the global batch, split across replicas")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last completed epoch")



def run(args: argparse.Namespace) -> int:
    spec = None
    if args.spec is not None:
        from tinyspeech_tf import zoo

        if args.model_arg:
            raise UserError("--model-arg and --spec do not mix: put builder arguments in the "
                            f"spec's kwargs ({args.spec})")
        # Build once now so a bad spec fails here, naming its file, before any data loads.
        zoo.from_spec(args.spec)
        spec = zoo.load_spec(args.spec)[0]
    model = args.model or (spec["name"] if spec else TrainConfig.model)
    config = TrainConfig(model=model, data=args.data, spec=spec,
                         out=args.out or f"runs/{model}", seed=args.seed,
                         extra_train=list(args.extra_train),
                         model_kwargs=parse_model_args(args.model_arg), prune=args.prune,
                         cluster_bits=args.cluster_bits,
                         max_steps_per_epoch=args.max_steps_per_epoch,
                         words=[w.strip() for w in args.words.split(",") if w.strip()]
                         if args.words else None, init_from=args.init_from,
                         strategy=args.strategy, **recipe_fields(args))
    if args.resume and "epochs" not in recipe_fields(args):
        # Without --epochs a resumed run keeps its own length, not the default's.
        from tinyspeech_tf.runs import training_config

        saved = training_config(config.out) or {}
        if isinstance(saved.get("epochs"), int):
            config = dataclasses.replace(config, epochs=saved["epochs"])
    check_config(config)
    metrics = train(config, resume=args.resume)
    print(f"{config.out}: float {metrics['float']['accuracy']:.2%}, int8 (TFLM) "
          f"{metrics['int8_tflm']['accuracy']:.2%} on {metrics['val_examples']} validation "
          f"examples; {metrics['tflite_bytes']} bytes, arena {metrics['arena_bytes']} bytes")
    return 0
