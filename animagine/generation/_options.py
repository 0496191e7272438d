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
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from animagine.core import (
    MAX_PROMPT_CHARS,
    WILDCARD_MODES,
    ModelVersion,
    PresetTable,
    Prompt,
    Tag,
    Template,
    WildcardFolder,
    parse_tags,
    presets_for,
)
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
    "preset_table",
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


def _preset_name(name: str, value: object) -> object:
    _name(name, value)
    assert isinstance(value, str)
    if not value.strip():
        raise GenerationArgumentError(f"{name} must name a preset, got {value!r}")
    return value


def _path(name: str, value: object) -> object:
    if not isinstance(value, (str, os.PathLike)):
        raise GenerationTypeError(f"{name} must be a path, got {type(value).__name__}: {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise GenerationArgumentError(f"{name} must be a path, got {value!r}")
    return text


def _variants(name: str, value: object) -> object:
    if value not in WILDCARD_MODES:
        raise GenerationArgumentError(
            f"{name} must be one of {', '.join(map(repr, WILDCARD_MODES))}, got {value!r}"
        )
    return value


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
        style: A style preset of the version's official demo (:func:`animagine.core.presets_for`
            lists them: ``"Anime"`` for 3.x, ``"Anim4gine"`` for 4.0...) or of ``presets``.
        quality: A quality preset likewise (``"Standard v3.1"``, ``"Standard v4.0"``...). It
            takes the place of the library's quality tags: with it, ``add_quality_tags`` is the
            demos' switch of the same name (off: the preset's positive text is left out, its
            negative still applies). Presets are applied as the demo does it, before the prompt
            is parsed; the names and the final texts are recorded. With a preset, an unset
            ``negative_prompt`` is the version's unless the quality preset has a negative.
        presets: A file of more presets: JSON or TOML of the demo's shape, or A1111's
            ``styles.csv``; its presets add to (or replace) the version's.
        variants: Read the prompt as a dynamic-prompts template (``{a|b}``, ``{2$$a|b|c}``,
            ``__name__``...) and draw it from each image's seed: ``"random"`` (each wildcard
            occurrence draws a line) or ``"demo"`` (one line per wildcard name, as the official
            3.x demos do). Default: ``"random"`` when ``wildcards`` is given, else off. The
            template is recorded next to the drawn prompt.
        wildcards: The folder of wildcard files (``NAME.txt``: ``__NAME__``); turns
            ``variants`` on.

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
    style: str | None = _field(
        _preset_name,
        OptionSpec("style preset of the official demo (see --list-presets)", _text, metavar="NAME"),
    )
    quality: str | None = _field(
        _preset_name,
        OptionSpec(
            "quality preset of the official demo, in place of the quality tags (see"
            " --list-presets)",
            _text,
            metavar="NAME",
        ),
    )
    presets: str | None = _field(
        _path,
        OptionSpec(
            "a file of more presets: JSON or TOML as the demo's, or A1111's styles.csv",
            _text,
            metavar="FILE",
        ),
    )
    variants: str | None = _field(
        _variants,
        OptionSpec(
            "read the prompt as a template: {a|b}, {2$$a|b|c}, __name__; 'random' or 'demo'"
            " (one line per wildcard, as the 3.x demos)",
            _text,
            metavar="MODE",
        ),
    )
    wildcards: str | None = _field(
        _path,
        OptionSpec(
            "folder of wildcard files (NAME.txt for __NAME__); the prompt is a template",
            _text,
            metavar="DIR",
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
        prompts: The prompt of each image, in seed order: :attr:`prompt` for every image unless
            the prompt is a template, drawn again from each image's seed.
        template: The template the prompts were drawn from, when it has variants or wildcards.
        style: The style preset applied, or None.
        quality: The quality preset applied, or None.
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
    prompts: tuple[Prompt, ...] = attrs.field(
        default=attrs.Factory(lambda self: (self.prompt,) * len(self.seeds), takes_self=True)
    )
    template: str | None = None
    style: str | None = None
    quality: str | None = None

    def by_prompt(self) -> tuple[GenerationPlan, ...]:
        """One plan per distinct prompt, with the seeds of the images that have it, in order.

        A plan whose images share one prompt is its own only part.
        """
        if len(set(self.prompts)) <= 1:
            return (self,)
        groups: dict[Prompt, list[int]] = {}
        for prompt, seed in zip(self.prompts, self.seeds, strict=True):
            groups.setdefault(prompt, []).append(seed)
        return tuple(
            attrs.evolve(self, prompt=prompt, seeds=tuple(seeds), prompts=(prompt,) * len(seeds))
            for prompt, seeds in groups.items()
        )


def preset_table(options: GenerationOptions, version: ModelVersion) -> PresetTable | None:
    """The presets ``options`` use for ``version`` (its ``presets`` file included), checked.

    None when ``options`` name no preset.

    Raises:
        GenerationArgumentError: an unknown preset name (the message lists the version's), or
            a presets file that does not read.
        MissingFileError: no such presets file.
    """
    if options.style is None and options.quality is None:
        if options.presets is not None:
            presets_for(version, file=options.presets)  # a bad file is an error all the same
        return None
    table = presets_for(version, file=options.presets)
    if options.style is not None:
        table.style_preset(options.style)
    if options.quality is not None:
        table.quality_preset(options.quality)
    return table


def _draw_texts(
    options: GenerationOptions, text: str, seeds: tuple[int, ...]
) -> tuple[tuple[str, ...], str | None]:
    """The prompt text of each image, and the template when the prompt is one."""
    mode = options.variants
    if mode is None and options.wildcards is not None:
        mode = "random"
    if mode is None:
        return (text,) * len(seeds), None
    folder = None if options.wildcards is None else WildcardFolder(options.wildcards)
    template = Template.parse(text)
    template.check(folder)
    if not template.is_dynamic:
        return (template.expand(0),) * len(seeds), None
    return tuple(template.expand(seed, wildcards=folder, mode=mode) for seed in seeds), text


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
            version, an unknown preset, a presets file or wildcard file that does not read.
        PromptSyntaxError: prompt or negative prompt text that does not parse, a template
            that does not read or names a wildcard the folder lacks (with its position).
        MissingFileError: no such presets file or wildcard folder.
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
    seeds = tuple(range(first, first + count))
    table = preset_table(options, version)
    given = options.prompt
    if isinstance(given, Prompt):
        if given.version != version:
            raise GenerationArgumentError(
                f"prompt is a {given.version.title} Prompt but this generator runs"
                f" {version.title}; convert it first: prompt.convert({version.name!r})"
            )
        if options.variants is not None or options.wildcards is not None:
            raise GenerationArgumentError(
                "variants and wildcards need the prompt as text (a template), not a Prompt"
            )
    if isinstance(given, Prompt) and table is None:
        texts: tuple[str, ...] = ()
        template = None
    else:
        texts, template = _draw_texts(options, str(given), seeds)
    negative = options.negative_prompt
    if table is not None:
        quality = None if options.quality is None else table.quality_preset(options.quality)
        if negative is None:
            has_own = quality is not None and quality.negative_prompt
            negative = "" if has_own else version.negative_prompt
        assembled = [
            table.apply(
                text,
                negative,
                style=options.style,
                quality=options.quality,
                quality_tags=options.add_quality_tags,
            )
            for text in texts
        ]
        texts = tuple(positive for positive, _ in assembled)
        negative = assembled[0][1]
    elif negative is None:
        negative = version.negative_prompt
    negative_tags = tuple(item.tag for item in parse_tags(negative))
    if texts:
        parsed: dict[str, Prompt] = {}
        for text in texts:
            if text not in parsed:
                parsed[text] = Prompt.parse(text, version=version)
    else:
        assert isinstance(given, Prompt)
        parsed, texts = {"": given}, ("",) * count
    if options.add_quality_tags and options.quality is None:
        parsed = {text: prompt.with_quality_tags() for text, prompt in parsed.items()}
    prompts = tuple(parsed[text] for text in texts)
    prompt = prompts[0]
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
        seeds=seeds,
        clip_skip=clip_skip or None,
        hires=options.hires,
        hires_size=hires_size,
        hires_steps=hires_steps,
        prompts=prompts,
        template=template,
        style=options.style,
        quality=options.quality,
    )
