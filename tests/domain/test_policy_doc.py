"""docs/policy.md documents every policy key, and its examples load."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import BaseModel

from domain.models import ComplaintCategory
from domain.policy import (
    DEFAULT_TIMERS,
    CategoryPolicy,
    PeakSeason,
    Policy,
    RepairsPolicy,
    ReturnsPolicy,
)

DOC = Path(__file__).parents[2] / "docs" / "policy.md"
TOML_BLOCKS = re.compile(r"```toml\n(.*?)```", re.DOTALL)


def keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_key_is_documented_with_an_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    examples = "\n".join(TOML_BLOCKS.findall(text))
    every = (
        keys(Policy) - {"returns", "repairs", "timers", "complaints", "categories", "peak_seasons"}
        | keys(ReturnsPolicy)
        | keys(RepairsPolicy)
        | keys(CategoryPolicy)
        | keys(PeakSeason)
        | set(DEFAULT_TIMERS)
        | {category.value for category in ComplaintCategory}
    )
    undocumented = sorted(
        key for key in every if f"`{key}`" not in text and f"`{key} = " not in text
    )
    assert not undocumented, f"docs/policy.md doesn't name {undocumented}"
    without_example = sorted(key for key in every if not re.search(rf"\b{key} =", examples))
    assert not without_example, f"docs/policy.md has no example of {without_example}"
    for section in ("[returns]", "[repairs]", "[timers]", "[complaints.routing]"):
        assert section in examples
    assert "[categories." in examples and "[[peak_seasons]]" in examples
    # The simulator's walk-through (issue 11) closes the document.
    assert "\n## The policy simulator\n" in text


def test_every_example_loads_and_the_full_one_sets_every_key() -> None:
    blocks = TOML_BLOCKS.findall(DOC.read_text(encoding="utf-8"))
    for block in blocks:
        Policy.model_validate(tomllib.loads(block))
    full = tomllib.loads(blocks[-1])
    assert set(full) == keys(Policy)
    assert set(full["returns"]) == keys(ReturnsPolicy)
    assert set(full["timers"]) == set(DEFAULT_TIMERS)
    assert set(full["complaints"]["routing"]) == {c.value for c in ComplaintCategory}
    sections = full["categories"].values()
    assert set().union(*sections) == keys(CategoryPolicy)
    assert set().union(*full["peak_seasons"]) == keys(PeakSeason)
