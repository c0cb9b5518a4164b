"""A small stroke font, so that plot text is drawn as paths and an SVG holds no ``<text>``.

Only the plots' own words and numbers are ever drawn with it: names read from the logs go into
the HTML around the figure, escaped. Glyphs are polylines on a grid 4 units wide, baseline at 0,
lowercase letters 4 high, digits and capitals 6 high, descenders to -2.
"""

from __future__ import annotations

from functools import lru_cache

Polyline = tuple[tuple[float, float], ...]

_O = ((1, 0), (3, 0), (4, 1), (4, 5), (3, 6), (1, 6), (0, 5), (0, 1), (1, 0))

GLYPHS: dict[str, tuple[Polyline, ...]] = {
    " ": (),
    "0": (_O,),
    "1": (((1, 5), (2, 6), (2, 0)), ((1, 0), (3, 0))),
    "2": (((0, 5), (1, 6), (3, 6), (4, 5), (4, 4), (0, 0), (4, 0)),),
    "3": (
        ((0, 5), (1, 6), (3, 6), (4, 5), (4, 4), (3, 3), (1.5, 3)),
        ((3, 3), (4, 2), (4, 1), (3, 0), (1, 0), (0, 1)),
    ),
    "4": (((3, 0), (3, 6), (0, 2), (0, 1.8), (4, 1.8)),),
    "5": (((4, 6), (0, 6), (0, 3.5), (3, 3.5), (4, 2.5), (4, 1), (3, 0), (0, 0)),),
    "6": (
        (
            (4, 5),
            (3, 6),
            (1, 6),
            (0, 5),
            (0, 1),
            (1, 0),
            (3, 0),
            (4, 1),
            (4, 2.5),
            (3, 3.5),
            (0, 3.5),
        ),
    ),
    "7": (((0, 6), (4, 6), (1.5, 0)),),
    "8": (
        (
            (1, 3.2),
            (0, 4.2),
            (0, 5),
            (1, 6),
            (3, 6),
            (4, 5),
            (4, 4.2),
            (3, 3.2),
            (1, 3.2),
            (0, 2.2),
            (0, 1),
            (1, 0),
            (3, 0),
            (4, 1),
            (4, 2.2),
            (3, 3.2),
        ),
    ),
    "9": (
        (
            (0, 1),
            (1, 0),
            (3, 0),
            (4, 1),
            (4, 5),
            (3, 6),
            (1, 6),
            (0, 5),
            (0, 3.5),
            (1, 2.5),
            (4, 2.5),
        ),
    ),
    ".": (((2, 0), (2, 0.01)),),
    ",": (((2, 0.3), (1.4, -1.2)),),
    ":": (((2, 0), (2, 0.01)), ((2, 3), (2, 3.01))),
    "-": (((0.8, 3), (3.2, 3)),),
    "+": (((0.5, 3), (3.5, 3)), ((2, 1.5), (2, 4.5))),
    "/": (((0.5, -1), (3.5, 7)),),
    "(": (((3, 7), (2, 5.5), (2, 0.5), (3, -1)),),
    ")": (((1, 7), (2, 5.5), (2, 0.5), (1, -1)),),
    "%": (
        ((0, 0), (4, 6)),
        ((0, 6), (1, 6), (1, 5), (0, 5), (0, 6)),
        ((3, 1), (4, 1), (4, 0), (3, 0), (3, 1)),
    ),
    "×": (((0.8, 1.2), (3.2, 3.6)), ((0.8, 3.6), (3.2, 1.2))),
    "I": (((2, 0), (2, 6)), ((1, 0), (3, 0)), ((1, 6), (3, 6))),
    "N": (((0, 0), (0, 6), (4, 0), (4, 6)),),
    "a": (
        ((1, 4), (3, 4), (4, 3), (4, 0)),
        ((4, 2.4), (1, 2.4), (0, 1.8), (0, 0.8), (1, 0), (3, 0), (4, 1)),
    ),
    "b": (((0, 6), (0, 0), (3, 0), (4, 1), (4, 3), (3, 4), (0, 4)),),
    "c": (((4, 4), (1, 4), (0, 3), (0, 1), (1, 0), (4, 0)),),
    "d": (((4, 6), (4, 0), (1, 0), (0, 1), (0, 3), (1, 4), (4, 4)),),
    "e": (((0, 2), (4, 2), (4, 3), (3, 4), (1, 4), (0, 3), (0, 1), (1, 0), (4, 0)),),
    "f": (((4, 6), (3, 6), (2, 5), (2, 0)), ((0.5, 4), (3.5, 4))),
    "g": (((4, 4), (4, -1), (3, -2), (0.5, -2)), ((4, 4), (1, 4), (0, 3), (0, 1), (1, 0), (4, 0))),
    "h": (((0, 6), (0, 0)), ((0, 4), (3, 4), (4, 3), (4, 0))),
    "i": (((2, 0), (2, 4)), ((2, 5.5), (2, 5.51))),
    "j": (((3, 4), (3, -1), (2, -2), (1, -2)), ((3, 5.5), (3, 5.51))),
    "k": (((0, 6), (0, 0)), ((4, 4), (0, 1.5)), ((1.5, 2.4), (4, 0))),
    "l": (((2, 6), (2, 1), (3, 0)),),
    "m": (((0, 0), (0, 4)), ((0, 3), (1, 4), (2, 3), (2, 0)), ((2, 3), (3, 4), (4, 3), (4, 0))),
    "n": (((0, 0), (0, 4)), ((0, 3), (1, 4), (3, 4), (4, 3), (4, 0))),
    "o": (((1, 0), (3, 0), (4, 1), (4, 3), (3, 4), (1, 4), (0, 3), (0, 1), (1, 0)),),
    "p": (((0, -2), (0, 4)), ((0, 4), (3, 4), (4, 3), (4, 1), (3, 0), (0, 0))),
    "q": (((4, -2), (4, 4)), ((4, 4), (1, 4), (0, 3), (0, 1), (1, 0), (4, 0))),
    "r": (((0, 0), (0, 4)), ((0, 2.5), (1.5, 4), (4, 4))),
    "s": (((4, 4), (1, 4), (0, 3.2), (1, 2.2), (3, 1.8), (4, 0.8), (3, 0), (0, 0)),),
    "t": (((2, 6), (2, 1), (3, 0), (4, 0)), ((0.5, 4), (3.5, 4))),
    "u": (((0, 4), (0, 1), (1, 0), (3, 0), (4, 1)), ((4, 4), (4, 0))),
    "v": (((0, 4), (2, 0), (4, 4)),),
    "w": (((0, 4), (1, 0), (2, 3), (3, 0), (4, 4)),),
    "x": (((0, 4), (4, 0)), ((0, 0), (4, 4))),
    "y": (((0, 4), (2, 0)), ((4, 4), (1, -2))),
    "z": (((0, 4), (4, 4), (0, 0), (4, 0)),),
}
# Advance of a glyph in grid units (glyph width 4 plus the gap); punctuation is narrower.
ADVANCE = 5.6
NARROW = {".": 3.2, ",": 3.2, ":": 3.2, "i": 3.2, "l": 4.0, "1": 4.6, " ": 3.6}
_SHIFT = {".": -0.8, ",": -0.8, ":": -0.8, "i": -0.8, "l": -0.8}


def width(text: str, size: float) -> float:
    """Width of ``text`` drawn with capitals ``size`` high."""
    return sum(NARROW.get(ch, ADVANCE) for ch in text) * size / 6.0 - (
        (ADVANCE - 4.0) * size / 6.0 if text else 0.0
    )


def text_path(text: str, x: float, y: float, size: float, anchor: str = "start") -> str:
    """Path data drawing ``text`` with its baseline at ``y`` (pixels), in tenths of a pixel;
    ``anchor`` is start, middle or end. Characters without a glyph are drawn as a gap (only the
    plots' own text is drawn)."""
    if anchor != "start":
        w = width(text, size)
        x -= w / 2 if anchor == "middle" else w
    strokes = _strokes(text, size)
    if not strokes:
        return ""
    return f"M{round(x * 10)} {round(y * 10)}{strokes}".replace(" -", "-")


@lru_cache(maxsize=4096)
def _strokes(text: str, size: float) -> str:
    """The strokes of ``text`` in relative moves from its start: one string serves wherever the
    same label is drawn (tick numbers repeat from figure to figure)."""
    k = size / 6.0
    out = []
    pen = 0.0
    cx = cy = 0  # where the previous stroke ended, in tenths of a pixel
    for ch in text:
        left = pen + _SHIFT.get(ch, 0.0) * k
        for line in GLYPHS.get(ch, ()):
            xs = [round((left + gx * k) * 10) for gx, _ in line]
            ys = [round(-gy * k * 10) for _, gy in line]
            moves = " ".join(
                f"{xs[i] - xs[i - 1]} {ys[i] - ys[i - 1]}" for i in range(1, len(line))
            )
            out.append(f"m{xs[0] - cx} {ys[0] - cy}l{moves}")
            cx, cy = xs[-1], ys[-1]
        pen += NARROW.get(ch, ADVANCE) * k
    # The first move is relative to the start point the caller writes with M.
    return "".join(out)
