"""Data sets and bags: LeRobot GR1 episodes converted to rosbag2, episodes read back from bags, the synthetic
demo episode, and the bag layout (topics, time base, joint names)."""
