"""Reading and writing rosbag2 directories (mcap or sqlite3) as raw CDR bytes, on top of `rosbags`.

Nothing here decodes a message: play and record move bytes, so a bag written by `ros2 bag record` on a robot
(Humble metadata version 5/6, Jazzy 8/9) replays exactly as recorded, whatever a strict decoder thinks of it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.interfaces import Connection, ConnectionExtRosbag2, Qos
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

from gr00t_npu_node.bag.typedefs import MessageDefinitions

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
    """A bag that cannot be opened or written; the message names the path and the fix."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    offers: tuple[Qos, ...]
    count: int


class BagReader:
    """A rosbag2 directory opened for raw reading (use as a context manager)."""

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
        self._connections: dict[str, list[Connection]] = {}
        for connection in self._reader.connections:
            self._connections.setdefault(connection.topic, []).append(connection)
        self.topics: dict[str, TopicInfo] = {}
        for name, connections in self._connections.items():
            types = {c.msgtype for c in connections}
            if len(types) != 1:
                raise BagError(f"{self.path}: topic {name} was recorded with several types {sorted(types)}")
            offers = tuple(q for c in connections if isinstance(c.ext, ConnectionExtRosbag2)
                           for q in c.ext.offered_qos_profiles)
            self.topics[name] = TopicInfo(name, types.pop(), offers, sum(c.msgcount for c in connections))

    @property
    def start_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_ns(self) -> int:
        return self._reader.end_time

    @property
    def custom_data(self) -> dict[str, str]:
        return dict(self._reader.storage.metadata.custom or {})

    def messages(self, topics: Iterable[str] | None = None,
                 start_ns: int | None = None) -> Iterator[tuple[str, int, bytes]]:
        """(topic, receive time in ns, CDR bytes) in time order."""
        wanted = list(self.topics) if topics is None else list(topics)
        if unknown := [t for t in wanted if t not in self.topics]:
            raise BagError(f"{self.path} has no topics {unknown}; it has {sorted(self.topics)}")
        connections = [c for t in wanted for c in self._connections[t]]
        if not connections:
            return
        for connection, timestamp, data in self._reader.messages(connections, start=start_ns):
            yield connection.topic, timestamp, bytes(data)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


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
