"""Offline stand-in for en_core_web_sm (see pyproject description)."""
import spacy


def load(**overrides):
    overrides.pop("exclude", None)
    overrides.pop("disable", None)
    overrides.pop("enable", None)
    nlp = spacy.blank("en", **{k: v for k, v in overrides.items() if k in ("vocab", "config")})
    nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", "。", "！", "？", "；"]})
    return nlp
