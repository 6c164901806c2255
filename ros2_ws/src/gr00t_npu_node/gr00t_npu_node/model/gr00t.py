"""The GR00T N1.6 model: Eagle backbone + action head, with the released checkpoint's parameter names."""
from __future__ import annotations

import torch
import torch.nn as nn

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.action_head import Gr00tActionHead
from gr00t_npu_node.model.config import Gr00tConfig
from gr00t_npu_node.model.eagle import EagleBackbone
from gr00t_npu_node.model.qwen3 import RMSNorm


class Gr00tN1d6(nn.Module):
    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        self.config = config
        self.backbone = EagleBackbone(config, backend)
        self.action_head = Gr00tActionHead(config, backend)

    @torch.no_grad()
    def init_random(self, seed: int, std: float = 0.02) -> None:
        """Random weights for tests, the demo and benchmarks: unit-gain norms, normal(0, std) everything else."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, (nn.LayerNorm, RMSNorm)):
                    param.fill_(1.0 if name == "weight" else 0.0)
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
