# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`gr00t-npu-bag`: convert a LeRobot data set to rosbag2, make the synthetic demo bag, play, record, evaluate."""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from gr00t_npu_node.bag.rosbag2.bagio import STORAGES, BagError
from gr00t_npu_node.bag.evaluation.check import check_replay
from gr00t_npu_node.guidance import RTC_MODES
from gr00t_npu_node.bag.dataset.convert import convert_dataset, write_episode_bag
from gr00t_npu_node.bag.dataset.episode import DatasetError, LeRobotDataset
from gr00t_npu_node.bag.evaluation.evaluate import evaluate_offline, score_live_run
from gr00t_npu_node.bag.dataset.from_bag import episode_from_bag
from gr00t_npu_node.bag.dataset.layout import Topics, load_joint_layout
from gr00t_npu_node.bag.evaluation.live import clock_slack_ns, replay_into_node, replayed_camera_stamps
from gr00t_npu_node.bag.rosbag2.play import play_bag
from gr00t_npu_node.bag.rosbag2.record import record_bag
from gr00t_npu_node.bag.dataset.synth import write_synthetic_bag
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log


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

    results = convert_dataset(args.dataset, args.out_dir, load_joint_layout(args.config), episodes=args.episodes,
                              max_seconds=args.max_seconds, topics=_topics(args), storage=args.storage,
                              compress=args.compress, progress=_progress(args))
    for result in results:
        print(f"{result.path}: {result.frames} frames, {sum(result.counts.values())} messages "
              f"in {result.seconds:.2f} s")
    return 0


def _synth(args: argparse.Namespace) -> int:

    result = write_synthetic_bag(args.out, load_joint_layout(args.config), seconds=args.seconds,
                                 topics=_topics(args), storage=args.storage)
    print(f"{result.path}: {result.frames} synthetic frames, {sum(result.counts.values())} messages")
    return 0


def _play(args: argparse.Namespace) -> int:

    result = play_bag(args.bag, rate=args.rate, loop=args.loop, topics=args.topics, remap=_parse_remap(args.remap),
                      start_offset=args.start_offset, clock_hz=args.clock, wait_for=_parse_wait_for(args.wait_for),
                      wait_timeout=args.wait_timeout)
    for topic, count in result.counts.items():
        print(f"{topic}: played {count} of {result.in_bag[topic]} messages")
    for topic, reason in result.skipped.items():
        print(f"{topic}: not played: {reason}", file=sys.stderr)
    print(f"played in {result.wall_seconds:.2f} s, worst lag {result.max_lag_ms:.1f} ms")
    if result.unacked:
        print(f"gr00t-npu-bag play: error: not every subscriber acknowledged {result.unacked}: they may have missed "
              "messages", file=sys.stderr)
        return 1
    return 0


def _parse_wait_for(items: list[str] | None) -> dict[str, int] | None:
    """TOPIC or TOPIC:COUNT (ROS names have no colon), e.g. `/clock:2` for a node and a recorder on sim time."""
    if items is None:
        return None
    wanted = {}
    for item in items:
        topic, sep, count = item.partition(":")
        if not topic or (sep and not count.isdigit()) or count == "0":
            raise ValueError(f"bad --wait-for {item!r}; write TOPIC or TOPIC:COUNT, e.g. /clock:2")
        wanted[topic] = int(count) if sep else 1
    return wanted


def _record(args: argparse.Namespace) -> int:

    topics = [*args.topic_args, *(args.topics or ())]
    if not topics and not args.all:
        raise ValueError("name the topics to record (TOPIC ... or --topics TOPIC ...) or record all with -a/--all")
    out = args.output or Path(time.strftime("rosbag2_%Y_%m_%d-%H_%M_%S"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    summary = record_bag(out, topics=None if args.all else topics, storage=args.storage, compress=args.compress,
                         use_sim_time=args.use_sim_time, stop=stop)
    for topic, count in summary.counts.items():
        print(f"{topic}: received {summary.received[topic]}, wrote {count} messages")
    for topic, reason in summary.skipped.items():
        print(f"{topic}: not recorded: {reason}", file=sys.stderr)
    if summary.never_published:
        print(f"never published while recording: {summary.never_published}", file=sys.stderr)
    if unclocked := {t: n for t, n in summary.unclocked.items() if n}:
        print(f"written at time 0, no /clock message having come while recording: {unclocked}; play the bag with "
              "--clock", file=sys.stderr)
    print(f"{out}: {sum(summary.counts.values())} messages")
    if problems := summary.problems():
        print("gr00t-npu-bag record: error: the recording is incomplete: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def _eval_episode(args: argparse.Namespace, layout):

    if (args.bag is None) == (args.dataset is None):
        raise ValueError("evaluate either a bag (--bag BAG) or a data set episode (--dataset DIR --episode K)")
    if args.bag is not None:
        return episode_from_bag(args.bag, _topics(args)).head(args.max_seconds)
    return LeRobotDataset.open(args.dataset).episode(args.episode, layout).head(args.max_seconds)


def _eval(args: argparse.Namespace) -> int:
    layout = load_joint_layout(args.config)
    episode = _eval_episode(args, layout)
    if args.live:
        report = _eval_live(args, layout, episode)
    else:
        # torch is imported only where a policy runs in this process.
        from gr00t_npu_node.policy import Gr00tPolicy
        from gr00t_npu_node.ros.policy_loader import tiny_checkpoint_dir

        started = time.perf_counter()
        policy = Gr00tPolicy.from_pretrained(args.checkpoint or tiny_checkpoint_dir(), embodiment=args.embodiment,
                                             device=args.device, dtype=args.dtype, optimize=not args.plain)
        policy.warmup()
        print(f"loaded and warmed up {policy.description} in {time.perf_counter() - started:.1f} s")
        report = evaluate_offline(policy, episode, layout, execute_steps=args.execute_steps or layout.execute_steps,
                                  delay_steps=args.delay_steps, rtc_mode=args.rtc_mode, progress=_progress(args))
    print(report.table())
    if args.json == "-":
        print(report.to_json())
    elif args.json:
        Path(args.json).write_text(report.to_json())
    return 0


def _eval_live(args: argparse.Namespace, layout, episode):

    with tempfile.TemporaryDirectory(prefix="gr00t_eval_") as scratch:
        bag = args.bag
        if bag is None or args.max_seconds is not None:
            bag = write_episode_bag(episode, Path(scratch) / "replayed", topics=_topics(args)).path
        record = args.record or Path(scratch) / "commands"
        started = time.perf_counter()
        run = replay_into_node(bag, record, layout, topics=_topics(args), namespace=args.namespace, rate=args.rate)
        return score_live_run(run, episode, layout, horizon=args.horizon, wall_seconds=time.perf_counter() - started)


def _check(args: argparse.Namespace) -> int:

    layout = load_joint_layout(args.config)
    camera_stamps, _ = replayed_camera_stamps(args.replayed, _topics(args))
    log = read_command_log(args.recorded, layout.resolved_command_topics(args.namespace))
    result = check_replay(log, camera_stamps, layout, horizon=args.horizon,
                          clock_slack_ns=clock_slack_ns(args.rate))
    print(result.summary())
    for problem in result.problems:
        print(f"  {problem}")
    return 1 if result.problems else 0


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
    play.add_argument("--wait-for", nargs="+", metavar="TOPIC[:N]",
                      help="subscribers play needs before it starts, N per topic (default 1), /clock included; "
                           "without them it fails (default: waits for every topic with messages but the scoring "
                           "topics, then plays anyway)")
    play.add_argument("--wait-timeout", type=float, default=10.0)
    play.set_defaults(run=_play)

    record = commands.add_parser("record", help="record topics to a bag until Ctrl+C (like `ros2 bag record`)")
    record.add_argument("topic_args", nargs="*", metavar="TOPIC", help="topics to record, before or after options")
    record.add_argument("--topics", nargs="+", metavar="TOPIC", help="more topics to record")
    record.add_argument("-o", "--output", type=Path, help="the new bag (default: rosbag2_<date>-<time>)")
    record.add_argument("-a", "--all", action="store_true", help="record every topic that appears")
    record.add_argument("--storage", choices=sorted(STORAGES), default="mcap")
    record.add_argument("--compress", action="store_true")
    record.add_argument("--use-sim-time", action="store_true", help="receive times from /clock")
    record.set_defaults(run=_record)

    evaluate = commands.add_parser("eval", help="score a policy's chunks against an episode's recorded actions")
    evaluate.add_argument("--bag", type=Path, help="a converted episode bag")
    evaluate.add_argument("--dataset", type=Path, help="a LeRobot data set directory (with --episode)")
    evaluate.add_argument("--episode", type=int, default=0)
    evaluate.add_argument("--max-seconds", type=float, help="only the first S seconds of the episode")
    evaluate.add_argument("--checkpoint", type=Path, help="GR00T N1.6 checkpoint (default: the tiny test model)")
    evaluate.add_argument("--embodiment", default="gr1")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--dtype", help="float32, bfloat16 or float16 (default: the device's)")
    evaluate.add_argument("--plain", action="store_true", help="no graph compilation (faster start, slower calls)")
    evaluate.add_argument("--execute-steps", type=int, help="frames between chunk starts (default: the config's)")
    evaluate.add_argument("--delay-steps", type=int, default=0,
                          help="simulate an inference lasting this many steps: they run from the previous chunk")
    evaluate.add_argument("--rtc-mode", choices=RTC_MODES,
                          help="generate each chunk with real-time chunking against the previous one")
    evaluate.add_argument("--live", action="store_true",
                          help="replay into the running gr00t_node (use_sim_time:=true) and score its commands")
    evaluate.add_argument("--namespace", default="", help="the node's namespace (--live)")
    evaluate.add_argument("--rate", type=float, default=1.0, help="replay rate (--live)")
    evaluate.add_argument("--record", type=Path, help="keep the node's recorded commands in this new bag (--live)")
    evaluate.add_argument("--horizon", type=int, default=16, help="the policy's action horizon (--live)")
    evaluate.add_argument("--json", help="write the report as JSON to this file ('-' for stdout)")
    evaluate.add_argument("--config", type=Path)
    evaluate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    _add_topic_flags(evaluate)
    evaluate.set_defaults(run=_eval)

    check = commands.add_parser("check", help="regression checks on a node's commands recorded during a replay")
    check.add_argument("recorded", type=Path, help="bag with the node's trajectories (recorded on sim time)")
    check.add_argument("replayed", type=Path, help="the bag that was replayed into the node")
    check.add_argument("--namespace", default="")
    check.add_argument("--rate", type=float, default=1.0, help="the replay rate used")
    check.add_argument("--horizon", type=int, default=16)
    check.add_argument("--config", type=Path)
    _add_topic_flags(check)
    check.set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops taking positionals at the first option; `record A -o OUT B` still means topics A and B.
    if args.command == "record" and not [e for e in extra if e.startswith("-")]:
        args.topic_args += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args)
    except (BagError, DatasetError, ValueError, LookupError, OSError) as err:
        print(f"gr00t-npu-bag {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
