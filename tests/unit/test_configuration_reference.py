"""docs/configuration.md is the generated reference of every setting: it must not drift from the model."""

from pathlib import Path

from voxgate.admin import reference_markdown
from voxgate.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_reference_is_current_and_every_setting_is_described() -> None:
    assert DOC.read_text() == reference_markdown(), "regenerate: voxgate config --markdown > docs/configuration.md"
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
