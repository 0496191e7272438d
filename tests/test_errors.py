"""The error tree: each public entry point fails with an AnimagineError and its builtin.

Each case below is one bad input to one public entry point of the prompt core, the metadata
layer, the atomic file writer or the caption tool, with the error it must raise. The property
tests feed arbitrary text and objects to the readers, which may only ever raise AnimagineError.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import animagine.errors
from animagine.apps.captions import find_captions, normalise_caption, normalise_captions
from animagine.core import (
    BREAK,
    MAX_PROMPT_CHARS,
    Diagnostic,
    Prompt,
    Tag,
    TagDatabase,
    apply_fixes,
    convert,
    get_version,
    lint,
    parse,
    parse_tags,
)
from animagine.errors import (
    AnimagineError,
    GenerationArgumentError,
    GenerationTypeError,
    InvalidArgumentError,
    MetadataError,
    MissingFileError,
    NotAFileError,
    PromptOrderError,
    PromptSyntaxError,
    PromptTooLongError,
    TagDatabaseError,
    UnknownVersionError,
    WrongTypeError,
)
from animagine.files import write_atomic
from animagine.metadata import (
    ANIMAGINE_CHUNK,
    DEMO_CHUNK,
    PARAMETERS_CHUNK,
    GenerationParameters,
    HiresParameters,
    png_info,
    read_parameters,
    write_png,
)

HAS_PILLOW = importlib.util.find_spec("PIL") is not None
needs_pillow = pytest.mark.skipif(not HAS_PILLOW, reason="needs Pillow (the generate extra)")
DOCS = Path(__file__).parents[1] / "docs" / "api" / "errors.md"

# --- the tree ----------------------------------------------------------------------------------

#: Each error class, the builtin it also is, and its parent in the tree.
TREE: dict[type[Exception], tuple[type[BaseException], type[Exception]]] = {
    InvalidArgumentError: (ValueError, AnimagineError),
    GenerationArgumentError: (ValueError, InvalidArgumentError),
    WrongTypeError: (TypeError, AnimagineError),
    GenerationTypeError: (TypeError, WrongTypeError),
    PromptSyntaxError: (ValueError, AnimagineError),
    PromptOrderError: (ValueError, PromptSyntaxError),
    PromptTooLongError: (ValueError, PromptSyntaxError),
    UnknownVersionError: (ValueError, AnimagineError),
    TagDatabaseError: (ValueError, AnimagineError),
    MetadataError: (ValueError, AnimagineError),
    MissingFileError: (FileNotFoundError, AnimagineError),
    NotAFileError: (IsADirectoryError, AnimagineError),
    animagine.errors.MissingDependencyError: (ImportError, AnimagineError),
    animagine.errors.ModelLoadError: (ValueError, AnimagineError),
    animagine.errors.EncodingError: (ValueError, AnimagineError),
    animagine.errors.UnsupportedPipelineError: (TypeError, AnimagineError),
    animagine.errors.BatchInputError: (ValueError, AnimagineError),
}


def test_every_error_is_in_the_tree() -> None:
    exported = {getattr(animagine.errors, name) for name in animagine.errors.__all__}
    assert exported == set(TREE) | {AnimagineError}


@pytest.mark.parametrize("error", list(TREE), ids=lambda e: e.__name__)
def test_each_error_is_an_animagine_error_and_its_builtin(error: type[Exception]) -> None:
    builtin, parent = TREE[error]
    assert issubclass(error, AnimagineError)
    assert issubclass(error, builtin)
    assert error.__mro__[1] is parent or parent in error.__bases__


def test_the_tree_is_documented() -> None:
    """docs/api/errors.md and the module docstring list every class, with its builtin."""
    page = DOCS.read_text(encoding="utf-8")
    for text in (page, animagine.errors.__doc__ or ""):
        for error, (builtin, parent) in TREE.items():
            line = next((ln for ln in text.splitlines() if f"── {error.__name__} " in ln), "")
            assert line, error.__name__
            if parent is AnimagineError:
                assert f"({builtin.__name__})" in line, line


def test_file_errors_carry_errno_and_filename() -> None:
    missing = MissingFileError.from_path(Path("x") / "y.png")
    assert (missing.errno, missing.filename) == (2, str(Path("x") / "y.png"))
    folder = NotAFileError.from_path("out")
    assert (folder.errno, folder.filename) == (21, "out")


def test_syntax_errors_pickle() -> None:
    import pickle

    error = PromptOrderError("order", text="b, 1girl", offset=3, code="order")
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), back.code, back.offset, str(back)) == (
        PromptOrderError,
        "order",
        3,
        str(error),
    )
    long = PromptTooLongError(text="x" * 10, limit=5)
    assert pickle.loads(pickle.dumps(long)).length == 10


# --- every entry point, every failure kind -------------------------------------------------------


def _params(**changes: Any) -> GenerationParameters:
    fields: dict[str, Any] = {
        "prompt": "1girl",
        "negative_prompt": "",
        "steps": 28,
        "sampler": "Euler a",
        "guidance_scale": 5.0,
        "seed": 1,
        "width": 832,
        "height": 1216,
        "model": "",
        "version": "v4",
    }
    fields.update(changes)
    return GenerationParameters(**fields)


def _deep(depth: int = 100_000) -> dict[str, Any]:
    """A dict nested deeper than JSON can be written."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _hires(**changes: Any) -> HiresParameters:
    fields: dict[str, Any] = {"scale": 1.5, "strength": 0.5, "upscaler": "Latent"}
    fields.update(changes)
    return HiresParameters(**fields)


def _files(tmp: Path) -> dict[str, Path]:
    """Paths the cases use: a missing one, a folder, a text file, a bad CSV, a bad database."""
    folder = tmp / "folder"
    folder.mkdir()
    text = tmp / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    csv = tmp / "bad.csv"
    csv.write_text("a,4\nb,character\n", encoding="utf-8")
    database = tmp / "bad.txt.gz"
    database.write_bytes(gzip.compress(b"not a tag database\n"))
    return {"missing": tmp / "missing.png", "folder": folder, "text": text, "csv": csv,
            "database": database}  # fmt: skip


# (id, error class, builtin, call taking the paths of `_files`)
Case = tuple[str, type[AnimagineError], type[BaseException], Callable[[dict[str, Path]], object]]

CORE_CASES: list[Case] = [
    ("Tag/name-type", WrongTypeError, TypeError, lambda f: Tag(1)),
    ("Tag/empty", InvalidArgumentError, ValueError, lambda f: Tag("  ")),
    ("Tag/comma", InvalidArgumentError, ValueError, lambda f: Tag("a, b")),
    ("Tag/weight-type", WrongTypeError, TypeError, lambda f: Tag("a", "1.2")),
    ("Tag/weight-bool", WrongTypeError, TypeError, lambda f: Tag("a", True)),
    ("Tag/weight-nan", InvalidArgumentError, ValueError, lambda f: Tag("a", math.nan)),
    ("Tag/weight-huge-int", InvalidArgumentError, ValueError, lambda f: Tag("a", 10**400)),
    ("Tag/break-weight", InvalidArgumentError, ValueError, lambda f: Tag("BREAK", 2)),
    ("Prompt.parse/type", WrongTypeError, TypeError, lambda f: Prompt.parse(b"1girl")),  # type: ignore[arg-type]
    ("Prompt.parse/syntax", PromptSyntaxError, ValueError, lambda f: Prompt.parse("(1girl")),
    ("Prompt.parse/too-long", PromptTooLongError, ValueError,
     lambda f: Prompt.parse("a" * (MAX_PROMPT_CHARS + 1))),
    ("Prompt.parse/strict", PromptOrderError, ValueError,
     lambda f: Prompt.parse("smile, 1girl", strict=True)),
    ("Prompt.parse/version-type", WrongTypeError, TypeError,
     lambda f: Prompt.parse("1girl", version=4)),  # type: ignore[arg-type]
    ("Prompt.parse/version", UnknownVersionError, ValueError,
     lambda f: Prompt.parse("1girl", version="v9")),
    ("Prompt.parse/database", WrongTypeError, TypeError,
     lambda f: Prompt.parse("1girl", database=set())),  # type: ignore[arg-type]
    ("parse/syntax", PromptSyntaxError, ValueError, lambda f: parse("a AND b")),
    ("parse/type", WrongTypeError, TypeError, lambda f: parse(None)),  # type: ignore[arg-type]
    ("Prompt/single-str", WrongTypeError, TypeError, lambda f: Prompt(subjects="1girl")),
    ("Prompt/not-iterable", WrongTypeError, TypeError, lambda f: Prompt(general=3)),
    ("Prompt/empty-tag", InvalidArgumentError, ValueError, lambda f: Prompt(general=[""])),
    ("Prompt/break-rating", InvalidArgumentError, ValueError, lambda f: Prompt(rating=BREAK)),
    ("Prompt/version", UnknownVersionError, ValueError, lambda f: Prompt(version="v2")),
    ("Prompt.with_quality_tags/str", WrongTypeError, TypeError,
     lambda f: Prompt().with_quality_tags("masterpiece")),
    ("Prompt.convert/version", UnknownVersionError, ValueError, lambda f: Prompt().convert("x")),
    ("Prompt.from_json/empty", InvalidArgumentError, ValueError, lambda f: Prompt.from_json({})),
    ("Prompt.from_json/list", InvalidArgumentError, ValueError,
     lambda f: Prompt.from_json([])),  # type: ignore[arg-type]
    ("Prompt.from_json/bad-tag", InvalidArgumentError, ValueError,
     lambda f: Prompt.from_json({"version": "v4", "general": [["", 1.0]]})),
    ("Prompt.from_json/version", UnknownVersionError, ValueError,
     lambda f: Prompt.from_json({"version": "v9"})),
    ("convert/syntax", PromptSyntaxError, ValueError, lambda f: convert("(a", to="v3")),
    ("convert/version", UnknownVersionError, ValueError, lambda f: convert("a", to="v9")),
    ("convert/type", WrongTypeError, TypeError, lambda f: convert(1, to="v3")),  # type: ignore[arg-type]
    ("lint/type", WrongTypeError, TypeError, lambda f: lint(["1girl"])),  # type: ignore[arg-type]
    ("lint/too-long", PromptTooLongError, ValueError, lambda f: lint(" " * (MAX_PROMPT_CHARS + 1))),
    ("lint/version", UnknownVersionError, ValueError, lambda f: lint("a", version="4.5")),
    ("lint/database", WrongTypeError, TypeError, lambda f: lint("a", database="db")),  # type: ignore[arg-type]
    ("apply_fixes/text", WrongTypeError, TypeError, lambda f: apply_fixes(None, [])),  # type: ignore[arg-type]
    ("apply_fixes/items", WrongTypeError, TypeError, lambda f: apply_fixes("a", [("x", 0, 1)])),  # type: ignore[list-item]
    ("apply_fixes/span", InvalidArgumentError, ValueError,
     lambda f: apply_fixes("a", [Diagnostic("duplicate", "warning", "", 0, 5, "")])),
    ("parse_tags/type", WrongTypeError, TypeError, lambda f: parse_tags(3)),  # type: ignore[arg-type]
    ("get_version/type", WrongTypeError, TypeError, lambda f: get_version(None)),  # type: ignore[arg-type]
    ("get_version/unknown", UnknownVersionError, ValueError, lambda f: get_version("v5")),
    ("ModelVersion.rating_tag", InvalidArgumentError, ValueError,
     lambda f: get_version("v4").rating_tag("spicy")),  # type: ignore[arg-type]
    ("TagDatabase.from_names/str", WrongTypeError, TypeError,
     lambda f: TagDatabase.from_names(characters="my oc")),
    ("TagDatabase.from_names/not-iterable", WrongTypeError, TypeError,
     lambda f: TagDatabase.from_names(series=5)),  # type: ignore[arg-type]
    ("TagDatabase.from_names/item", WrongTypeError, TypeError,
     lambda f: TagDatabase.from_names(characters=[None])),  # type: ignore[list-item]
    ("TagDatabase.from_names/empty", InvalidArgumentError, ValueError,
     lambda f: TagDatabase.from_names(characters=[" \t"])),
    ("TagDatabase.from_csv/missing", MissingFileError, FileNotFoundError,
     lambda f: TagDatabase.from_csv(f["missing"])),
    ("TagDatabase.from_csv/folder", NotAFileError, IsADirectoryError,
     lambda f: TagDatabase.from_csv(f["folder"])),
    ("TagDatabase.from_csv/type", WrongTypeError, TypeError, lambda f: TagDatabase.from_csv(0)),  # type: ignore[arg-type]
    ("TagDatabase.from_csv/malformed", TagDatabaseError, ValueError,
     lambda f: TagDatabase.from_csv(f["csv"])),
    ("TagDatabase.from_file/missing", MissingFileError, FileNotFoundError,
     lambda f: TagDatabase.from_file(f["missing"])),
    ("TagDatabase.from_file/folder", NotAFileError, IsADirectoryError,
     lambda f: TagDatabase.from_file(f["folder"])),
    ("TagDatabase.from_file/malformed", TagDatabaseError, ValueError,
     lambda f: TagDatabase.from_file(f["database"]).kind("x")),
    ("TagDatabase.load/malformed", TagDatabaseError, ValueError,
     lambda f: TagDatabase.from_file(f["database"]).load()),
    ("TagDatabase.kind/type", WrongTypeError, TypeError, lambda f: TagDatabase.empty().kind(1)),  # type: ignore[arg-type]
    ("TagDatabase.series_of/type", WrongTypeError, TypeError,
     lambda f: TagDatabase.empty().series_of(None)),  # type: ignore[arg-type]
]  # fmt: skip

METADATA_CASES: list[Case] = [
    ("GenerationParameters/type", GenerationTypeError, TypeError, lambda f: _params(seed="1")),
    ("GenerationParameters/float-steps", GenerationTypeError, TypeError,
     lambda f: _params(steps=28.0)),
    ("GenerationParameters/range", GenerationArgumentError, ValueError, lambda f: _params(steps=0)),
    ("GenerationParameters/seed", GenerationArgumentError, ValueError,
     lambda f: _params(seed=2**64)),
    ("GenerationParameters/nan", GenerationArgumentError, ValueError,
     lambda f: _params(guidance_scale=math.nan)),
    ("GenerationParameters/empty-sampler", GenerationArgumentError, ValueError,
     lambda f: _params(sampler="")),
    ("GenerationParameters/extra-type", GenerationTypeError, TypeError,
     lambda f: _params(extra={"Key": 1})),
    ("GenerationParameters/extra-key", GenerationArgumentError, ValueError,
     lambda f: _params(extra={"Steps": "3"})),
    ("GenerationParameters/hires-type", GenerationTypeError, TypeError,
     lambda f: _params(hires={"scale": 2})),
    ("GenerationParameters/structured", GenerationTypeError, TypeError,
     lambda f: _params(structured_prompt={"x": object()})),
    ("HiresParameters/range", GenerationArgumentError, ValueError, lambda f: _hires(strength=2)),
    ("HiresParameters/scale", GenerationArgumentError, ValueError, lambda f: _hires(scale=0.5)),
    ("HiresParameters/type", GenerationTypeError, TypeError, lambda f: _hires(upscaler=None)),
    ("from_infotext/type", WrongTypeError, TypeError,
     lambda f: GenerationParameters.from_infotext(None)),  # type: ignore[arg-type]
    ("from_infotext/empty", MetadataError, ValueError,
     lambda f: GenerationParameters.from_infotext("")),
    ("from_infotext/bad-value", MetadataError, ValueError,
     lambda f: GenerationParameters.from_infotext("x\nSteps: 0, Sampler: a, CFG scale: 1, "
                                                  "Seed: 1, Size: 8x8")),
    ("from_json/not-object", MetadataError, ValueError,
     lambda f: GenerationParameters.from_json([])),  # type: ignore[arg-type]
    ("from_json/empty", MetadataError, ValueError, lambda f: GenerationParameters.from_json({})),
    ("from_json/odd-keys", MetadataError, ValueError,
     lambda f: GenerationParameters.from_json({1: 2, "a": 3})),  # type: ignore[dict-item]
    ("from_json/deep", MetadataError, ValueError,
     lambda f: GenerationParameters.from_json({**_params().to_json(),
                                               "structured_prompt": _deep()})),
]  # fmt: skip

IMAGE_CASES: list[Case] = [
    ("read_parameters/missing", MissingFileError, FileNotFoundError,
     lambda f: read_parameters(f["missing"])),
    ("read_parameters/folder", NotAFileError, IsADirectoryError,
     lambda f: read_parameters(f["folder"])),
    ("read_parameters/not-image", MetadataError, ValueError, lambda f: read_parameters(f["text"])),
    ("read_parameters/type", WrongTypeError, TypeError, lambda f: read_parameters(42)),  # type: ignore[arg-type]
    ("read_parameters/nul", InvalidArgumentError, ValueError, lambda f: read_parameters("a\0b")),
    ("png_info/type", WrongTypeError, TypeError, lambda f: png_info({"prompt": "x"})),  # type: ignore[arg-type]
    ("write_png/image-type", WrongTypeError, TypeError,
     lambda f: write_png(b"png", f["folder"] / "a.png", _params())),  # type: ignore[arg-type]
    ("write_png/parameters-type", WrongTypeError, TypeError,
     lambda f: write_png(_image(), f["folder"] / "a.png", None)),  # type: ignore[arg-type]
    ("write_png/missing-folder", MissingFileError, FileNotFoundError,
     lambda f: write_png(_image(), f["missing"] / "a.png", _params())),
    ("write_png/folder", NotAFileError, IsADirectoryError,
     lambda f: write_png(_image(), f["folder"], _params(), overwrite=True)),
    ("write_png/mode", InvalidArgumentError, ValueError,
     lambda f: write_png(_image("CMYK"), f["folder"] / "c.png", _params())),
    ("write_png/empty", InvalidArgumentError, ValueError,
     lambda f: write_png(_image(size=(0, 0)), f["folder"] / "e.png", _params())),
]  # fmt: skip

APP_CASES: list[Case] = [
    ("find_captions/missing", MissingFileError, FileNotFoundError,
     lambda f: find_captions([f["missing"]])),
    ("find_captions/extension", InvalidArgumentError, ValueError,
     lambda f: find_captions([f["folder"]], extension="txt")),
    ("find_captions/extension-type", WrongTypeError, TypeError,
     lambda f: find_captions([f["folder"]], extension=None)),  # type: ignore[arg-type]
    ("find_captions/roots", WrongTypeError, TypeError, lambda f: find_captions(f["folder"])),  # type: ignore[arg-type]
    ("normalise_captions/jobs", InvalidArgumentError, ValueError,
     lambda f: normalise_captions([], jobs=0)),
    ("normalise_captions/jobs-type", WrongTypeError, TypeError,
     lambda f: normalise_captions([], jobs=2.0)),  # type: ignore[arg-type]
    ("normalise_captions/version", UnknownVersionError, ValueError,
     lambda f: normalise_captions([], version="3.5")),
    ("normalise_captions/paths", WrongTypeError, TypeError,
     lambda f: normalise_captions([1])),  # type: ignore[list-item]
    ("normalise_caption/type", WrongTypeError, TypeError, lambda f: normalise_caption(None)),  # type: ignore[arg-type]
    ("normalise_caption/too-long", PromptTooLongError, ValueError,
     lambda f: normalise_caption("a, " * 40_000)),
    ("write_atomic/missing-folder", MissingFileError, FileNotFoundError,
     lambda f: write_atomic(f["missing"] / "a.txt", "x")),
    ("write_atomic/folder", NotAFileError, IsADirectoryError,
     lambda f: write_atomic(f["folder"], "x")),
    ("write_atomic/data", WrongTypeError, TypeError,
     lambda f: write_atomic(f["folder"] / "a.txt", 1)),  # type: ignore[arg-type]
]  # fmt: skip


def _image(mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> Any:
    from PIL import Image

    return Image.new(mode, size)


def _check(case: Case, tmp_path: Path) -> None:
    _, error, builtin, call = case
    with pytest.raises(error) as caught:
        call(_files(tmp_path))
    assert isinstance(caught.value, AnimagineError)
    assert isinstance(caught.value, builtin)
    assert str(caught.value)  # says something


@pytest.mark.parametrize("case", CORE_CASES, ids=[case[0] for case in CORE_CASES])
def test_core_entry_points(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


@pytest.mark.parametrize("case", METADATA_CASES, ids=[case[0] for case in METADATA_CASES])
def test_metadata_entry_points(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


@needs_pillow
@pytest.mark.parametrize("case", IMAGE_CASES, ids=[case[0] for case in IMAGE_CASES])
def test_image_entry_points(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


@pytest.mark.parametrize("case", APP_CASES, ids=[case[0] for case in APP_CASES])
def test_caption_and_file_entry_points(case: Case, tmp_path: Path) -> None:
    _check(case, tmp_path)


@needs_pillow
def test_refusing_to_overwrite_is_a_plain_file_exists_error(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError) as caught:
        write_png(_image(), path, _params())
    assert type(caught.value) is FileExistsError
    assert caught.value.filename == str(path)


def test_missing_file_messages_read_like_the_builtin(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as caught:
        find_captions([tmp_path / "nope"])
    assert caught.value.strerror == "No such file or directory"
    assert caught.value.filename == str(tmp_path / "nope")


# --- arbitrary input only ever raises AnimagineError ----------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
objects = json_values | st.binary(max_size=10) | st.builds(object) | st.sets(st.integers())
_FIELDS = ["prompt", "negative_prompt", "steps", "sampler", "guidance_scale", "seed", "width",
           "height", "model", "version", "model_hash", "clip_skip", "hires", "structured_prompt",
           "extra", "format"]  # fmt: skip
# Objects shaped like ours: real keys with arbitrary values, so the checks past the keys run.
_HIRES_JSON = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(("scale", "strength", "upscaler", "steps", "x"), json_values)
)
parameter_json = st.fixed_dictionaries(
    dict.fromkeys(_FIELDS[:9], json_values),
    optional={**dict.fromkeys(_FIELDS[9:], json_values), "hires": json_values | _HIRES_JSON},
)
infotext_lines = st.lists(
    st.sampled_from(
        ["Steps: 2", "Sampler: a", "CFG scale: 7", "Seed: 1", "Size: 8x8", "Size: 0x8",
         "Hires upscale: 2", "Denoising strength: 1.5", "Hires upscaler: L", "Clip skip: x",
         "Steps: 99999999999999999999", 'Model: "a, b"', "Schedule type: Karras",
         "Animagine version: ", "Hires steps: -1", "CFG scale: nan", "Seed: -1"]
    ),
    min_size=3,
    max_size=9,
).map(", ".join)  # fmt: skip


def _only_animagine_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(AnimagineError):
        call()


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200) | infotext_lines | st.builds("{}\n{}".format, st.text(), infotext_lines)
)
def test_from_infotext_text(text: str) -> None:
    try:
        params = GenerationParameters.from_infotext(text)
    except MetadataError:
        return
    assert GenerationParameters.from_infotext(params.to_infotext()).seed == params.seed


@settings(max_examples=100, deadline=None)
@given(objects)
def test_from_infotext_objects(value: object) -> None:
    _only_animagine_errors(lambda: GenerationParameters.from_infotext(value))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(objects | parameter_json)
def test_from_json(value: object) -> None:
    try:
        params = GenerationParameters.from_json(value)  # type: ignore[arg-type]
    except MetadataError:
        return
    assert GenerationParameters.from_json(params.to_json()) == params


# Every required field is given (a call that leaves one out is Python's own TypeError, as for any
# function), each one a valid value or an arbitrary object.
_VALID = _params().to_json()


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {key: st.just(_VALID[key]) | objects for key in _FIELDS[:10]},
        optional=dict.fromkeys(_FIELDS[10:15], objects),
    )
)
def test_record_construction(fields: dict[str, Any]) -> None:
    _only_animagine_errors(lambda: GenerationParameters(**fields))


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"scale": st.just(2.0) | objects, "strength": st.just(0.5) | objects,
         "upscaler": st.just("Latent") | objects},
        optional={"steps": objects},
    )
)  # fmt: skip
def test_hires_construction(fields: dict[str, Any]) -> None:
    _only_animagine_errors(lambda: HiresParameters(**fields))


@settings(max_examples=200, deadline=None)
@given(objects | st.text(max_size=100), st.sampled_from(["v3", "v3.1", "v4"]), st.booleans())
def test_prompt_parse_objects_and_text(value: object, version: str, strict: bool) -> None:
    _only_animagine_errors(lambda: Prompt.parse(value, version=version, strict=strict))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(objects | st.text(max_size=100))
def test_lint_objects_and_text(value: object) -> None:
    _only_animagine_errors(lambda: lint(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        lint(value)  # text never raises, it gives diagnostics


@settings(max_examples=200, deadline=None)
@given(
    objects
    | st.fixed_dictionaries(
        {"version": st.sampled_from(["v4", "v3", 4])},
        optional={"general": json_values, "rating": json_values},
    )
)
def test_prompt_from_json(value: object) -> None:
    _only_animagine_errors(lambda: Prompt.from_json(value))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(objects | st.text(max_size=20), objects | st.floats())
def test_tag(name: object, weight: object) -> None:
    _only_animagine_errors(lambda: Tag(name, weight))


@needs_pillow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([ANIMAGINE_CHUNK, PARAMETERS_CHUNK, DEMO_CHUNK]),
    st.text(max_size=200)
    | parameter_json.map(json.dumps)
    | infotext_lines
    | st.sampled_from(["[" * 5000, '{"a": ' * 3000, "{" + "[" * 3000]),
)
def test_read_parameters_of_arbitrary_chunks(chunk: str, text: str) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(chunk, text)
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG", pnginfo=info)
    buffer.seek(0)
    with Image.open(buffer) as image:
        _only_animagine_errors(lambda: read_parameters(image))


@needs_pillow
@pytest.mark.parametrize("chunk", [ANIMAGINE_CHUNK, PARAMETERS_CHUNK, DEMO_CHUNK])
def test_deeply_nested_json_is_a_metadata_error(chunk: str) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(chunk, "{" + '"a": [' * 100_000)
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG", pnginfo=info)
    buffer.seek(0)
    with Image.open(buffer) as image, pytest.raises(MetadataError):
        read_parameters(image)


def test_docs_page_lists_no_stale_class() -> None:
    page = DOCS.read_text(encoding="utf-8")
    listed = set(re.findall(r"── (\w+)", page))
    assert listed == {error.__name__ for error in TREE}
