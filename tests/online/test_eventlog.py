"""The write-ahead event log: durable appends, group commit, torn tails, corruption, one
writer at a time."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.online.eventlog import EventLog, EventLogError, is_open, last_event, read_events


def test_events_are_numbered_in_order_across_segments(tmp_path: Path) -> None:
    with EventLog(tmp_path, segment_events=3) as log:
        assert log.append([b"1", b"2"]) == 2
        assert log.append([b"3", b"4", b"5", b"6", b"7"]) == 7
    assert [p.name[-10:] for p in sorted(tmp_path.glob("*.events"))] == \
        ["001.events", "004.events", "007.events"]
    assert [seq for seq, _ in read_events(tmp_path)] == list(range(1, 8))
    assert [payload for _, payload in read_events(tmp_path, after=5)] == [b"6", b"7"]
    assert last_event(tmp_path) == 7


def test_appends_from_many_threads_are_all_durable_and_numbered_once(tmp_path: Path) -> None:
    seen: list[int] = []
    with EventLog(tmp_path, segment_events=50) as log:
        def writer(n: int) -> None:
            for i in range(20):
                seen.append(log.append([b"%d-%d" % (n, i)]))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(seen) == list(range(1, 161))
    assert [seq for seq, _ in read_events(tmp_path)] == list(range(1, 161))


def test_a_torn_last_line_is_cut_off_when_the_log_reopens(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append([b'{"a": 1}', b'{"a": 2}'])
    segment = next(tmp_path.glob("*.events"))
    with segment.open("ab") as handle:
        handle.write(b'3\t0000')  # a crash in the middle of a write
    assert last_event(tmp_path) == 2
    with EventLog(tmp_path) as log:
        assert log.last_seq == 2
        assert log.append([b'{"a": 3}']) == 3
    assert [p for _, p in read_events(tmp_path)][-1] == b'{"a": 3}'


def test_a_corrupted_line_inside_the_log_is_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append([b'{"a": 1}', b'{"a": 2}', b'{"a": 3}'])
    segment = next(tmp_path.glob("*.events"))
    segment.write_bytes(segment.read_bytes().replace(b'{"a": 2}', b'{"a": 9}'))
    with pytest.raises(EventLogError, match="line 2 is corrupted"):
        list(read_events(tmp_path))
    with pytest.raises(EventLogError, match="line 2 is corrupted"):
        EventLog(tmp_path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with EventLog(tmp_path):
        assert is_open(tmp_path)
        with pytest.raises(EventLogError, match="open for writing in another process"):
            EventLog(tmp_path)
    assert not is_open(tmp_path)


def test_a_removed_segment_is_a_gap_not_a_shorter_log(tmp_path: Path) -> None:
    with EventLog(tmp_path, segment_events=2) as log:
        log.append([b"1", b"2", b"3", b"4", b"5"])
    (tmp_path / f"{3:020d}.events").unlink()
    assert [seq for seq, _ in read_events(tmp_path, after=4)] == [5]
    with pytest.raises(EventLogError, match=r"events 3\.\.4 are missing"):
        list(read_events(tmp_path, after=1))


def test_a_closed_log_and_a_payload_of_two_lines_are_refused(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    with pytest.raises(ValueError, match="must be one line"):
        log.append([b'{"a":\n1}'])
    log.close()
    with pytest.raises(EventLogError, match="the event log is closed"):
        log.append([b"{}"])
    assert last_event(tmp_path) == 0


@settings(max_examples=40)
@given(cut=st.integers(min_value=0, max_value=1_000_000))
def test_a_log_cut_at_any_byte_reopens_as_the_events_written_whole(cut: int) -> None:
    """kill -9 at any moment leaves some prefix of the bytes written: reopening keeps exactly
    the events whose line is complete, and appends after them."""
    payloads = [b'{"event": %d, "text": "%s"}' % (i, b"x" * (i % 7)) for i in range(1, 301)]
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        with EventLog(directory, segment_events=120) as log:
            log.append(payloads)
        segments = sorted(directory.glob("*.events"))
        sizes = [p.stat().st_size for p in segments]
        cut %= sum(sizes) + 1
        for path, size in zip(segments, sizes, strict=True):  # the prefix a crash would leave
            keep = max(0, min(size, cut))
            cut -= size
            if keep == 0 and path != segments[0]:
                path.unlink()
            else:
                with path.open("rb+") as handle:
                    handle.truncate(keep)
        whole = sum(p.read_bytes().count(b"\n") for p in directory.glob("*.events"))
        with EventLog(directory, segment_events=120) as log:
            assert log.last_seq == whole
            assert log.append([b'{"after": true}']) == whole + 1
        kept = [payload for _, payload in read_events(directory)]
        assert kept == [*payloads[:whole], b'{"after": true}']
