"""Numbers as the CLI prints them: ``ByteUnits::format`` and ``format_count`` of the library.

Python's ``format(x, ".2f")`` rounds the exact binary value half to even, as Rust's ``{:.2}``
does, so the text is the CLI's digit for digit.
"""

from typing import Union

_GIB = float(1 << 30)
_MIB = float(1 << 20)


def fmt_bytes(n: int, units: str = "gib") -> str:
    """``12.34 GiB``; values under 0.1 GiB in MiB (``units="gb"``: GB and MB, 10^9 and 10^6)."""
    if n < 0:
        return "-" + fmt_bytes(-n, units)
    big, small, label, small_label = (_GIB, _MIB, "GiB", "MiB") if units == "gib" else (1e9, 1e6, "GB", "MB")
    if n == 0:
        return "0 " + label
    v = float(n) / big
    if v < 0.1:
        return format(float(n) / small, ".2f") + " " + small_label
    return format(v, ".2f") + " " + label


def fmt_count(n: Union[int, float]) -> str:
    """``124.4M``, ``6.74B``: a parameter or token count."""
    v = float(n)
    if v >= 1e15:
        mantissa, exp = format(v, ".2e").split("e")
        return mantissa + "e" + str(int(exp))
    if v >= 1e12:
        return format(v / 1e12, ".2f") + "T"
    if v >= 1e9:
        return format(v / 1e9, ".2f") + "B"
    if v >= 1e6:
        return format(v / 1e6, ".1f") + "M"
    if v >= 1e3:
        return format(v / 1e3, ".1f") + "K"
    return str(int(n))
