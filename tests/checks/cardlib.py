"""Evaluating a check card, with an answer filled in first for a question."""

from xenlab import checks

checks.load_all()


def card(name, stage, answer=None, key=None):
    if key is not None:
        stage.answers[key] = answer
    return checks.evaluate(name, stage)
