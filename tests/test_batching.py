"""Batching without a model: groups, out-of-memory back-off, chunks and read-ahead, with stand-ins for the model."""

from __future__ import annotations

import threading
import warnings

import pytest

from litetext.errors import PromptError
from litetext.pipelines.batching import attempt, chunks, read_ahead, run_grouped


class OutOfMemory(Exception):
    pass


def test_groups_run_in_order_up_to_the_size():
    seen = []
    outputs = run_grouped(list(range(7)), lambda group: seen.append(list(group)) or sum(group), size=3)
    assert seen == [[0, 1, 2], [3, 4, 5], [6]] and outputs == [3, 12, 6]
    assert run_grouped([], lambda group: 1 / 0, size=3) == []


def test_a_group_out_of_memory_is_halved_and_retried_with_a_warning_until_it_fits():
    released = []

    def run(group):
        if len(group) > 2:
            raise OutOfMemory()
        return list(group)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = run_grouped(list(range(8)), run, size=8, out_of_memory=OutOfMemory,
                              release=lambda: released.append(1))
    assert [str(w.message) for w in caught] == ["out of device memory with a batch of 8; retrying as 4 + 4",
                                                "out of device memory with a batch of 4; retrying as 2 + 2",
                                                "out of device memory with a batch of 4; retrying as 2 + 2"]
    assert [x for group in outputs for x in group] == list(range(8))  # every item once, in order
    assert all(len(group) <= 2 for group in outputs) and len(released) == 3


def test_a_single_item_that_does_not_fit_still_raises():
    def run(group):
        raise OutOfMemory()

    with warnings.catch_warnings(), pytest.raises(OutOfMemory):
        warnings.simplefilter("ignore")
        run_grouped([1, 2], run, size=2, out_of_memory=OutOfMemory)


def test_other_errors_are_not_taken_for_out_of_memory():
    with pytest.raises(ZeroDivisionError):
        run_grouped([1, 2], lambda group: 1 / 0, size=2, out_of_memory=OutOfMemory)


def test_chunks_keep_order_and_the_short_tail():
    assert list(chunks(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunks([], 2)) == []


def test_read_ahead_reads_the_next_group_on_another_thread_while_the_caller_works():
    reader_threads, order = set(), []
    second_read = threading.Event()

    def read(group):
        reader_threads.add(threading.get_ident())
        order.append(("read", group))
        if group == 1:
            second_read.set()
        return group * 10

    for value in read_ahead([0, 1, 2], read):
        if value == 0:  # while the caller holds the first group, the second is being read
            assert second_read.wait(5)
        order.append(("used", value))
    assert [v for kind, v in order if kind == "used"] == [0, 10, 20]
    assert threading.get_ident() not in reader_threads


def test_attempt_returns_a_litetext_error_instead_of_raising_it():
    def refuse():
        raise PromptError("no")

    assert isinstance(attempt(refuse), PromptError) and attempt(lambda x: x + 1, 1) == 2
    with pytest.raises(ZeroDivisionError):
        attempt(lambda: 1 / 0)
