"""STREAMER's event-demarcation rules on hand-made loss sequences, and the settings' checks."""
import pytest

from pyanomaly.networks.meta.streamer import (AverageDemarcation, FixedDemarcation, StreamerSettings,
                                              build_demarcation)
from pyanomaly.registry import DEMARCATIONS, RegistryError, registered_names


def run(rule, losses, buffer_len=1):
    return [rule(x, buffer_len) for x in losses]


def boundaries(rule, losses):
    return [i for i, r in enumerate(run(rule, losses)) if r is not None]


def test_both_rules_are_registered_by_their_mode_names():
    assert {"average", "fixed"} <= set(registered_names(DEMARCATIONS))


def test_average_multiply_fires_on_a_jump_only_and_never_on_the_first_loss():
    rule = AverageDemarcation(window_size=3, modifier_type="multiply", modifier=1.5)
    assert boundaries(rule, [5.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0]) == [4]
    # 1.4 < 1.5 * mean(1, 1, 1): below the modified mean
    assert boundaries(AverageDemarcation(window_size=3, modifier=1.5), [1.0, 1.0, 1.0, 1.4]) == []


def test_average_add_uses_an_offset():
    rule = AverageDemarcation(window_size=4, modifier_type="add", modifier=0.5)
    assert boundaries(rule, [1.0, 1.0, 1.4, 1.7]) == [3]  # 1.4 <= 1 + 0.5; 1.7 > mean(1, 1, 1.4) + 0.5


def test_the_window_forgets_old_losses():
    losses = [10.0, 1.0, 1.0, 1.0, 2.0]
    assert boundaries(AverageDemarcation(window_size=3, modifier=1.5), losses) == [4]   # mean(1, 1, 1)
    assert boundaries(AverageDemarcation(window_size=5, modifier=1.5), losses) == []    # mean(10, 1, 1, 1)


def test_window_scope_event_restarts_the_window_at_a_boundary():
    losses = [1.0, 1.0, 1.0, 4.0, 3.5, 2.0, 1.0]  # a jump, then a model still learning the new scene
    stream = AverageDemarcation(window_size=10, modifier=1.5, window_scope="stream")
    event = AverageDemarcation(window_size=10, modifier=1.5, window_scope="event")
    assert boundaries(stream, losses) == [3, 4]   # 3.5 > 1.5 * mean(1, 1, 1, 4)
    assert boundaries(event, losses) == [3]       # the new event's window starts empty after the jump
    assert list(event.history) == [3.5, 2.0, 1.0]


def test_fixed_threshold():
    rule = FixedDemarcation(loss_threshold=0.5)
    assert boundaries(rule, [0.6, 0.1, 0.5, 0.51, 0.2]) == [0, 3]


@pytest.mark.parametrize("mode", ["average", "fixed"])
def test_force_fixed_buffer_closes_a_full_buffer(mode):
    s = StreamerSettings(demarcation_mode=mode, buffer_size=4, force_fixed_buffer=True, loss_threshold=10.0)
    rule = build_demarcation(s)
    assert [rule(0.1, n) for n in (1, 2, 3, 4)] == [None, None, None, "buffer_full"]
    loose = build_demarcation(StreamerSettings(demarcation_mode=mode, buffer_size=4, loss_threshold=10.0))
    assert [loose(0.1, n) for n in (1, 2, 3, 4, 5)] == [None] * 5


def test_a_loss_boundary_is_named_as_such_even_on_a_full_buffer():
    rule = FixedDemarcation(loss_threshold=0.5, buffer_size=2, force_fixed_buffer=True)
    assert rule(0.9, 2) == "loss"


def test_state_round_trip_continues_identically():
    losses = [1.0, 1.2, 0.9, 3.0, 1.1, 1.0, 2.5, 1.0]
    whole = AverageDemarcation(window_size=3, modifier=1.4)
    expected = run(whole, losses)
    first = AverageDemarcation(window_size=3, modifier=1.4)
    head = run(first, losses[:5])
    second = AverageDemarcation(window_size=3, modifier=1.4)
    second.load_state_dict(first.state_dict())
    assert head + run(second, losses[5:]) == expected


def test_reset_forgets_the_history():
    rule = AverageDemarcation(window_size=3, modifier=1.5)
    run(rule, [1.0, 1.0])
    rule.reset()
    assert rule(100.0, 1) is None  # no history: the first loss of a video never closes an event


def test_bad_settings_name_the_key_and_the_choices():
    with pytest.raises(ValueError, match="modifier_type: unknown value 'times'"):
        AverageDemarcation(modifier_type="times")
    with pytest.raises(ValueError, match=r"distance_mode: unknown value 'cosine'.*'similarity', 'distance'"):
        StreamerSettings(distance_mode="cosine")
    with pytest.raises(ValueError, match="modifier_type: unknown value 'times'"):
        StreamerSettings(modifier_type="times")
    with pytest.raises(ValueError, match="buffer_size: expected a positive integer, got 0"):
        StreamerSettings(buffer_size=0)
    with pytest.raises(ValueError, match="feature_dim .* divisible by n_heads"):
        StreamerSettings(feature_dim=30, n_heads=4)
    with pytest.raises(RegistryError, match="unknown demarcation 'averag'. Did you mean 'average'"):
        build_demarcation(StreamerSettings(demarcation_mode="averag"))
