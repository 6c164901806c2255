"""`gr00t-npu-bag`: convert a LeRobot data set to rosbag2, make the synthetic demo bag, play, record, evaluate."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .bagio import STORAGES, BagError
from .episode import DatasetError
from .layout import Topics, load_joint_layout


def _add_topic_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Topics()
    parser.add_argument("--camera-topic", default=defaults.camera)
    parser.add_argument("--joint-states-topic", default=defaults.joint_states)
    parser.add_argument("--instruction-topic", default=defaults.instruction)
    parser.add_argument("--recorded-action-topic", default=defaults.recorded_action)


def _topics(args: argparse.Namespace) -> Topics:
    return Topics(args.camera_topic, args.joint_states_topic, args.instruction_topic, args.recorded_action_topic)


def _parse_remap(pairs: list[str]) -> dict[str, str]:
    remap = {}
    for pair in pairs:
        source, sep, target = pair.partition(":=")
        if not sep or not source or not target:
            raise ValueError(f"bad remap {pair!r}; write FROM:=TO, e.g. /camera/image_raw:=/head/image")
        remap[source] = target
    return remap


def _convert(args: argparse.Namespace) -> int:
    from .convert import convert_dataset

    results = convert_dataset(args.dataset, args.out_dir, load_joint_layout(args.config), episodes=args.episodes,
                              max_seconds=args.max_seconds, topics=_topics(args), storage=args.storage,
                              compress=args.compress, progress=_progress(args))
    for result in results:
        print(f"{result.path}: {result.frames} frames, {sum(result.counts.values())} messages "
              f"in {result.seconds:.2f} s")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from .synth import write_synthetic_bag

    result = write_synthetic_bag(args.out, load_joint_layout(args.config), seconds=args.seconds,
                                 topics=_topics(args), storage=args.storage)
    print(f"{result.path}: {result.frames} synthetic frames, {sum(result.counts.values())} messages")
    return 0


def _play(args: argparse.Namespace) -> int:
    from .play import play_bag

    result = play_bag(args.bag, rate=args.rate, loop=args.loop, topics=args.topics, remap=_parse_remap(args.remap),
                      start_offset=args.start_offset, clock_hz=args.clock, wait_for=args.wait_for,
                      wait_timeout=args.wait_timeout)
    for topic, count in result.counts.items():
        print(f"{topic}: {count} messages")
    print(f"played in {result.wall_seconds:.2f} s, worst lag {result.max_lag_ms:.1f} ms")
    if result.unacked:
        print(f"not acknowledged by every subscriber: {result.unacked}", file=sys.stderr)
    return 0


def _record(args: argparse.Namespace) -> int:
    from .record import record_bag

    if not args.topics and not args.all:
        raise ValueError("name the topics to record (--topics T ...) or record everything with --all")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    counts = record_bag(args.out, topics=None if args.all else args.topics, storage=args.storage,
                        compress=args.compress, use_sim_time=args.use_sim_time, stop=stop)
    for topic, count in counts.items():
        print(f"{topic}: {count} messages")
    print(f"{args.out}: {sum(counts.values())} messages")
    return 0


def _progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else args.progress


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gr00t-npu-bag", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="LeRobot data set -> one rosbag2 per episode")
    convert.add_argument("dataset", type=Path, help="data set directory (meta/, data/, videos/)")
    convert.add_argument("out_dir", type=Path, help="where the episode_<index> bags go")
    convert.add_argument("--episodes", type=int, nargs="+", help="episode indices (default: all)")
    convert.add_argument("--max-seconds", type=float, help="only the first S seconds of each episode")
    convert.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    convert.add_argument("--compress", action="store_true", help="zstd (mcap chunks, sqlite3 messages)")
    convert.add_argument("--config", type=Path, help="node parameter file with joint names (default: gr1.yaml)")
    convert.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    _add_topic_flags(convert)
    convert.set_defaults(run=_convert)

    synth = commands.add_parser("synth", help="write the small synthetic demo bag")
    synth.add_argument("out", type=Path)
    synth.add_argument("--seconds", type=float, default=4.0)
    synth.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    synth.add_argument("--config", type=Path)
    _add_topic_flags(synth)
    synth.set_defaults(run=_synth)

    play = commands.add_parser("play", help="publish a bag at its recorded timing")
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=float, default=1.0)
    play.add_argument("--loop", action="store_true")
    play.add_argument("--topics", nargs="+", help="play only these topics")
    play.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO")
    play.add_argument("--start-offset", type=float, default=0.0, help="skip the first S seconds")
    play.add_argument("--clock", type=float, metavar="HZ", help="publish /clock at HZ (for use_sim_time nodes)")
    play.add_argument("--wait-for", nargs="+", metavar="TOPIC",
                      help="topics that need a subscriber before play starts (default: all but scoring topics)")
    play.add_argument("--wait-timeout", type=float, default=10.0)
    play.set_defaults(run=_play)

    record = commands.add_parser("record", help="record topics to a bag until Ctrl+C")
    record.add_argument("out", type=Path)
    record.add_argument("--topics", nargs="+")
    record.add_argument("--all", action="store_true", help="record every topic that appears")
    record.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    record.add_argument("--compress", action="store_true")
    record.add_argument("--use-sim-time", action="store_true", help="receive times from /clock")
    record.set_defaults(run=_record)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (BagError, DatasetError, ValueError, LookupError, FileNotFoundError) as err:
        print(f"gr00t-npu-bag {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
