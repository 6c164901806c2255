# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Reading and writing rosbag2 directories (mcap or sqlite3) as raw CDR bytes, on top of `rosbags`.

Nothing here decodes a message: play and record move bytes, so a bag written by `ros2 bag record` on a robot
(Foxy and Galactic metadata version 4, Humble 5/6, Jazzy 8/9; split, compressed) replays exactly as recorded,
whatever a strict decoder thinks of it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.interfaces import Connection, ConnectionExtRosbag2, Qos
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError
from rosbags.rosbag2.reader import DirectoryReader
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

from gr00t_npu_node.bag.rosbag2.typedefs import MessageDefinitions

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
# The type rosbags gives an mcap channel written without a schema; metadata.yaml still names the real type.
SCHEMALESS = "__schemaless__"


class BagError(RuntimeError):
    """A bag that cannot be opened or written; the message names the path and the fix."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    offers: tuple[Qos, ...]
    count: int


class BagReader:
    """A rosbag2 directory (or a single .mcap/.db3 file) opened for raw reading (use as a context manager).

    Every message of every storage file is read, from the first one, whatever the metadata's `starting_time`
    says (rosbag2 of Galactic and Humble writes the last split file's start there). `topics[t].count` is what
    metadata.yaml lists; opening fails when the files hold another number, and a full read of a topic fails when
    it yields another number, so a bag is never read partially in silence.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is not a rosbag2 directory: it has no metadata.yaml")
        self._reader = Reader(self.path)
        try:
            self._reader.open()
        except (ReaderError, OSError, KeyError, ValueError) as err:
            raise BagError(f"cannot read bag {self.path}: {err}") from None
        try:
            self._index()
        except BagError:
            self._reader.close()
            raise

    def _index(self) -> None:
        listed: dict[str, list[Connection]] = {}
        for connection in self._reader.connections:
            listed.setdefault(connection.topic, []).append(connection)
        storage = self._reader.storage
        self._files = storage.storages if isinstance(storage, DirectoryReader) else [storage]
        # rosbags pairs a file's connections with metadata.yaml's by topic, type, offered QoS and type hash, and
        # silently yields nothing for a file connection that differs in any of them; rosbag2 pairs by topic name.
        # So messages are read through the files' own connections, paired here by topic.
        self._stored: dict[str, list[Connection]] = {}
        for file in self._files:
            for connection in file.connections:
                self._stored.setdefault(connection.topic, []).append(connection)
        if unlisted := sorted(set(self._stored) - set(listed)):
            raise BagError(f"{self.path}: its files hold topics {unlisted} that metadata.yaml does not list; "
                           f"rewrite metadata.yaml from the files with `ros2 bag reindex {self.path}`")
        self.topics: dict[str, TopicInfo] = {}
        for name, connections in listed.items():
            types = {c.msgtype for c in connections}
            stored_types = {c.msgtype for c in self._stored.get(name, ())} - {SCHEMALESS}
            if len(types) != 1 or not stored_types <= types:
                raise BagError(f"{self.path}: topic {name} was recorded with several types "
                               f"{sorted(types | stored_types)}")
            offers = tuple(q for c in connections if isinstance(c.ext, ConnectionExtRosbag2)
                           for q in c.ext.offered_qos_profiles)
            self.topics[name] = TopicInfo(name, types.pop(), offers, sum(c.msgcount for c in connections))
        stored_counts = {t: sum(c.msgcount for c in self._stored.get(t, ())) for t in self.topics}
        if wrong := {t: (i.count, stored_counts[t]) for t, i in self.topics.items() if i.count != stored_counts[t]}:
            raise BagError(f"{self.path}: metadata.yaml and the bag's files disagree on message counts "
                           + _count_list(wrong, "listed", "in the files")
                           + f"; messages were lost while recording or metadata.yaml is stale (`ros2 bag reindex "
                           f"{self.path}` rewrites it from the files)")
        with_messages = [f.metadata for f in self._files if f.metadata.message_count]
        self.message_count = sum(stored_counts.values())
        self.start_ns = min((m.start_time for m in with_messages), default=0)
        self.end_ns = max((m.end_time for m in with_messages), default=0)   # just after the last message

    @property
    def custom_data(self) -> dict[str, str]:
        return dict(self._reader.storage.metadata.custom or {})

    def messages(self, topics: Iterable[str] | None = None,
                 start_ns: int | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(topic, receive time in ns, CDR bytes) in time order, from `start_ns` on (default: the first message).

        Reading a topic from the first message to the end raises BagError at the end if it yielded another count
        than the bag lists.
        """
        wanted = list(self.topics) if topics is None else list(topics)
        if unknown := [t for t in wanted if t not in self.topics]:
            raise BagError(f"{self.path} has no topics {unknown}; it has {sorted(self.topics)}")
        connections = [c for t in wanted for c in self._stored.get(t, ())]
        read = dict.fromkeys(wanted, 0)
        # An empty connection list would make rosbags read every topic.
        if connections:
            try:
                for connection, timestamp, data in self._reader.messages(connections, start=start_ns):
                    read[connection.topic] += 1
                    yield connection.topic, timestamp, bytes(data)
            except ReaderError as err:
                raise BagError(f"cannot read bag {self.path}: {err}") from None
        from_first = start_ns is None or start_ns <= self.start_ns
        if from_first and (short := {t: (self.topics[t].count, n) for t, n in read.items()
                                     if n != self.topics[t].count}):
            raise BagError(f"{self.path}: reading the bag yielded another number of messages than it holds "
                           + _count_list(short, "in the bag", "read")
                           + "; rosbags cannot read its files fully (mcap chunks without message indexes are one "
                           "cause): rewrite it with `ros2 bag convert` and report the bag")

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _count_list(counts: dict[str, tuple[int, int]], first: str, second: str) -> str:
    return ", ".join(f"{topic}: {a} {first}, {b} {second}" for topic, (a, b) in sorted(counts.items()))


class BagWriter:
    """A new rosbag2 directory (metadata version 9, as Jazzy writes) taking raw CDR bytes."""

    def __init__(self, path: Path | str, *, storage: str = "mcap", compress: bool = False) -> None:
        if storage not in STORAGES:
            raise BagError(f"storage {storage!r} is not supported; use one of {sorted(STORAGES)}")
        self.path = Path(path)
        self._definitions = MessageDefinitions()
        try:
            self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
            if compress:
                # mcap compresses whole chunks; sqlite3 can only compress message by message.
                mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
                self._writer.set_compression(mode, CompressionFormat.ZSTD)
            self._writer.open()
        except WriterError as err:
            raise BagError(f"cannot create bag {self.path}: {err} (choose a new path or remove the old bag)") from None
        self.counts: dict[str, int] = {}

    def add_topic(self, name: str, msgtype: str, offers: Sequence[Qos]) -> Connection:
        msgdef, rihs01 = self._definitions.definition(msgtype)
        connection = self._writer.add_connection(name, msgtype, msgdef=msgdef, rihs01=rihs01,
                                                 offered_qos_profiles=list(offers))
        self.counts[name] = 0
        return connection

    def write(self, connection: Connection, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(connection, timestamp_ns, data)
        self.counts[connection.topic] += 1

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.set_custom_data(key, value)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        # Closed on errors too: what was written before the error stays a readable bag.
        self.close()
