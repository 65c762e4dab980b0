"""Random autograd programs under PyTorch and remotegrad's embedded engine (see difftest.py).

    pytest tests/differential                                   # CI size (~520 programs)
    REMOTEGRAD_DIFF_EXAMPLES=5000 pytest tests/differential     # nightly size
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from difftest import LOSS_OPS, VIEW_OPS, check, examples, programs

pytestmark = pytest.mark.usefixtures("embedded")


def _settings(n: int):
    # derandomized and without an example database: the same programs on every run
    return settings(max_examples=examples(n), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


@_settings(250)
@given(programs())
def test_programs_match_pytorch(prog):
    check(prog)


@_settings(80)
@given(programs(ops=LOSS_OPS))
def test_loss_programs_match_pytorch(prog):
    check(prog)


@_settings(70)
@given(programs(grad=3, max_instrs=5))
def test_second_order_programs_match_pytorch(prog):
    check(prog)


@_settings(120)
@given(programs(ops=VIEW_OPS))
def test_in_place_through_views_matches_pytorch(prog):
    check(prog)
