from lerobot.processor import make_default_pre_post_processors


def make_paig_probe_pre_post_processors(config, dataset_stats=None):
    return make_default_pre_post_processors(config, dataset_stats, normalizer_device=config.device)
