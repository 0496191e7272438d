"""The one record of generation options, and the checked plan of a call.

:class:`GenerationOptions` is the single list of what a generation call can be asked for. Each
field carries its check and, in its ``metadata``, an :class:`OptionSpec`: the help text, how it
is read from text (command line, CSV) and its command-line flag. Everything else is derived from
it: the keyword arguments of :meth:`animagine.Generator.__call__`, the keys of a batch input
line, the ``generate`` and ``batch`` command-line flags, and reproduction from image metadata
(:meth:`GenerationOptions.from_parameters`). Adding an option is adding a field here (and
recording it in :class:`animagine.GenerationParameters`).

A :class:`GenerationOptions` holds what was asked; ``None`` means "the version's default".
:func:`plan_generation` applies a version's defaults and the checks that need the version (the
aspect's bucket, the hires size) and returns a :class:`GenerationPlan`, before any model work.
"""

from __future__ import annotations

import difflib
import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from animagine.core import MAX_PROMPT_CHARS, ModelVersion, Prompt, Tag, parse_tags
from animagine.errors import GenerationArgumentError, GenerationTypeError
from animagine.generation._checks import (
    bool_argument,
    guidance_argument,
    int_argument,
    size_argument,
)
from animagine.generation._hires import check_hires, to_hires
from animagine.generation._samplers import resolve_sampler
from animagine.generation._sizes import aspect_size
from animagine.limits import MAX_IMAGES, MAX_SEED, MAX_STEPS
from animagine.metadata import GenerationParameters, HiresParameters

__all__ = [
    "OPTION_NAMES",
    "GenerationOptions",
    "GenerationPlan",
    "OptionSpec",
    "check_names",
    "option_spec",
    "plan_generation",
    "set_values",
]


@attrs.frozen
class OptionSpec:
    """How one option appears outside Python: help text, text form and command-line flag.

    Attributes:
        help: One line for ``--help`` and the docs.
        parse: Reads the option from text (a command-line value, a CSV cell).
        metavar: The value's name in ``--help``.
        aliases: Other command-line flags for it (``--cfg``, ``-n``).
        negatable: A switch: ``--flag`` / ``--no-flag``.
        cli: Whether it is a command-line flag (the prompt is the command's own argument).
        primary: The command-line flag, when it is not the option's name (``--quality-tags``).
    """

    help: str
    parse: Callable[[str], object]
    metavar: str | None = None
    aliases: tuple[str, ...] = ()
    negatable: bool = False
    cli: bool = True
    primary: str | None = None

    def flag(self, name: str) -> str:
        """The option's command-line flag: ``--guidance-scale`` for ``guidance_scale``."""
        return self.primary or "--" + name.replace("_", "-")


_SPEC: Final = "animagine"


# --- text forms -----------------------------------------------------------------------------


def _text_int(name: str) -> Callable[[str], object]:
    def parse(text: str) -> object:
        try:
            return int(text.strip())
        except ValueError:
            raise GenerationArgumentError(f"{name} must be an integer, got {text!r}") from None

    return parse


def _text_number(name: str) -> Callable[[str], object]:
    def parse(text: str) -> object:
        try:
            number = float(text.strip())
        except ValueError:
            raise GenerationArgumentError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(number):
            raise GenerationArgumentError(f"{name} must be a finite number, got {text!r}")
        return number

    return parse


_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})


def _text_bool(name: str) -> Callable[[str], object]:
    def parse(text: str) -> object:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise GenerationArgumentError(f"{name} must be true or false, got {text!r}")

    return parse


def _text(text: str) -> object:
    return text


# --- field checks (attrs converters: they check and normalise) --------------------------------


def _optional(check: Callable[[str, object], object]) -> Any:
    """An attrs converter that leaves None alone and checks anything else."""

    def convert(value: object, field: attrs.Attribute[Any]) -> object:
        return None if value is None else check(field.name, value)

    return attrs.Converter(convert, takes_field=True)


def _required(check: Callable[[str, object], object]) -> Any:
    """An attrs converter that checks every value."""

    def convert(value: object, field: attrs.Attribute[Any]) -> object:
        return check(field.name, value)

    return attrs.Converter(convert, takes_field=True)


def _prompt(name: str, value: object) -> object:
    if not isinstance(value, (str, Prompt)):
        raise GenerationTypeError(
            f"{name} must be a str or animagine.Prompt, got {type(value).__name__}"
        )
    if isinstance(value, str):
        _check_length(name, value)
    return value


def _negative(name: str, value: object) -> object:
    if not isinstance(value, str):
        raise GenerationTypeError(f"{name} must be a str or None, got {type(value).__name__}")
    _check_length(name, value)
    return value


def _check_length(name: str, text: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise GenerationArgumentError(
            f"{name} is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
        )


def _name(name: str, value: object) -> object:
    if not isinstance(value, str):
        raise GenerationTypeError(f"{name} must be a str, got {type(value).__name__}: {value!r}")
    return value


def _steps(name: str, value: object) -> object:
    return int_argument(name, value, 1, MAX_STEPS)


def _seed(name: str, value: object) -> object:
    return int_argument(name, value, 0, MAX_SEED)


def _num_images(name: str, value: object) -> object:
    return int_argument(name, value, 1, MAX_IMAGES)


def _clip_skip(name: str, value: object) -> object:
    # The upper bound depends on the model's text encoders: checked by plan_generation.
    return int_argument(name, value, 0, MAX_STEPS)


def _guidance(name: str, value: object) -> object:
    return guidance_argument(value)


def _sampler(name: str, value: object) -> object:
    return resolve_sampler(value).name


def _bool(name: str, value: object) -> object:
    return bool_argument(name, value)


def _hires(name: str, value: object) -> object:
    return to_hires(value)


def _field(
    check: Callable[[str, object], object],
    spec: OptionSpec,
    *,
    default: object = None,
) -> Any:
    return attrs.field(default=default, converter=_optional(check), metadata={_SPEC: spec})


@attrs.frozen(kw_only=True)
class GenerationOptions:
    """The options of one generation call, each checked when the record is made.

    ``None`` (the default of most fields) means the model version's recommendation. Making a
    record checks
    everything that does not depend on the model: types, ranges, sampler names (and their extra
    dependency), hires settings. :func:`plan_generation` (or :meth:`animagine.Generator.check`)
    checks the rest.

    Attributes:
        prompt: Prompt text (parsed for the generator's version, tags put in its training
            order) or a :class:`animagine.Prompt` of that version.
        negative_prompt: Default: the version's (:attr:`animagine.ModelVersion.negative_prompt`);
            ``""`` for none. A1111 weighting syntax works.
        width: Image width, a multiple of 8 from 64 to 4096 (default 832).
        height: Image height, likewise (default 1216).
        aspect: A trained bucket instead of ``width``/``height``: ``"portrait"``
            (832x1216), ``"landscape"`` (1216x832), ``"square"`` (1024x1024), a bucket size
            (``"1344x768"``), its exact ratio (``"13:19"``, ``"7:4"``) or a conventional label
            (``"2:3"``, ``"3:2"``, ``"4:3"``, ``"3:4"``, ``"16:9"``, ``"9:16"``, ``"21:9"``,
            ``"9:21"``, ``"1:1"``). An error when ``width``/``height`` say otherwise.
        steps: Sampling steps, 1 to 200 (default 28).
        guidance_scale: CFG, above 0 and at most 30 (default: 5 for 4.0, 7 for 3.x).
        sampler: An A1111 sampler name (:data:`animagine.generation.SAMPLERS`), any case
            (default ``"Euler a"``).
        seed: 0 to 2**64 - 1; image ``i`` uses ``seed + i``. Default: a random 32-bit seed,
            recorded in the result.
        num_images: 1 to 64.
        add_quality_tags: Add the version's recommended quality tags that the prompt lacks,
            where the version puts them.
        clip_skip: Text encoder layers to skip (diffusers' convention; 0 is None).
        hires: A second, img2img pass at a larger size, as the official demo does it: the
            first pass's latents are upscaled and denoised again at ``strength``, with the
            same prompt embeddings, guidance, sampler and seeds. A number is the upscale
            factor with the demo's other settings (``hires=1.5`` is
            ``HiresParameters(scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)")``);
            a mapping gives some of those fields (``{"scale": 1.5}``) and the demo's settings
            for the rest.
            A :class:`animagine.HiresParameters` gives ``scale`` (1 to 4), ``strength``
            (above 0, at most 1), ``upscaler`` (:data:`animagine.generation.HIRES_UPSCALERS`,
            latent upscalers only) and ``steps`` (1 to 200; ``None``: the first pass's). As in
            diffusers and A1111, the second pass runs ``int(steps * strength)`` steps, which must
            be at least 1. The images come out at ``round(side * scale)`` down to a multiple of 8;
            :attr:`animagine.GenerationResult.parameters` record the first pass's size and ``hires``
            (A1111's ``Size`` and ``Hires upscale``).

    Raises:
        GenerationTypeError: an option of the wrong type.
        GenerationArgumentError: a value out of range or unknown.
        MissingDependencyError: a sampler whose extra dependency is not installed.
    """

    prompt: str | Prompt = attrs.field(
        converter=_required(_prompt),  # type: ignore[misc]  # mypy's attrs plugin: a call
        metadata={_SPEC: OptionSpec("the prompt", _text, metavar="PROMPT", cli=False)},
    )
    negative_prompt: str | None = _field(
        _negative, OptionSpec("negative prompt (default: the version's; '' for none)", _text)
    )
    width: int | None = _field(
        size_argument, OptionSpec("image width, a multiple of 8", _text_int("width"))
    )
    height: int | None = _field(
        size_argument, OptionSpec("image height, a multiple of 8", _text_int("height"))
    )
    aspect: str | None = _field(
        _name,
        OptionSpec(
            "a trained bucket instead of width/height: portrait, landscape, square, 2:3,"
            " 16:9, 1344x768...",
            _text,
        ),
    )
    steps: int | None = _field(_steps, OptionSpec("sampling steps", _text_int("steps")))
    guidance_scale: float | None = _field(
        _guidance,
        OptionSpec("CFG scale", _text_number("guidance_scale"), metavar="CFG", aliases=("--cfg",)),
    )
    sampler: str | None = _field(
        _sampler, OptionSpec("A1111 sampler name: 'Euler a', 'DPM++ 2M Karras'...", _text)
    )
    seed: int | None = _field(
        _seed,
        OptionSpec(
            "seed of the first image (generate: default random, recorded; batch: the base of"
            " the seeds of lines that set none, default 0)",
            _text_int("seed"),
        ),
    )
    num_images: int = _field(
        _num_images,
        OptionSpec("images per prompt", _text_int("num_images"), metavar="N", aliases=("-n",)),
        default=1,
    )
    add_quality_tags: bool = _field(
        _bool,
        OptionSpec(
            "add the version's recommended quality tags the prompt lacks (default: on)",
            _text_bool("add_quality_tags"),
            negatable=True,
            primary="--quality-tags",
        ),
        default=True,
    )
    clip_skip: int | None = _field(
        _clip_skip, OptionSpec("text encoder layers to skip", _text_int("clip_skip"))
    )
    hires: HiresParameters | None = _field(
        _hires,
        OptionSpec(
            "hires fix with this upscale factor (the official demo's other settings)",
            _text_number("hires"),
            metavar="SCALE",
        ),
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, text: bool = False) -> GenerationOptions:
        """Options from a mapping of option names: a JSON object, a CSV row, parsed flags.

        ``None`` values (and, with ``text``, empty strings) leave the option unset. With
        ``text``, string values are read as the option's text form (``"28"`` for ``steps``).

        Raises:
            GenerationTypeError: an unknown option name (with the nearest known one), or a value
                of the wrong type.
            GenerationArgumentError: a value out of range or unreadable.
        """
        values: dict[str, Any] = set_values(data, text=text)
        if "prompt" not in values:
            raise GenerationArgumentError("no prompt")
        return cls(**values)

    @classmethod
    def from_parameters(cls, parameters: GenerationParameters) -> GenerationOptions:
        """The options that make an image again from its :class:`animagine.GenerationParameters`.

        ``add_quality_tags`` is off: the recorded prompt already holds them.
        """
        if not isinstance(parameters, GenerationParameters):
            raise GenerationTypeError(
                f"parameters must be GenerationParameters, got {type(parameters).__name__}"
            )
        return cls(**parameters.to_call_kwargs())

    def changed(self) -> dict[str, Any]:
        """The options set to something other than their default, as JSON values."""
        defaults = {field.name: field.default for field in attrs.fields(type(self))}
        result: dict[str, Any] = {}
        for name in OPTION_NAMES:
            value = getattr(self, name)
            if name != "prompt" and value == defaults[name]:
                continue
            if isinstance(value, HiresParameters):
                value = value.to_json()
            elif isinstance(value, Prompt):
                value = str(value)
            result[name] = value
        return result


#: The option names, in the record's order.
OPTION_NAMES: Final = tuple(field.name for field in attrs.fields(GenerationOptions))


def option_spec(name: str) -> OptionSpec:
    """The :class:`OptionSpec` of option ``name``."""
    spec: OptionSpec = getattr(attrs.fields(GenerationOptions), name).metadata[_SPEC]
    return spec


def set_values(data: Mapping[str, object], *, text: bool = False) -> dict[str, object]:
    """The options ``data`` sets, by name, as :meth:`GenerationOptions.from_mapping` reads them.

    ``None`` values (and, with ``text``, empty strings) are left out; with ``text``, string
    values are read as the option's text form. Values are not checked beyond that.

    Raises:
        GenerationTypeError: an unknown option name.
        GenerationArgumentError: a text value that does not read.
    """
    check_names(data)
    values: dict[str, object] = {}
    for name, value in data.items():
        if value is None or (text and value == ""):
            continue
        values[name] = option_spec(name).parse(value) if text and isinstance(value, str) else value
    return values


def check_names(names: Mapping[str, object] | tuple[str, ...] | list[str]) -> None:
    """Raise :class:`GenerationTypeError` for the first name that is not an option."""
    for name in names:
        if name not in OPTION_NAMES:
            close = difflib.get_close_matches(str(name), OPTION_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GenerationTypeError(
                f"unknown option {name!r}{hint} (options are: {', '.join(OPTION_NAMES)})"
            )


@attrs.frozen(kw_only=True)
class GenerationPlan:
    """A generation call with every option checked and every default applied: what will run.

    Attributes:
        options: The options as given.
        version: The model version whose defaults were applied.
        prompt: The prompt as it will be encoded (quality tags added if asked).
        negative_prompt: The negative prompt text.
        negative_tags: The negative prompt, parsed.
        width: The first pass's width.
        height: The first pass's height.
        steps: The first pass's steps.
        guidance_scale: The CFG scale.
        sampler: The A1111 sampler name.
        seeds: One seed per image: ``seed, seed + 1, ...``.
        clip_skip: Text encoder layers to skip, or None.
        hires: The hires fix as recorded, or None.
        hires_size: The second pass's ``(width, height)``, or None.
        hires_steps: The second pass's steps, or None.
    """

    options: GenerationOptions
    version: ModelVersion
    prompt: Prompt
    negative_prompt: str
    negative_tags: tuple[Tag, ...]
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: str
    seeds: tuple[int, ...]
    clip_skip: int | None = None
    hires: HiresParameters | None = None
    hires_size: tuple[int, int] | None = None
    hires_steps: int | None = None


def plan_generation(
    options: GenerationOptions, version: ModelVersion, *, clip_skip_layers: int | None = None
) -> GenerationPlan:
    """Apply ``version``'s defaults to ``options`` and check what depends on the version.

    Args:
        options: The checked options.
        version: The model version (its defaults, buckets and vocabulary).
        clip_skip_layers: The model's text encoder depth; ``clip_skip`` must be below it.
            ``None`` when no model is loaded yet (the bound is checked later).

    Raises:
        GenerationArgumentError: an aspect that is not one of the version's buckets or that
            conflicts with width/height, a hires size too large, a seed that runs past
            ``2**64 - 1`` with ``num_images``, a clip_skip too deep, a Prompt of another
            version.
        PromptSyntaxError: prompt or negative prompt text that does not parse.
    """
    if not isinstance(options, GenerationOptions):
        raise GenerationTypeError(
            f"options must be GenerationOptions, got {type(options).__name__}"
        )
    defaults = version.defaults
    width, height = options.width, options.height
    if options.aspect is not None:
        bucket = aspect_size(options.aspect, version)
        if (width is not None and width != bucket[0]) or (
            height is not None and height != bucket[1]
        ):
            raise GenerationArgumentError(
                f"aspect={options.aspect!r} means {bucket[0]}x{bucket[1]}, which conflicts with"
                f" width={width!r}, height={height!r}; pass aspect or width/height"
            )
        width, height = bucket
    width = defaults.width if width is None else width
    height = defaults.height if height is None else height
    steps = defaults.steps if options.steps is None else options.steps
    hires_size = hires_steps = None
    if options.hires is not None:
        hires_width, hires_height, hires_steps = check_hires(options.hires, width, height, steps)
        hires_size = (hires_width, hires_height)
    count = options.num_images
    first = secrets.randbits(32) if options.seed is None else options.seed
    if first + count - 1 > MAX_SEED:
        raise GenerationArgumentError(f"seed={first} with num_images={count} runs past 2**64 - 1")
    clip_skip = options.clip_skip
    if clip_skip is not None and clip_skip_layers is not None and clip_skip >= clip_skip_layers:
        raise GenerationArgumentError(
            f"clip_skip must be between 0 and {clip_skip_layers - 1}, got {clip_skip!r}"
        )
    negative = (
        version.negative_prompt if options.negative_prompt is None else options.negative_prompt
    )
    negative_tags = tuple(item.tag for item in parse_tags(negative))
    prompt = options.prompt
    if isinstance(prompt, Prompt):
        if prompt.version != version:
            raise GenerationArgumentError(
                f"prompt is a {prompt.version.title} Prompt but this generator runs"
                f" {version.title}; convert it first: prompt.convert({version.name!r})"
            )
    else:
        prompt = Prompt.parse(prompt, version=version)
    if options.add_quality_tags:
        prompt = prompt.with_quality_tags()
    return GenerationPlan(
        options=options,
        version=version,
        prompt=prompt,
        negative_prompt=negative,
        negative_tags=negative_tags,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=(
            defaults.guidance_scale if options.guidance_scale is None else options.guidance_scale
        ),
        sampler=resolve_sampler(
            defaults.sampler if options.sampler is None else options.sampler
        ).name,
        seeds=tuple(range(first, first + count)),
        clip_skip=clip_skip or None,
        hires=options.hires,
        hires_size=hires_size,
        hires_steps=hires_steps,
    )
