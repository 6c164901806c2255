# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Bags laid out exactly as `ros2 bag record` of older distributions writes them, for the compatibility tests.

    write_rosbag2(path, storage, version, topics, files)    metadata version 4 (Foxy, Galactic) or 5/6 (Humble)

`files` holds one message list per storage file, so split bags come out as rosbag2 splits them: every file
declares every topic, files are named `<bag>_<index>.<ext>`, and metadata.yaml lists them in order. metadata.yaml
is emitted the way yaml-cpp writes it (rosbag2's field order; the QoS of versions 4 to 8 as one YAML string of
integers). sqlite3 files get the schema of their distribution (Foxy/Galactic: no schema or metadata table; Humble:
schema version 3 and the metadata table); mcap files are written by rosbags with the same QoS values.
Galactic's recorder set `starting_time` and `duration` to the last split file's (rosbag2 issues 841 and 966):
`galactic_split_times` reproduces that.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.typesys import Stores, get_typestore

from gr00t_npu_node.bag.rosbag2.qos import INFINITE

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # the zstd module rosbags itself reads compressed bags with before Python 3.14
    from backports import zstd

# Infinite deadline, lifespan and lease as Foxy's and Galactic's FastDDS reported them to the recorder.
FOXY_INFINITE = QosTime(2147483647, 4294967295)
HUMBLE_SQLITE_SCHEMA = """
CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL, metadata TEXT NOT NULL);
INSERT INTO schema(schema_version, ros_distro) VALUES (3, 'humble');
"""
SQLITE_SCHEMA = """
CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                    serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, timestamp INTEGER NOT NULL,
                      data BLOB NOT NULL);
CREATE INDEX timestamp_idx ON messages (timestamp ASC);
"""
Topics = dict[str, tuple[str, list[Qos]]]           # topic -> (type, offered QoS)
Messages = list[tuple[str, int, bytes]]             # (topic, receive time ns, CDR bytes)


def recorded_qos(*, latched: bool, infinite: QosTime = INFINITE, lifespan: QosTime | None = None) -> Qos:
    """What the recorder stores for a publisher: history UNKNOWN, depth 0, reliable."""
    durability = QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE
    return Qos(QosHistory.UNKNOWN, 0, QosReliability.RELIABLE, durability, infinite, lifespan or infinite,
               QosLiveliness.AUTOMATIC, infinite, False)


def qos_string(offers: Sequence[Qos]) -> str:
    """rosbag2's QoS serialization up to metadata version 8: yaml-cpp's dump of a list, policies as integers."""
    def duration(name: str, value: QosTime) -> str:
        return f"  {name}:\n    sec: {value.sec}\n    nsec: {value.nsec}"

    return "\n".join(
        f"- history: {q.history.value}\n  depth: {q.depth}\n  reliability: {q.reliability.value}\n"
        f"  durability: {q.durability.value}\n{duration('deadline', q.deadline)}\n{duration('lifespan', q.lifespan)}\n"
        f"  liveliness: {q.liveliness.value}\n{duration('liveliness_lease_duration', q.liveliness_lease_duration)}\n"
        f"  avoid_ros_namespace_conventions: {str(q.avoid_ros_namespace_conventions).lower()}" for q in offers)


def yaml_cpp(node, indent: int = 0) -> str:
    """`node` as yaml-cpp emits it: block style, sequences indented under their key, strings with line breaks
    double-quoted, empty strings as "", None as ~."""
    pad = " " * indent
    lines = []
    for key, value in node.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:\n{yaml_cpp(value, indent + 2)}")
        elif isinstance(value, list):
            items = [yaml_cpp(item, indent + 4).replace(" " * (indent + 4), f"{pad}  - ", 1)
                     if isinstance(item, dict) else f"{pad}  - {_scalar(item)}" for item in value]
            lines.append(f"{pad}{key}:\n" + "\n".join(items))
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(lines)


def _scalar(value) -> str:
    if value is None:
        return "~"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and (not value or "\n" in value):
        return json.dumps(value)
    return str(value)


def write_rosbag2(path: Path, storage: str, version: int, topics: Topics, files: Sequence[Messages], *,
                  compress: bool = False, galactic_split_times: bool = False, message_index: bool = True) -> None:
    """A new bag directory `path` holding `files` (one message list per split file) in the layout of `version`.

    `compress` compresses each file as a whole with zstd, as `ros2 bag record --compression-mode file` does.
    `message_index=False` writes mcap chunks without message indexes, as rosbag2_storage_mcap does with
    `noMessageIndex: true` in its storage configuration.
    """
    if version not in (4, 5, 6):
        raise ValueError(f"metadata version {version}: rosbags writes 8 and 9 itself")
    extension = "mcap" if storage == "mcap" else "db3"
    names = [f"{path.name}_{index}.{extension}" + (".zstd" if compress else "") for index in range(len(files))]
    spans = [(min(t for _, t, _ in m), max(t for _, t, _ in m), len(m)) for m in files]
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    if galactic_split_times:
        first, last = spans[-1][0], spans[-1][1]
    info: dict = {"version": version, "storage_identifier": storage}
    if version == 4:
        info["relative_file_paths"] = names
    info |= {
        "duration": {"nanoseconds": last - first},
        "starting_time": {"nanoseconds_since_epoch": first},
        "message_count": sum(s[2] for s in spans),
        "topics_with_message_count": [
            {"topic_metadata": {"name": topic, "type": msgtype, "serialization_format": "cdr",
                                "offered_qos_profiles": qos_string(offers)},
             "message_count": sum(1 for m in files for t, _, _ in m if t == topic)}
            for topic, (msgtype, offers) in topics.items()],
        "compression_format": "zstd" if compress else "",
        "compression_mode": "FILE" if compress else "",
    }
    if version >= 5:
        info["relative_file_paths"] = names
        info["files"] = [{"path": name, "starting_time": {"nanoseconds_since_epoch": start},
                          "duration": {"nanoseconds": end - start}, "message_count": count}
                         for name, (start, end, count) in zip(names, spans)]
    if version == 6:
        info["custom_data"] = None
    metadata = yaml_cpp({"rosbag2_bagfile_information": info}) + "\n"
    path.mkdir()
    for name, messages in zip(names, files):
        target = path / name.removesuffix(".zstd")
        if storage == "mcap":
            _write_mcap(target, topics, messages, message_index)
        else:
            _write_sqlite(target, topics, messages, version, metadata)
        if compress:
            (path / name).write_bytes(zstd.compress(target.read_bytes()))
            target.unlink()
    (path / "metadata.yaml").write_text(metadata)


def _write_mcap(target: Path, topics: Topics, messages: Messages, message_index: bool) -> None:
    store = get_typestore(Stores.ROS2_JAZZY)
    scratch = target.with_suffix(".writing")
    with pytest.MonkeyPatch.context() as patch:
        if not message_index:
            patch.setattr(McapWriter, "close_chunk", _without_message_index(McapWriter.close_chunk))
        with Writer(scratch, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
            connections = {topic: writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=offers)
                           for topic, (msgtype, offers) in topics.items()}
            for topic, stamp, data in messages:
                writer.write(connections[topic], stamp, data)
    (scratch / f"{scratch.name}.mcap").rename(target)
    shutil.rmtree(scratch)


def _without_message_index(close_chunk):
    """rosbags' chunk writer minus the message indexes: no MessageIndex records, an empty offset map in the chunk
    index (the file's statistics still count every message)."""
    def close(writer: McapWriter) -> None:
        writer.chunk.msgs.clear()
        close_chunk(writer)

    return close


def _write_sqlite(target: Path, topics: Topics, messages: Messages, version: int, metadata: str) -> None:
    database = sqlite3.connect(target)
    database.executescript(SQLITE_SCHEMA + (HUMBLE_SQLITE_SCHEMA if version >= 5 else ""))
    ids = {topic: index + 1 for index, topic in enumerate(topics)}
    database.executemany("INSERT INTO topics VALUES (?, ?, ?, 'cdr', ?)",
                         [(ids[t], t, msgtype, qos_string(offers)) for t, (msgtype, offers) in topics.items()])
    database.executemany("INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)",
                         [(ids[t], stamp, data) for t, stamp, data in messages])
    if version >= 5:
        database.execute("INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)", (version, metadata))
    database.commit()
    database.close()
