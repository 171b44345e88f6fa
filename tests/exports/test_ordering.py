import pytest

from exports.errors import DependencyCycle, UnknownDependency
from exports.services.ordering import order_by_dependencies


def test_without_dependencies_the_session_order_is_kept():
    assert order_by_dependencies([3, 1, 2], {}) == [1, 2, 3]


def test_a_ticket_comes_after_the_tickets_it_depends_on():
    assert order_by_dependencies([1, 2, 3, 4], {1: [3], 2: [4, 3]}) == [3, 1, 4, 2]


def test_a_cycle_is_named_in_the_error():
    with pytest.raises(DependencyCycle) as raised:
        order_by_dependencies([1, 2, 3, 4], {2: [3], 3: [4], 4: [2]})
    assert sorted(raised.value.cycle) == [2, 3, 4]
    assert "#" in raised.value.message and raised.value.http_status == 422


def test_a_ticket_depending_on_itself_is_a_cycle():
    with pytest.raises(DependencyCycle) as raised:
        order_by_dependencies([1, 2], {2: [2]})
    assert raised.value.cycle == [2]


def test_a_dependency_outside_the_session_is_refused():
    with pytest.raises(UnknownDependency):
        order_by_dependencies([1, 2], {2: [9]})
