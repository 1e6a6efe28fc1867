"""A logging callback package, as samples keep theirs beside train.py."""

import hugectr


class AucCallback(hugectr.TrainingCallback):
    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold

    def on_eval_end(self, iteration, eval_results):
        return eval_results.get("AUC", 0.0) >= self.threshold
