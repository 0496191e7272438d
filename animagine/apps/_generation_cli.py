"""Command-line flags of ``generate`` and ``batch``, derived from :class:`GenerationOptions`.

Both commands take the same model flags and the same generation flags, made here from the
fields of :class:`animagine.GenerationOptions` (one flag per field, its help and text form from
the field's :class:`~animagine.generation.OptionSpec`). The one difference of meaning is
``--seed``: ``generate`` starts its images there, ``batch`` derives the seed of each line that
sets none from it.

Everything the flags say is checked here before any model is loaded: the options, the prompt's
syntax and the version's buckets, the output path, the model reference, the device and dtype.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from animagine.core import ModelVersion, get_version
from animagine.errors import AnimagineError, ModelLoadError
from animagine.generation import (
    DEFAULT_MODEL,
    OPTION_NAMES,
    PICKLE_SUFFIXES,
    GenerationOptions,
    check_folder,
    check_model_reference,
    check_output,
    option_spec,
    plan_generation,
)

if TYPE_CHECKING:
    import torch

    from animagine.generation import Generator

__all__ = [
    "add_generation_arguments",
    "add_model_arguments",
    "check_model_arguments",
    "cli_options",
    "generate_arguments",
    "model_loader",
    "run_generate",
]

_DTYPES: Final = ("float16", "fp16", "half", "bfloat16", "bf16", "float32", "fp32", "float")


class CliError(AnimagineError, ValueError):
    """A flag combination that cannot work, found before any model work (one line on stderr)."""


def _text_type(name: str) -> Callable[[str], object]:
    parse = option_spec(name).parse

    def convert(text: str) -> object:
        try:
            return parse(text)
        except AnimagineError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def add_generation_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """One flag per :class:`GenerationOptions` field (but the prompt), under ``title``.

    Also ``--list-presets [VERSION]``, which prints the presets ``--style`` and ``--quality``
    name and exits.
    """
    from animagine.apps._expand_cli import ListPresetsAction  # noqa: PLC0415

    parser.add_argument(
        "--list-presets",
        action=ListPresetsAction,
        help="print the style and quality presets (of VERSION, default: every version) and exit",
    )
    group = parser.add_argument_group(title)
    for name in OPTION_NAMES:
        spec = option_spec(name)
        if not spec.cli:
            continue
        flags = [*spec.aliases, spec.flag(name)] if spec.aliases else [spec.flag(name)]
        flags.sort(key=lambda flag: (flag.startswith("--"), flag))  # short flags first
        if spec.negatable:
            group.add_argument(
                *flags,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=spec.help,
            )
        else:
            group.add_argument(
                *flags,
                dest=name,
                type=_text_type(name),
                default=None,
                metavar=spec.metavar or name.upper(),
                help=spec.help,
            )


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    default: str | None = DEFAULT_MODEL,
    model_help: str = "hub id, diffusers folder or .safetensors file (default: %(default)s)",
) -> None:
    """The model flags of ``generate``, ``batch`` and ``serve`` (read by :func:`model_loader`)."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=default, help=model_help)
    model.add_argument(
        "--version",
        dest="model_version",
        metavar="VERSION",
        help="v3, v3.1 or v4 (default: from the model name)",
    )
    model.add_argument(
        "--config", help="diffusers folder with the SDXL configs, for a .safetensors --model"
    )
    model.add_argument("--dtype", help="float16, bfloat16 or float32 (default: float16 on CUDA)")
    model.add_argument("--device", help="torch device: cpu, cuda, cuda:1... (default: the best)")
    model.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle weights (.ckpt, .bin): they can run code when loaded",
    )
    model.add_argument(
        "--memory",
        default="device",
        metavar="MODE",
        help="where the weights live: device (default), model-offload or sequential-offload"
        " (need a GPU), optionally joined with vae-tiling and vae-slicing by '+'"
        " (model-offload+vae-tiling)",
    )
    model.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        metavar="MODE",
        help="speed mode: fused attention projections, channels_last and torch.compile of the"
        " UNet and VAE decode; MODE is a torch.compile mode (default:"
        " max-autotune-no-cudagraphs). The first image of each size compiles (minutes)",
    )


def cli_options(args: argparse.Namespace) -> dict[str, object]:
    """The generation options the flags set (unset flags are left out)."""
    return {
        name: getattr(args, name)
        for name in OPTION_NAMES
        if option_spec(name).cli and getattr(args, name, None) is not None
    }


def model_version(args: argparse.Namespace) -> ModelVersion:
    """The version the flags name, or the one the model's name tells (before loading)."""
    if args.model_version is not None:
        return get_version(args.model_version)
    try:
        return get_version(str(args.model))
    except AnimagineError:
        raise CliError(
            f"cannot tell the Animagine XL version from --model {args.model!r}; pass --version"
            " (v3, v3.1 or v4)"
        ) from None


def check_model_arguments(args: argparse.Namespace) -> None:
    """Check the model flags before loading: the file or id, pickles, device and dtype.

    Raises:
        CliError: a pickle file without ``--allow-pickle``, ``--config`` for a folder or hub id,
            an unknown dtype, a CUDA device without CUDA.
        ModelLoadError: a model that is neither a local path nor a hub id that can be fetched.
    """
    from animagine.extras import require  # noqa: PLC0415

    for module in ("torch", "diffusers", "transformers"):
        require(module, what=f"animagine {getattr(args, 'command', 'generate')}")
    model = str(args.model)
    path = Path(model).expanduser()
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not args.allow_pickle:
        raise CliError(
            f"{model!r} is a pickle checkpoint, which can run any code when loaded; convert it to"
            " .safetensors, or pass --allow-pickle if you trust where it came from"
        )
    single_file = suffix == ".safetensors" or suffix in PICKLE_SUFFIXES
    if args.config is not None and not single_file:
        raise CliError("--config is for a single-file --model (.safetensors) only")
    if args.dtype is not None and args.dtype.strip().lower().removeprefix("torch.") not in _DTYPES:
        raise CliError(f"--dtype must be float16, bfloat16 or float32, got {args.dtype!r}")
    if not single_file or not path.is_file():
        check_model_reference(model, single_file=single_file)
    if path.is_dir():
        try:
            check_folder(path, allow_pickle=args.allow_pickle)
        except ModelLoadError as error:
            raise _pickle_advice(error) from None
    if args.device is not None:
        _check_device(args.device)
    _check_modes(args)


def _check_modes(args: argparse.Namespace) -> None:
    """``--memory`` and ``--compile``: known names, a combination that works, a GPU for offload."""
    from animagine.generation import Generator  # noqa: PLC0415

    memory = getattr(args, "memory", "device")
    speed = getattr(args, "compile", False)
    device = None if args.device is None else str(args.device)
    try:
        Generator.check_modes(memory=memory, compile=speed, device=device)
    except AnimagineError as error:
        text = str(error).replace("memory=", "--memory ").replace("compile=", "--compile ")
        text = text.replace("device=", "--device ")
        raise CliError(text) from None


def _check_device(device: str) -> None:
    from animagine.extras import require  # noqa: PLC0415

    torch = require("torch", what="animagine generate")
    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise CliError(
            f"--device {device!r} is not a torch device (cpu, cuda, cuda:1, mps...)"
        ) from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(f"--device {device}: CUDA is not available on this machine")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise CliError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif target.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"--device {device}: MPS is not available on this machine")


def _pickle_advice(error: ModelLoadError) -> ModelLoadError:
    """The library's loading errors speak Python (``allow_pickle=True``); say the flag instead."""
    text = str(error).replace("pass allow_pickle=True", "pass --allow-pickle")
    text = text.replace("allow_pickle=True", "--allow-pickle")
    return ModelLoadError(text)


def model_loader(args: argparse.Namespace) -> Callable[[torch.device], Generator]:
    """A function loading the model the flags name, on a given device."""

    def load(device: torch.device) -> Generator:
        from animagine.generation import Generator  # noqa: PLC0415

        target = args.device if args.device is not None else device
        progress = getattr(args, "progress", True)
        modes: dict[str, Any] = {
            "memory": getattr(args, "memory", "device"),
            "compile": getattr(args, "compile", False),
        }
        try:
            if Path(str(args.model)).suffix.lower() in {".safetensors", *PICKLE_SUFFIXES}:
                return Generator.from_single_file(
                    args.model,
                    version=args.model_version,
                    config=args.config,
                    dtype=args.dtype,
                    device=target,
                    progress=progress,
                    allow_pickle=args.allow_pickle,
                    **modes,
                )
            return Generator.from_pretrained(
                args.model,
                version=args.model_version,
                dtype=args.dtype,
                device=target,
                progress=progress,
                allow_pickle=args.allow_pickle,
                **modes,
            )
        except ModelLoadError as error:
            raise _pickle_advice(error) from error

    return load


# --- generate -----------------------------------------------------------------------------------


def generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``generate`` command's arguments (imports nothing heavy)."""
    parser.add_argument("prompt", nargs="+", help="the prompt (words are joined with spaces)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="a .png file (with -n N: FILE-1.png ... FILE-N.png) or a folder; never overwritten",
    )
    add_model_arguments(parser)
    add_generation_arguments(parser, "generation options (default: the model card's)")
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars (loading included)",
    )


def check_generate(args: argparse.Namespace) -> GenerationOptions:
    """Every check of ``generate`` that needs no model: options, prompt, output, model flags."""
    options = GenerationOptions.from_mapping({"prompt": " ".join(args.prompt), **cli_options(args)})
    check_model_arguments(args)
    plan_generation(options, model_version(args))
    check_output(args.output, options.num_images)
    return options


def run_generate(args: argparse.Namespace) -> int:
    """Check everything, load the model, generate, save; print the written paths."""
    options = check_generate(args)
    generator = load_model(args)
    result = generator(options, progress=args.progress)
    for path in result.save(args.output):
        print(path)
    print(f"seed: {', '.join(map(str, result.seeds))}", file=sys.stderr)
    return 0


def load_model(args: argparse.Namespace) -> Generator:
    """Load the model the flags name on the best device (float16 on CUDA unless told)."""
    from animagine.extras import require  # noqa: PLC0415

    torch = require("torch", what=f"animagine {getattr(args, 'command', 'generate')}")
    cuda = torch.cuda.is_available()
    if args.dtype is None and cuda and args.device in (None, "cuda"):
        args.dtype = "float16"  # what every Animagine XL card runs on a GPU
    device = torch.device("cuda" if cuda else "cpu")
    return model_loader(args)(device)


def batch_defaults(args: argparse.Namespace) -> Mapping[str, object]:
    """The generation flags of ``batch``: defaults for lines that do not set them (no seed)."""
    return {name: value for name, value in cli_options(args).items() if name != "seed"}
