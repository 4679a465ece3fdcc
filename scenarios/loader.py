"""Finding and reading scenario files: a path, or the name of one in the shipped library."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .errors import ScenarioFileError
from .schema import Scenario

LIBRARY = Path(__file__).with_name("library")


def library() -> dict[str, Path]:
    """The shipped scenarios by name."""
    return {p.stem: p for p in sorted(LIBRARY.glob("*.yaml"))}


def resolve(ref: str | Path) -> Path:
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ScenarioFileError(f"scenario file not found: {p}")
        return p
    lib = library()
    if str(ref) in lib:
        return lib[str(ref)]
    raise ScenarioFileError(f"no scenario file or library scenario named {str(ref)!r} "
                            f"(library: {', '.join(lib) or 'empty'})")


def parse_scenario(data: object, source: str, base_dir: str | None = None) -> Scenario:
    """Validate a mapping into a :class:`Scenario`; errors name the field and the file."""
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{source}: a scenario is a YAML mapping at the top level")
    try:
        return Scenario.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        lines = [f"{source} is not a valid scenario:"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {loc}: {err['msg'].removeprefix('Value error, ')}")
        raise ScenarioFileError("\n".join(lines)) from None


def load_scenario(ref: str | Path) -> Scenario:
    """Read a scenario from a YAML path or a library name such as ``monday-morning-burst``."""
    p = resolve(ref)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{p} is not valid YAML: {exc}") from None
    except OSError as exc:
        raise ScenarioFileError(f"cannot read {p}: {exc.strerror}") from None
    return parse_scenario(data, str(p), base_dir=str(p.parent.resolve()))
