"""Compare two programs' printed outputs: the text between numbers exactly, the numbers
within what their printed precision allows."""

from __future__ import annotations

import math
import re

# a number as print() and tensor reprs write one: 3, -0.25, 1.5e-05, 2., nan, inf
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])"
                    r"|(?<![\w.])-?(?:nan|inf)(?![\w.])")
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def split(text: str) -> tuple[list[str], list[str]]:
    """(the text with every number replaced by '#', the numbers in order)."""
    text = ADDRESS.sub("0xADDR", text)
    return NUMBER.sub("#", text).splitlines(), NUMBER.findall(text)


def last_place(token: str) -> float:
    """One unit in the last printed digit of a rounded number (0.1234 -> 1e-4, 1.5e-05 ->
    1e-6); 0 for one printed without decimals (12, 3.), which is whole, not rounded."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    if not decimals:
        return 0.0
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def numbers_close(ours: str, theirs: str, rtol: float) -> bool:
    a, b = float(ours), float(theirs)
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return ours == theirs
    # a value just either side of a rounding boundary prints one unit apart
    slack = 1.01 * max(last_place(ours), last_place(theirs))
    return abs(a - b) <= slack + rtol * abs(b)


def differences(ours: str, theirs: str, rtol: float = 1e-4) -> list[str]:
    """What differs, as readable lines; empty when the outputs agree."""
    text_a, nums_a = split(ours)
    text_b, nums_b = split(theirs)
    found = []
    for n, (la, lb) in enumerate(zip(text_a, text_b)):
        if la != lb:
            found.append(f"line {n + 1}: {la!r} != {lb!r}")
    if len(text_a) != len(text_b):
        found.append(f"{len(text_a)} lines != {len(text_b)} lines")
    if not found:
        for a, b in zip(nums_a, nums_b):
            if not numbers_close(a, b, rtol):
                found.append(f"number {a} != {b}")
    return found
