"""Every task's reference completion scores 1.0 with the task's grader (the rewards issue's
functions), and a wrong answer does not: column names and answer formats fit the rewards."""

import pytest

from dlrl.evaluation.accuracy import load_graders, score
from dlrl.tasks import TASKS, get_task, make_dataset

SIZES = {"arithmetic": 8, "countdown": 8, "sudoku": 6, "code": 4, "largest": 8}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_reference_completion_is_correct(name):
    records = make_dataset(name, SIZES[name], seed=5)
    (grader,) = load_graders([get_task(name).grader])
    prompts = [r["prompt"] for r in records]
    rewards = next(iter(score([grader], prompts, [r["completion"] for r in records], records).values()))
    assert rewards == [1.0] * len(records)
    wrong = [
        r["completion"].replace("<answer>\n", "<answer>\n1") if name != "code" else "```python\npass\n```"
        for r in records
    ]
    bad = next(iter(score([grader], prompts, wrong, records).values()))
    assert all(v is not None and v < 1.0 for v in bad)
