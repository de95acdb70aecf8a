"""The child-process channel: frames, and errors that keep their class across the process boundary."""

from __future__ import annotations

import io

import pytest

from loadgen.errors import LoadgenError, RunError, ScenarioError, UsageError
from loadgen.scaleout.channel import ChildFailed, read_frame, write_frame
from loadgen.store.base import StoreError


def test_frames_round_trip_and_a_cut_frame_is_the_end():
    stream = io.BytesIO()
    write_frame(stream, {"a": (1, 2.5, b"\x00\xff")})
    write_frame(stream, "go")
    data = stream.getvalue()
    replay = io.BytesIO(data)
    assert read_frame(replay) == {"a": (1, 2.5, b"\x00\xff")}
    assert read_frame(replay) == "go"
    with pytest.raises(EOFError):
        read_frame(replay)
    cut = io.BytesIO(data[:-1])  # the writer died in the middle of the second frame
    read_frame(cut)
    with pytest.raises(EOFError):
        read_frame(cut)


@pytest.mark.parametrize("error", [UsageError("bad"), ScenarioError("bad"), RunError("bad"), StoreError("bad")])
def test_a_child_error_keeps_its_class_and_exit_code(error: LoadgenError):
    again = ChildFailed.of(error).error()
    assert type(again) is type(error) and str(again) == "bad" and again.exit_code == error.exit_code


def test_an_error_class_this_process_does_not_know_is_a_run_error():
    again = ChildFailed("SomethingNewError", "it broke").error()
    assert type(again) is RunError and str(again) == "it broke"


@pytest.mark.parametrize("stray", [b"hello from a library\n", b"LGf1\xff\xff\xff\xff", b"\x00\x00\x00\x05"])
def test_bytes_that_are_not_a_frame_are_refused_not_misread(stray: bytes):
    # Found by review: a stray print on a child's stdout was read as a frame length, and
    # every later message was lost without a word (or the reader waited for 4 GiB).
    buf = io.BytesIO()
    buf.write(stray)
    write_frame(buf, {"a": 1})
    buf.seek(0)
    with pytest.raises(ValueError, match="not a loadgen frame"):
        read_frame(buf)
