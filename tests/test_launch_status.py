"""The launcher's status line (grader/sandbox/launch.py: ``json_text``), written without the ``json`` module.

Every sandbox's first program reports what it achieved as one line of JSON, which the sandbox
reads with ``json.loads`` (grader/sandbox/readback.py: ``read_status``). The launcher writes it with
its own small encoder, so that it does not import ``json`` (and ``re``, ``enum``) at every run.
"""

from __future__ import annotations

import json

import pytest
from fresh_interpreter import modules_loaded
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.sandbox.launch import json_text
from grader.sandbox.sandbox import LAUNCHER

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(plain)
def test_the_status_line_reads_back_as_written(value: object) -> None:
    text = json_text(value)
    assert text.isascii() and "\n" not in text
    assert json.loads(text) == value


@pytest.mark.parametrize(
    "text",
    ['say "hi"\\', "tab\tnew\nline\r\x00\x1f\x7f", "é ü ∑", "\U0001f600 emoji", "\ud800 lone", "\udc00\ud800"],
)
def test_strings_are_escaped_as_json_dumps_escapes_them(text: str) -> None:
    assert json_text(text) == json.dumps(text)
    assert json.loads(json_text({text: [text]})) == {text: [text]}


@pytest.mark.parametrize("value", [1.5, b"bytes", object(), {"set": {1}}])
def test_anything_but_plain_data_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        json_text(value)


def test_the_launcher_imports_neither_json_nor_typing() -> None:
    """What the launcher costs each run is mostly what it imports: a fresh ``python -I -S`` shows it."""
    loaded = modules_loaded(
        f"spec = importlib.util.spec_from_file_location('launch', {str(LAUNCHER)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)",
        setup="import importlib.util",
    )
    assert not loaded & {"json", "re", "typing", "enum", "platform"}, sorted(loaded)
