"""A LeRobot policy plugin used only by test/frameworks/lerobot.test.ts: a real ``PreTrainedPolicy`` (registered
through LeRobot's own plugin mechanism, saved and loaded with its own save_pretrained/from_pretrained, run
through its own processor pipelines) whose actions report what reached it: the state, the mean of each camera
image under the policy's own image keys, and the task text. A task starting with ``fail:`` raises, so the test
can see a policy exception. Not a model: ACT and Diffusion are the real ones in that test."""
from .configuration_paig_probe import PaigProbeConfig  # noqa: F401  (registers the "paig_probe" type)
