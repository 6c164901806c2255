"""Evaluation of a policy or a running node on an episode: offline scoring, replay into the node with its
commands recorded, and the regression checks on what it commanded."""
