import itertools

from pyanomaly.engine.sampler import InfiniteSampler


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_resume_position_reproduces_the_order():
    full = take(InfiniteSampler(7, seed=3), 30)
    for start in (0, 5, 7, 13):
        assert take(InfiniteSampler(7, seed=3, start=start), 30 - start) == full[start:]


def test_epochs_are_permutations_and_ranks_partition():
    s = take(InfiniteSampler(6, seed=0), 12)
    assert sorted(s[:6]) == list(range(6)) and sorted(s[6:]) == list(range(6)) and s[:6] != s[6:]
    a = take(InfiniteSampler(6, seed=0, rank=0, world=2), 3)
    b = take(InfiniteSampler(6, seed=0, rank=1, world=2), 3)
    assert sorted(a + b) == list(range(6))
