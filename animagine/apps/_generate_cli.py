"""The ``animagine generate`` command: arguments (light) and runner (imports the Generator)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from animagine.apps.batch import add_model_arguments, model_loader
from animagine.generation._generator import png_names, refuse_existing

__all__ = ["generate_arguments", "run_generate"]


def generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``generate`` command's arguments (imports nothing heavy)."""
    parser.add_argument("prompt", nargs="+", help="the prompt (words are joined with spaces)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True,
        help="a .png file (with -n N: FILE-1.png ... FILE-N.png) or a folder; never overwritten",
    )  # fmt: skip
    add_model_arguments(parser)
    options = parser.add_argument_group("generation options (default: the model card's)")
    options.add_argument("--negative-prompt", help="default: the version's")
    options.add_argument("--width", type=int)
    options.add_argument("--height", type=int)
    options.add_argument("--aspect", help="portrait, landscape, square, 2:3, 16:9, 1344x768...")
    options.add_argument("--steps", type=int)
    options.add_argument("--cfg", "--guidance-scale", dest="guidance_scale", type=float)
    options.add_argument("--sampler", help="A1111 name: 'Euler a', 'DPM++ 2M Karras'...")
    options.add_argument("--seed", type=int, help="default: random, recorded in the image")
    options.add_argument("-n", "--num-images", type=int, default=1)
    options.add_argument("--clip-skip", type=int)
    options.add_argument("--hires", type=float, metavar="SCALE", help="hires fix upscale factor")
    options.add_argument(
        "--no-quality-tags", dest="add_quality_tags", action="store_false",
        help="do not add the version's recommended quality tags",
    )  # fmt: skip
    options.add_argument("--no-progress", dest="progress", action="store_false")


def run_generate(args: argparse.Namespace) -> int:
    """Load the model, generate, save; print the written paths."""
    _check_output(args.output, args.num_images)
    import torch

    cuda = torch.cuda.is_available()
    if args.dtype is None and cuda and args.device in (None, "cuda"):
        args.dtype = "float16"  # what every Animagine XL card runs on a GPU
    device = torch.device("cuda" if cuda else "cpu")
    generator = model_loader(args)(device)
    result = generator(
        " ".join(args.prompt),
        negative_prompt=args.negative_prompt,
        width=args.width,
        height=args.height,
        aspect=args.aspect,
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        sampler=args.sampler,
        seed=args.seed,
        num_images=args.num_images,
        add_quality_tags=args.add_quality_tags,
        clip_skip=args.clip_skip,
        hires=args.hires,
        progress=args.progress,
    )
    for path in result.save(args.output):
        print(path)
    print(f"seed: {', '.join(map(str, result.seeds))}", file=sys.stderr)
    return 0


def _check_output(output: Path, count: int) -> None:
    """Refuse an output file that exists before spending minutes loading a model."""
    if output.suffix.lower() == ".png":  # a folder: GenerationResult.save picks free names there
        refuse_existing(png_names(output, count))
