"""Rosbag2 replay testing for gr00t_node (also the `gr00t-npu-bag` command, bag/cli.py).

    convert_dataset(dataset, out_dir, load_joint_layout())     LeRobot episodes -> one rosbag2 each
    write_synthetic_bag(out, load_joint_layout())             the small deterministic demo bag
    play_bag(bag, rate=1.0, clock_hz=100.0)                   publish at recorded timing (raw CDR, recorded QoS)
    record_bag(out, topics=[...], stop=event)                 record raw CDR until `stop` is set
    evaluate_offline(policy, episode, layout)                 score a policy's chunks against recorded actions
    replay_into_node(bag, out, layout) + check_replay(...)    replay into a running node, record and check it

A node fed by `play_bag` should run with `use_sim_time: true` and the bag played with `clock_hz`: the messages
carry the bag's stamps, which are far from the wall clock.
"""
from gr00t_npu_node.bag.check import check_replay
from gr00t_npu_node.bag.convert import convert_dataset, write_episode_bag
from gr00t_npu_node.bag.evaluate import evaluate_offline
from gr00t_npu_node.bag.layout import Topics, load_joint_layout
from gr00t_npu_node.bag.live import replay_into_node
from gr00t_npu_node.bag.play import play_bag
from gr00t_npu_node.bag.record import BagRecorder, record_bag
from gr00t_npu_node.bag.synth import synthetic_episode, write_synthetic_bag

__all__ = ["BagRecorder", "Topics", "check_replay", "convert_dataset", "evaluate_offline", "load_joint_layout",
           "play_bag", "record_bag", "replay_into_node", "synthetic_episode", "write_episode_bag",
           "write_synthetic_bag"]
