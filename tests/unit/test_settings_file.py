"""Settings come from a TOML file too; variables override it; a missing file is an error, not a silent default."""

import pytest

from voxgate.config import Settings


def test_a_toml_file_sets_options_and_variables_override_it(tmp_path, monkeypatch) -> None:
    path = tmp_path / "voxgate.toml"
    path.write_text('port = 9100\ndefault_voice = "ivy"\nterm_packs = ["medical"]\nllm_backend = "openai"\n')
    monkeypatch.setenv("VOXGATE_CONFIG", str(path))
    monkeypatch.setenv("VOXGATE_PORT", "9200")
    settings = Settings()
    assert (settings.port, settings.default_voice, settings.term_packs, settings.llm_backend) == (
        9200,
        "ivy",
        ["medical"],
        "openai",
    )


def test_a_missing_file_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VOXGATE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        Settings()
