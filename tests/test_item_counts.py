"""An item's counts, kept flat while it is in flight, add up as per-stage counts did.

The runner keeps one :class:`ItemCounts` per corpus item (two objects) instead of a
:class:`StageCounts` per stage (two objects per stage), because an item holds its
counts across every model request and the garbage collector traverses them. What
reaches the totals (the store's, the run's live figures) must be what adding one
``StageCounts`` per stage name gave: the same names in the same order, the same
values of the same types, the same rules in the same order.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gemlib.pipeline.accounting import ItemCounts, StageCounts, add_counts

# A pipeline's stage names: a name may come twice (one window, one set of counts).
pipelines = st.lists(
    st.sampled_from(["segmenter", "rule_validator", "llm_judge", "ünïcode", ""]),
    min_size=1,
    max_size=6,
)
# One call of a stage: how long it took, whether it failed, the rules of the
# rejections it returned and how many items it emitted.
calls = st.tuples(
    st.floats(min_value=0, max_value=1e3, allow_nan=False),
    st.booleans(),
    st.lists(st.sampled_from(["exception", "no_result", "r1", "ü"]), max_size=3),
    st.integers(min_value=0, max_value=3),
)


def _old(
    stages: list[str], walk: list[tuple[int, tuple[float, bool, list[str], int]]]
) -> dict[str, StageCounts]:
    """An item's counts the way the runner took them before ItemCounts."""
    counts = {name: StageCounts() for name in stages}
    for index, (seconds, failed, rules, emitted) in walk:
        stats = counts[stages[index]]
        stats.received += 1
        if failed:
            stats.errors += 1
        stats.seconds += seconds
        for rule in rules:
            stats.rejected += 1
            stats.rejections_by_rule[rule] = stats.rejections_by_rule.get(rule, 0) + 1
        stats.emitted += emitted
    return counts


def _new(
    stages: list[str], walk: list[tuple[int, tuple[float, bool, list[str], int]]]
) -> ItemCounts:
    names = tuple(dict.fromkeys(stages))
    counts = ItemCounts(names)
    figures = counts.figures
    for index, (seconds, failed, rules, emitted) in walk:
        at = 5 * names.index(stages[index])
        figures[at] += 1
        if failed:
            figures[at + 3] += 1
        figures[at + 4] += seconds
        for rule in rules:
            counts.reject(at, rule)
        figures[at + 1] += emitted
    return counts


def _dumped(total: dict[str, StageCounts]) -> str:
    return json.dumps({name: c.figures() for name, c in total.items()})


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_item_counts_add_up_as_stage_counts_did(data: st.DataObject) -> None:
    stages = data.draw(pipelines)
    visits = st.tuples(st.integers(min_value=0, max_value=len(stages) - 1), calls)
    items = data.draw(st.lists(st.lists(visits, max_size=8), max_size=6))
    old_total: dict[str, StageCounts] = {}
    new_total: dict[str, StageCounts] = {}
    for walk in items:
        add_counts(old_total, _old(stages, walk))
        _new(stages, walk).add_to(new_total)
        assert _dumped(new_total) == _dumped(old_total)
    assert [type(v) for c in new_total.values() for v in c.figures().values()] == [
        type(v) for c in old_total.values() for v in c.figures().values()
    ]


def test_an_untouched_item_adds_every_stage_name_in_order() -> None:
    total: dict[str, StageCounts] = {"llm_judge": StageCounts()}
    ItemCounts(("segmenter", "llm_judge", "rule_validator")).add_to(total)
    assert list(total) == ["llm_judge", "segmenter", "rule_validator"]
    assert _dumped(total) == _dumped(
        {n: StageCounts() for n in ("llm_judge", "segmenter", "rule_validator")}
    )
