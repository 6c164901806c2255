# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Message classes and definitions by type name ("pkg/msg/Name"), for writing a bag's connection records.

Definitions come from rosbags' Jazzy type store; a type it does not know (a robot's custom message) is described
from the installed rclpy class, so recording never needs anything but the message package itself.
"""
from __future__ import annotations

import importlib
import re

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.interfaces import Nodetype
from rosbags.typesys.store import Typestore

# rclpy's IDL field types that are spelled differently in .msg files.
_IDL_TO_MSG = {"boolean": "bool", "octet": "byte", "float": "float32", "double": "float64"}


def message_class(msgtype: str) -> type:
    """The rclpy class of "pkg/msg/Name"; the error says which package to install."""
    package, kind, name = _split(msgtype)
    try:
        module = importlib.import_module(f"{package}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError):
        raise LookupError(f"message type {msgtype} is not installed: install its package ({package}, e.g. "
                          f"ros-jazzy-{package.replace('_', '-')}) or leave the topic out") from None


def _split(msgtype: str) -> tuple[str, str, str]:
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad message type name {msgtype!r}; expected pkg/msg/Name")
    return parts[0], parts[1], parts[2]


def _msg_field_type(idl: str) -> str:
    if match := re.fullmatch(r"sequence<(.+?)(?:, (\d+))?>", idl):
        inner, bound = match.groups()
        return f"{_msg_field_type(inner)}[{'<=' + bound if bound else ''}]"
    if match := re.fullmatch(r"(.+)\[(\d+)\]", idl):
        return f"{_msg_field_type(match.group(1))}[{match.group(2)}]"
    return _IDL_TO_MSG.get(idl, idl)


class MessageDefinitions:
    """Definition text and RIHS01 hash per type, backed by a private copy of the Jazzy type store."""

    def __init__(self) -> None:
        self._store: Typestore = get_typestore(Stores.ROS2_JAZZY)

    def definition(self, msgtype: str) -> tuple[str, str]:
        package, kind, name = _split(msgtype)
        full = f"{package}/{kind}/{name}"
        self._ensure_known(full)
        text, _ = self._store.generate_msgdef(full, ros_version=2)
        return text, self._store.hash_rihs01(full)

    def _ensure_known(self, msgtype: str) -> None:
        if msgtype in self._store.fielddefs:
            return
        fields = message_class(msgtype).get_fields_and_field_types()
        text = "\n".join(f"{_msg_field_type(kind)} {field}" for field, kind in fields.items())
        types = get_types_from_msg(text, msgtype)
        for _, field_type in types[msgtype][1]:
            if nested := _named_type(field_type):
                self._ensure_known(nested)
        self._store.register(types)


def _named_type(field_type: tuple) -> str | None:
    """The message type a field refers to (directly or as array/sequence element), None for a base type."""
    node, spec = field_type
    if node == Nodetype.NAME:
        return spec
    if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return _named_type(spec[0])
    return None
