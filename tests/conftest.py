"""Session-wide test settings."""

import torch

# The tests use tiny models: extra intra-op threads only add contention on 2-core CI runners
# (and with the reward worker processes that run beside them).
torch.set_num_threads(1)
