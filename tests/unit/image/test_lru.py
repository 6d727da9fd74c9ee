from __future__ import annotations

import threading

import pytest

from ocirt.image.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "b" is now the least recently used
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)
    assert len(lru) == 2


def test_put_replaces_and_pop_forgets() -> None:
    lru: Lru[str, int] = Lru(4)
    lru.put("a", 1)
    lru.put("a", 2)
    assert lru.get("a") == 2
    assert len(lru) == 1
    lru.pop("a")
    lru.pop("absent")
    assert lru.get("a") is None
    assert len(lru) == 0


def test_capacity_must_hold_an_entry() -> None:
    with pytest.raises(ValueError):
        Lru[str, int](0)


def test_concurrent_use_keeps_the_bound_and_the_values() -> None:
    lru: Lru[int, int] = Lru(8)
    wrong: list[tuple[int, int | None]] = []

    def work(offset: int) -> None:
        for i in range(2000):
            key = (i + offset) % 32
            lru.put(key, key * 10)
            got = lru.get(key)
            if got not in (None, key * 10):
                wrong.append((key, got))
            if i % 7 == 0:
                lru.pop(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(lru) <= 8
