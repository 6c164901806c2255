# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Rosbag2 replay testing for gr00t_node (also the `gr00t-npu-bag` command, bag/cli.py), in three parts:

    rosbag2/     bags themselves: BagReader/BagWriter (bagio), play_bag, record_bag, QoS, message types
    dataset/     convert_dataset (LeRobot episodes -> one rosbag2 each), write_synthetic_bag (the demo bag),
                 episode_from_bag, the bag layout (load_joint_layout, Topics)
    evaluation/  evaluate_offline (score a policy's chunks against recorded actions), replay_into_node (a bag into
                 a running node, its commands recorded) and check_replay (the regression checks on them)

A node fed by `play_bag` should run with `use_sim_time:=true` and the bag played with `clock_hz`: the messages
carry the bag's stamps, which are far from the wall clock. Nothing is imported here: the data-set tools need the
`bag` extra (av, pyarrow, tqdm), the node's demo does not.
"""
