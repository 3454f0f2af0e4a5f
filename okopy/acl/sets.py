"""Sets of integers as sorted disjoint intervals, and their prefixes.

Every ACL field is a set of values in a universe [0, size): addresses
(2^32), ports (2^16), protocols and TCP flag bytes (2^8), input ports
(2^32), connection states.  A rule allows a set per field; negation is
the complement.  Tries store sets as aligned blocks (prefixes), and the
canonical cover of a set by maximal aligned blocks has the property the
classifier relies on: an aligned block lies inside the set exactly when
it lies inside one of the cover's blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class IntSet:
    """A set of integers in [0, size), as sorted, disjoint, non-adjacent
    closed intervals."""

    size: int
    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, size: int, spans: Iterable[tuple[int, int]]) -> IntSet:
        """The union of closed intervals [lo, hi] (clipped to the universe)."""
        cut = sorted((max(lo, 0), min(hi, size - 1)) for lo, hi in spans)
        merged: list[tuple[int, int]] = []
        for lo, hi in cut:
            if lo > hi:
                continue
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return cls(size, tuple(merged))

    @classmethod
    def everything(cls, size: int) -> IntSet:
        return cls(size, ((0, size - 1),))

    @classmethod
    def values(cls, size: int, values: Iterable[int]) -> IntSet:
        return cls.of(size, ((v, v) for v in values))

    @property
    def empty(self) -> bool:
        return not self.spans

    @property
    def full(self) -> bool:
        return self.spans == ((0, self.size - 1),)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        return any(lo <= value <= hi for lo, hi in self.spans)

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.spans:
            yield from range(lo, hi + 1)

    def count(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.spans)

    def union(self, other: IntSet) -> IntSet:
        return IntSet.of(self.size, self.spans + other.spans)

    def intersect(self, other: IntSet) -> IntSet:
        out: list[tuple[int, int]] = []
        i = j = 0
        a, b = self.spans, other.spans
        while i < len(a) and j < len(b):
            lo = max(a[i][0], b[j][0])
            hi = min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return IntSet(self.size, tuple(out))

    def complement(self) -> IntSet:
        out: list[tuple[int, int]] = []
        nxt = 0
        for lo, hi in self.spans:
            if lo > nxt:
                out.append((nxt, lo - 1))
            nxt = hi + 1
        if nxt < self.size:
            out.append((nxt, self.size - 1))
        return IntSet(self.size, tuple(out))

    def covers(self, lo: int, hi: int) -> bool:
        """Whether [lo, hi] lies inside the set."""
        return any(a <= lo and hi <= b for a, b in self.spans)

    def prefixes(self, bits: int) -> list[tuple[int, int]]:
        """The set's cover by maximal aligned blocks, as (value, prefix
        length) over a 'bits'-bit universe: at most 2 * bits per interval."""
        out: list[tuple[int, int]] = []
        for first, hi in self.spans:
            lo = first
            while lo <= hi:
                # The largest block that starts at lo, is aligned, and fits.
                span = lo & -lo if lo else 1 << bits
                while span > hi - lo + 1:
                    span >>= 1
                out.append((lo, bits - span.bit_length() + 1))
                lo += span
        return out


def block(value: int, plen: int, bits: int) -> tuple[int, int]:
    """The interval [lo, hi] an aligned block (value/plen) covers."""
    span = 1 << (bits - plen)
    lo = value & ~(span - 1)
    return lo, lo + span - 1
