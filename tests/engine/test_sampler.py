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


def test_global_batches_do_not_depend_on_the_number_of_processes():
    size, batch, world, steps = 7, 3, 2, 5  # 7 is odd: global batches straddle epochs
    single = take(InfiniteSampler(size, seed=4), batch * world * steps)
    ranks = [take(InfiniteSampler(size, seed=4, rank=r, world=world), batch * steps) for r in range(world)]
    for s in range(steps):
        union = sorted(i for r in ranks for i in r[s * batch:(s + 1) * batch])
        assert union == sorted(single[s * batch * world:(s + 1) * batch * world]), s


def test_distributed_resume_continues_the_global_stream():
    world, consumed = 3, 12  # e.g. 2 steps of 2 clips on each of 3 processes
    for r in range(world):
        full = take(InfiniteSampler(5, seed=1, rank=r, world=world), 10)
        assert take(InfiniteSampler(5, seed=1, rank=r, world=world, start=consumed), 6) == full[consumed // world:]
