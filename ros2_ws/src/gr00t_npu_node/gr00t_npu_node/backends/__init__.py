"""Device backends, selected by name: the only place that knows about cpu, cuda and npu."""
from gr00t_npu_node.backends.base import Backend


def get_backend(device: str) -> Backend:
    """The backend for `device`: "cpu" for now; accelerated backends register here."""
    if device == "cpu":
        return Backend()
    raise ValueError(f"unknown device {device!r}: expected one of cpu")


__all__ = ["Backend", "get_backend"]
