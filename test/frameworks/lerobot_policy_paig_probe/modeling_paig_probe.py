import torch
from torch import Tensor, nn

from lerobot.policies.pretrained import PreTrainedPolicy

from .configuration_paig_probe import PaigProbeConfig


class PaigProbePolicy(PreTrainedPolicy):
    """Chunk rows: 0 = the state; 1 = the mean of each image feature, in config order (zeros after);
    2 = [len(task), sum of the task's code points, 0, ...]; 3 = the state times a saved gain (a real weight)."""

    config_class = PaigProbeConfig
    name = "paig_probe"

    def __init__(self, config: PaigProbeConfig, **kwargs):
        super().__init__(config)
        config.validate_features()
        self.config = config
        self.gain = nn.Parameter(torch.ones(config.action_feature.shape[0]))

    def get_optim_params(self) -> dict:
        return self.parameters()

    def reset(self) -> None:
        pass

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        return (self.predict_action_chunk(batch) ** 2).mean(), {}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        task = batch.get("task")
        text = task[0] if isinstance(task, (list, tuple)) else (task or "")
        if text.startswith("fail:"):
            raise RuntimeError("paig_probe was told to fail: %s" % text[5:].strip())
        state = batch["observation.state"].float()  # [1, dof]
        dof = self.config.action_feature.shape[0]
        rows = torch.zeros(1, self.config.chunk_size, dof)
        rows[0, 0, : state.shape[-1]] = state[0, :dof]
        for i, key in enumerate(list(self.config.image_features)[:dof]):
            rows[0, 1, i] = batch[key].float().mean()
        rows[0, 2, 0] = float(len(text))
        rows[0, 2, 1] = float(sum(ord(c) for c in text))
        rows[0, 3, : state.shape[-1]] = state[0, :dof] * self.gain[: state.shape[-1]]
        return rows

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        return self.predict_action_chunk(batch)[:, 0]
