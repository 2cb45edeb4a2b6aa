"""Prompt files: prompts/ by default; a deployment's prompts_dir overrides them by name."""
from __future__ import annotations

import pytest

from assistant.prompts import load_prompt, prompts_digest
from assistant.settings import PROMPTS_DIR, SettingsError
from conftest import make_container


def test_prompts_dir_overrides_by_name_and_changes_the_digest(tmp_path):
    default = make_container(tmp_path / "data")
    base_digest = prompts_digest()
    assert load_prompt("answer_system") == (PROMPTS_DIR / "answer_system.md").read_text(encoding="utf-8").strip()

    own = tmp_path / "own-prompts"
    own.mkdir()
    (own / "answer_system.md").write_text("你是示范市政务助手。只依据参考资料回答。\n", encoding="utf-8")
    c = make_container(tmp_path / "data", GOV_ASSISTANT_PROMPTS_DIR=str(own))
    assert load_prompt("answer_system") == "你是示范市政务助手。只依据参考资料回答。"
    assert load_prompt("condense") == (PROMPTS_DIR / "condense.md").read_text(encoding="utf-8").strip()
    assert prompts_digest() != base_digest
    system = c.answerer.prompt.messages[0].prompt.template
    assert system.startswith("你是示范市政务助手")

    make_container(tmp_path / "data")          # back to the packaged prompts
    assert prompts_digest() == base_digest and default.settings.prompts_dir is None


def test_a_missing_prompts_dir_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="prompts_dir"):
        make_container(tmp_path / "data", GOV_ASSISTANT_PROMPTS_DIR=str(tmp_path / "nope"))
    make_container(tmp_path / "data")
