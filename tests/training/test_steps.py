"""Each step's Config is the one source of its defaults: the command line maps onto it, and steps derive from it."""

import argparse
import importlib
from dataclasses import fields

import pytest

from training.__main__ import COMMANDS, build_parser
from training.robustness import train_adversarial
from training.steps import Common, derive, from_args


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_command_lines_defaults_are_the_configs(command: str) -> None:
    module = importlib.import_module(COMMANDS[command][0])
    args = build_parser().parse_args([command])
    config = from_args(module.Config, args)
    parsed = {f.name: getattr(args, f.name) for f in fields(module.Config) if hasattr(args, f.name)}
    defaults = {f.name: getattr(module.Config, f.name) for f in fields(module.Config)}
    # lists on the command line, tuples in the frozen config
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in parsed.items()} == \
        {k: v for k, v in defaults.items() if k in parsed}
    assert isinstance(config, Common) and config.dataset == "mnist"


def test_from_args_takes_what_was_given_and_derive_shares_the_common_options() -> None:
    args = argparse.Namespace(dataset="fashion-mnist", epochs=7, inputs="pgd", unrelated=1)
    config = from_args(train_adversarial.Config, args)
    assert (config.dataset, config.epochs, config.inputs, config.lr) == ("fashion-mnist", 7, "pgd", 2e-3)
    assert config.train_eps == 0.1
    derived = derive(train_adversarial.Config, config, out="x.ckpt")
    assert (derived.dataset, derived.resume, derived.out, derived.epochs) == ("fashion-mnist", True, "x.ckpt", 3)
    with pytest.raises(AttributeError):
        config.epochs = 1  # frozen
