"""docs/notebook.ipynb: committed clean, and every step of it runs with the tiny offline model.

The notebook runs in a real Jupyter kernel (``ipykernel``, driven by ``nbclient``) on this
interpreter, as a user runs it, minus the cell that installs animagine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from html_parts import parsed

import animagine

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"


def _cells() -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(NOTEBOOK.read_text("utf-8"))["cells"]
    return cells


def _source(cell: Any) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def test_committed_notebook_is_clean() -> None:
    data = json.loads(NOTEBOOK.read_text("utf-8"))
    assert data["nbformat"] == 4
    cells = data["cells"]
    assert cells[0]["cell_type"] == "markdown"
    install = cells[1]
    assert install["cell_type"] == "code"
    assert install["metadata"]["tags"] == ["install"]
    assert _source(install) == '%pip install "animagine[generate]"'
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert [cell["outputs"] for cell in code] == [[] for _ in code]
    assert {cell["execution_count"] for cell in code} == {None}
    # The real model is named where the tiny one stands in for it.
    assert any(
        'Generator.from_pretrained(\n    "cagliostrolab/animagine-xl-4.0"' in _source(cell)
        for cell in cells
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The notebook run without its install cell: (cells by id, the folder it ran in)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    installs = [cell for cell in notebook.cells if "install" in cell.metadata.get("tags", [])]
    assert len(installs) == 1
    assert "%pip install" in installs[0].source
    notebook.cells = [cell for cell in notebook.cells if cell not in installs]

    # A kernel on this interpreter, whatever kernels the machine has installed.
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / "python3")
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    assert specs.get_kernel_spec("python3").argv[0] == sys.executable
    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)

    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(folder)}},
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    # Raises CellExecutionError if a cell fails; stops the kernel and its channels either way.
    client.execute(env=env, cleanup_kc=True)
    return {cell.id: cell for cell in notebook.cells}, folder


def _result(cell: Any, kind: str) -> str:
    (data,) = [
        output["data"]
        for output in cell.outputs
        if output["output_type"] in ("execute_result", "display_data") and kind in output["data"]
    ]
    value: str = data[kind]
    return value


def _stdout(cell: Any) -> str:
    return "".join(
        output["text"]
        for output in cell.outputs
        if output["output_type"] == "stream" and output["name"] == "stdout"
    )


@pytest.mark.generate
def test_no_cell_failed(executed: tuple[dict[str, Any], Path]) -> None:
    cells, _ = executed
    assert "install" not in cells
    for cell_id, cell in cells.items():
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell_id
            assert all(output["output_type"] != "error" for output in cell.outputs), cell_id


@pytest.mark.generate
def test_prompt_shows_tags_coloured_by_slot(executed: tuple[dict[str, Any], Path]) -> None:
    cells, _ = executed
    html = _result(cells["parse"], "text/html")
    chips = [
        (attrs["class"].split()[-1].removeprefix("animagine-slot-"), text, attrs["style"])
        for attrs, text in parsed(html).spans
        if "animagine-tag" in attrs.get("class", "").split()
    ]
    assert [(slot, text) for slot, text, _ in chips] == [
        ("subject", "1girl"),
        ("character", "arima kana"),
        ("series", "oshi no ko"),
        ("rating", "safe"),
        ("general", "smile"),
        ("general", "night:1.2"),
        ("year", "year 2023"),
        ("quality", "masterpiece"),
    ]
    # One background per slot, the same for every tag of a slot.
    backgrounds: dict[str, set[str]] = {}
    for slot, _, style in chips:
        background = next(part for part in style.split(";") if part.startswith("background:"))
        backgrounds.setdefault(slot, set()).add(background)
    assert all(len(found) == 1 for found in backgrounds.values())
    assert len({next(iter(found)) for found in backgrounds.values()}) == len(backgrounds)


@pytest.mark.generate
def test_lint_shows_a_table_of_findings(executed: tuple[dict[str, Any], Path]) -> None:
    cells, _ = executed
    html = _result(cells["lint"], "text/html")
    starts = parsed(html).starts
    assert starts[0][0] == "table"
    codes = [attrs["data-code"] for tag, attrs in starts if tag == "tr" and "data-code" in attrs]
    messy = "masterpiece, 1girl, saber, smile, smile, hat (blue), safe"
    assert codes == [d.code for d in animagine.lint(messy)]
    assert {"order", "alias", "duplicate", "unescaped-parens"} <= set(codes)
    # The fixed prompt, parsed, no longer has the findings fixes repair.
    fixed = _result(cells["fix"], "text/html")
    assert "animagine-prompt" in fixed
    assert 'data-code="alias"' not in fixed
    assert 'data-code="duplicate"' not in fixed


@pytest.mark.generate
def test_generation_shows_an_image_grid(executed: tuple[dict[str, Any], Path]) -> None:
    cells, folder = executed
    cell = cells["generate"]
    html = _result(cell, "text/html")
    images = [attrs for tag, attrs in parsed(html).starts if tag == "img"]
    assert len(images) == 2
    assert all(image["src"].startswith("data:image/png;base64,") for image in images)
    assert [image["alt"] for image in images] == ["seed 1", "seed 2"]
    assert "Seed: 1," in html
    assert "Seed: 2," in html
    assert _result(cell, "image/png")  # the first image, for frontends without HTML
    saved = sorted(path.name for path in (folder / "animagine-images").iterdir())
    assert saved == ["1-1.png", "2-2.png"]


@pytest.mark.generate
def test_parameters_read_back(executed: tuple[dict[str, Any], Path]) -> None:
    cells, _ = executed
    read_back = cells["read-back"]
    assert "Seed: 1, Size: 64x64" in _stdout(read_back)
    assert _result(read_back, "text/plain") == "True"
    line = _stdout(cells["reproduce"]).strip()
    assert line.startswith("seed 1 - largest pixel difference: ")
    assert int(line.rpartition(" ")[2]) <= 2
