"""C/C++ literals for generated headers, and the parser that reads a byte array back.

Why a parser: the only proof that ``model_data.cc`` holds the model is to read the bytes back
out of the generated text and compare them with the .tflite, which the tests do.
"""

from __future__ import annotations

import re

import numpy as np


def c_float(value: float) -> str:
    """A float32 as the shortest C literal that round-trips (``0.5847029f``)."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"cannot write {value!r} as a C float literal")
    if v == 0:
        return "-0.0f" if np.signbit(v) else "0.0f"
    if 1e-4 <= abs(v) < 1e7:
        text = np.format_float_positional(v, unique=True, trim="0")
    else:
        text = np.format_float_scientific(v, unique=True, trim="0")
    return text + "f"


def c_string(text: str) -> str:
    """A double-quoted C string literal (labels are ASCII words, but quote defensively)."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


def comment_safe(text: str) -> str:
    """Text that cannot end a ``/* */`` comment early."""
    return text.replace("*/", "* /")


def byte_rows(data: bytes, per_line: int = 12, indent: str = "    ") -> str:
    """``0x1c, 0x00, ...`` rows for an initializer, ``per_line`` bytes per row."""
    rows = []
    for i in range(0, len(data), per_line):
        rows.append(indent + ", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) + ",")
    return "\n".join(rows)


def int_rows(values: np.ndarray, per_line: int = 16, indent: str = "    ") -> str:
    """Decimal integer rows for an initializer (int8/int16 data such as golden vectors)."""
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    rows = []
    for i in range(0, len(flat), per_line):
        rows.append(indent + ", ".join(flat[i:i + per_line]) + ",")
    return "\n".join(rows)


_ARRAY_RE = r"\b{name}\s*\[\s*\d*\s*\]\s*=\s*\{{(?P<body>[^}}]*)\}}\s*;"
_LEN_RE = r"\b{name}\s*=\s*(?P<value>\d+)u?\s*;"


def parse_byte_array(text: str, name: str = "g_model_data",
                     len_name: str | None = "g_model_data_len") -> bytes:
    """The bytes of the array ``name`` initialised in C source ``text``.

    Accepts hex or decimal elements and comments between them. If ``len_name`` is given the
    source must also define that length constant, and it must equal the element count; a
    mismatch means the generator (or a hand edit) broke the file.
    """
    m = re.search(_ARRAY_RE.format(name=re.escape(name)), text)
    if m is None:
        raise ValueError(f"no initialised array {name}[] found")
    body = re.sub(r"/\*.*?\*/|//[^\n]*", " ", m.group("body"), flags=re.S)
    tokens = [t.strip() for t in body.split(",") if t.strip()]
    values = [int(t, 0) for t in tokens]
    if any(not 0 <= v <= 255 for v in values):
        raise ValueError(f"{name}[] holds a value outside 0..255")
    data = bytes(values)
    if len_name is not None:
        lm = re.search(_LEN_RE.format(name=re.escape(len_name)), text)
        if lm is None:
            raise ValueError(f"no definition of {len_name} found")
        if int(lm.group("value")) != len(data):
            raise ValueError(f"{len_name} = {lm.group('value')} but {name}[] has "
                             f"{len(data)} bytes")
    return data


def parse_int_array(text: str, name: str) -> np.ndarray:
    """Values of the integer array ``name`` initialised in C source ``text`` (e.g. golden.h)."""
    m = re.search(rf"\b{re.escape(name)}\s*\[[^\]]*\][^=;]*=\s*\{{(?P<body>[^}}]*)\}}\s*;", text)
    if m is None:
        raise ValueError(f"no initialised array {name}[] found")
    body = re.sub(r"/\*.*?\*/|//[^\n]*", " ", m.group("body"), flags=re.S)
    return np.array([int(t, 0) for t in body.split(",") if t.strip()], dtype=np.int64)
