"""The real duplicate data is consistent: every stated relation names a duplicate whose thread
was collected, the halves share no repository, and padding reaches repository scale."""

from __future__ import annotations

from tests.search import real_data


def test_every_relation_has_its_duplicate_and_a_source() -> None:
    collected = {
        (i.repo, i.number)
        for repository in real_data.repositories(real_data.TUNING + real_data.REPORTING)
        for i in repository.issues
    }
    for relation in real_data.relations():
        assert (relation["repo"], relation["duplicate"]) in collected
        assert str(relation["url"]).startswith(f"https://github.com/{relation['repo']}/issues/")
        assert relation["statement"]


def test_halves_are_split_by_repository_and_each_has_duplicates() -> None:
    assert not set(real_data.TUNING) & set(real_data.REPORTING)
    for names in (real_data.TUNING, real_data.REPORTING):
        repositories = real_data.repositories(names)
        assert [r.name for r in repositories] == list(names)
        assert all(len(r.queries) >= 2 for r in repositories)


def test_pools_pad_to_repository_scale_with_the_same_repository_first() -> None:
    [powertoys] = real_data.repositories(("microsoft/PowerToys",))
    own = [real_data.RealIssue("microsoft/PowerToys", 100_000 + n, f"t{n}", "") for n in range(50)]
    other = [real_data.RealIssue(f"o/r{n % 3}", n, f"u{n}", "") for n in range(3000)]

    grown = real_data.padded(powertoys, other + own, 2000)

    assert len(grown.issues) == 2000
    assert grown.issues[: len(powertoys.issues)] == powertoys.issues
    padding = grown.issues[len(powertoys.issues) :]
    assert padding[: len(own)] == own  # the same repository's issues first
    assert {i.repo for i in padding[len(own) : len(own) + 3]} == {"o/r0", "o/r1", "o/r2"}
    assert len({(i.repo, i.number) for i in grown.issues}) == 2000
    assert grown.queries == powertoys.queries
