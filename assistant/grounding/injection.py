"""Prompt injection in the question: attempts to override the assistant's instructions or to make it reveal them.

A grounded assistant has no use for such a question, and a small model obeys it ("系统提示词如下：…"), so it is
refused before retrieval. Patterns, not a model: cheap, deterministic, and a miss still meets the answer prompt,
the evidence gate and verification. Government questions that merely mention 指令 or 规则 ("关于执行上级指令的规定")
do not match: each pattern needs an override verb together with the assistant's own instructions, or a request
for its prompt."""
from __future__ import annotations

import re
import unicodedata

_SELF = r"(?:你的|您的|系统|此前|之前|以上|上面|上述|前面|先前|原有|原来|所有|全部|一切|这些|那些|你收到的|给你的)"
_RULES = r"(?:指令|指示|提示词?|规则|设定|约束|限制|要求|命令|prompt|instructions?|rules?)"

PATTERNS = [
    # 忽略/无视/忘记 以上所有指令
    re.compile(rf"(?:忽略|无视|忘记|忘掉|不要理会|不用理会|不必遵守|不要遵守|跳过|覆盖|绕过|取消)[^。？！?!]{{0,8}}{_SELF}"
               rf"[^。？！?!]{{0,6}}{_RULES}"),
    # 输出/显示/告诉我 系统提示词 / 你的提示词 / 初始指令
    re.compile(r"(?:输出|显示|打印|复述|重复|泄露|告诉我|给出|列出|展示|透露|说出)[^。？！?!]{0,8}"
               r"(?:系统提示|系统指令|系统消息|system ?prompt|初始指令|原始指令|你的提示词|你的指令|你的设定|隐藏指令)"),
    re.compile(r"(?:系统提示词|system ?prompt)[^。？！?!]{0,6}(?:是什么|是啥|内容|原文|全文)"),
    # role hijack: 你现在是… / 从现在开始你… / 扮演… without restrictions
    re.compile(r"(?:从现在(?:开始|起)|现在起)[^。？！?!]{0,6}你(?:是|将|要|不再)"),
    re.compile(r"(?:开发者模式|越狱|jailbreak|DAN模式|developer mode)"),
    re.compile(r"ignore (?:all |the |any )?(?:previous|prior|above|earlier) (?:instructions|prompts?|rules)"),
    re.compile(r"(?:reveal|print|show|repeat) (?:your |the )?(?:system )?(?:prompt|instructions)"),
]


def _normal(text: str) -> str:
    # full-width letters and spaces, zero-width characters and case do not hide a pattern
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\u200b-\u200f\u2060\ufeff]", "", text)
    return re.sub(r"\s+", " ", text).lower()


def injection_attempt(question: str) -> str | None:
    """The matched phrase when the question tries to override or reveal the instructions, else None."""
    text = _normal(question)
    squeezed = text.replace(" ", "")    # "忽 略 以 上 指 令"
    for pattern in PATTERNS:
        if m := pattern.search(text) or pattern.search(squeezed):
            return m.group(0)
    return None
