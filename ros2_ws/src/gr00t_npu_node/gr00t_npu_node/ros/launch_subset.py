# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The part of the `launch` / `launch_ros` API that launch/gr00t_gr1.launch.py uses, for machines where those
packages cannot be installed (the pip-installed ROS 2 stack). `installed()` puts these classes under the real
module names only while a launch file is loaded, and only when the real packages are not importable.

Semantics follow launch_ros: a parameter dict is written to a temporary parameter file; its string values
(after substitution) are parsed as YAML unless wrapped in `ParameterValue(..., value_type=str)`; the node is
named with `-r __node:=`, namespaced with `-r __ns:=` and remapped with `-r from:=to`.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import yaml
from ament_index_python.packages import get_package_prefix


@dataclass
class LaunchContext:
    launch_configurations: dict[str, str]


class LaunchConfiguration:
    def __init__(self, variable_name: str, default: Optional[str] = None):
        self.variable_name = variable_name
        self.default = default

    def perform(self, context: LaunchContext) -> str:
        value = context.launch_configurations.get(self.variable_name, self.default)
        if value is None:
            raise KeyError(f"launch configuration {self.variable_name!r} is not set; pass {self.variable_name}:=VALUE")
        return value


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: Optional[str] = None, description: str = ""):
        self.name = name
        self.default_value = default_value
        self.description = description


class LaunchDescription:
    def __init__(self, entities: Sequence[Any] = ()):
        self.entities = list(entities)

    def get_launch_arguments(self) -> list[DeclareLaunchArgument]:
        return [e for e in self.entities if isinstance(e, DeclareLaunchArgument)]


class ParameterValue:
    def __init__(self, value: Any, value_type: Optional[type] = None):
        self.value = value
        self.value_type = value_type


class Node:
    def __init__(
        self,
        *,
        package: str,
        executable: str,
        name: Optional[str] = None,
        namespace: Any = None,
        parameters: Sequence[Any] = (),
        remappings: Sequence[tuple[Any, Any]] = (),
        output: str = "screen",
    ):
        """`output` is accepted for compatibility: children always write to the runner's stdout ("screen")."""
        self.package = package
        self.executable = executable
        self.name = name
        self.namespace = namespace
        self.parameters = list(parameters)
        self.remappings = list(remappings)


def substitute(value: Any, context: LaunchContext) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, LaunchConfiguration):
        return value.perform(context)
    if isinstance(value, (list, tuple)):
        return "".join(substitute(v, context) for v in value)
    raise TypeError(f"unsupported substitution {value!r} in the launch file")


def _parameter_value(value: Any, context: LaunchContext) -> Any:
    if isinstance(value, ParameterValue):
        text = substitute(value.value, context)
        if value.value_type is str:
            return text
        parsed = yaml.safe_load(text)
        if value.value_type is not None and not isinstance(parsed, value.value_type):
            raise ValueError(f"{text!r} is not a {value.value_type.__name__} (true/false, a number, ...)")
        return parsed
    if isinstance(value, (str, LaunchConfiguration)):
        return yaml.safe_load(substitute(value, context))
    return value


def resolve_launch_configurations(description: LaunchDescription, cli: dict[str, str]) -> LaunchContext:
    """The launch configurations; `cli` holds only declared arguments (the runner checks them first)."""
    declared = {a.name: a for a in description.get_launch_arguments()}
    values = {}
    for name, argument in declared.items():
        value = cli.get(name, argument.default_value)
        if value is None:
            raise ValueError(f"launch argument {name!r} has no default: pass {name}:=VALUE ({argument.description})")
        values[name] = substitute(value, LaunchContext(values))
    return LaunchContext(values)


def executable_command(package: str, executable: str) -> list[str]:
    """The installed executable (`<prefix>/lib/<package>/<executable>`), else its console-script entry point run
    with this interpreter (pip/editable installs put no file under lib/<package>)."""
    try:
        installed = Path(get_package_prefix(package)) / "lib" / package / executable
        if installed.is_file():
            return [str(installed)]
    except (LookupError, OSError, ValueError):
        pass
    for entry in importlib.metadata.entry_points(group="console_scripts", name=executable):
        module, _, function = entry.value.partition(":")
        return [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]
    raise FileNotFoundError(f"executable {executable!r} of package {package!r} not found; install the package")


def node_command(node: Node, context: LaunchContext, params_dir: Path) -> list[str]:
    """The command line launch_ros would run for `node`; dict parameters are written under `params_dir`."""
    command = executable_command(node.package, node.executable) + ["--ros-args"]
    if node.name:
        command += ["-r", f"__node:={node.name}"]
    namespace = substitute(node.namespace, context) if node.namespace is not None else ""
    if namespace.strip("/"):
        command += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for index, parameters in enumerate(node.parameters):
        if isinstance(parameters, dict):
            values = {name: _parameter_value(v, context) for name, v in parameters.items()}
            path = params_dir / f"{node.name or node.executable}_params_{index}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
        else:
            path = Path(substitute(parameters, context))
            if not path.is_file():
                raise FileNotFoundError(f"parameter file {path} does not exist")
        command += ["--params-file", str(path)]
    for source, target in node.remappings:
        command += ["-r", f"{substitute(source, context)}:={substitute(target, context)}"]
    return command


def is_installed(module: str) -> bool:
    """A real package, not a folder that happens to be called `launch` in the working directory (this package's
    own `launch/` when started from its source folder), which Python would import as a namespace package."""
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin is not None


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Make `launch` and `launch_ros` resolve to this subset while a launch file is imported."""
    names = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
        "launch_ros.parameter_descriptions": {"ParameterValue": ParameterValue},
    }
    clashes = [name for name in ("launch", "launch_ros") if name in sys.modules or is_installed(name)]
    if clashes:
        raise RuntimeError(f"refusing to shadow the installed or imported package(s) {clashes}")
    for name, attributes in names.items():
        module = types.ModuleType(name, f"gr00t_npu_node launch subset: {name}")
        module.__dict__.update(attributes)
        sys.modules[name] = module
    for name in names:
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
