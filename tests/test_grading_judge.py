"""The judge (autograder/judge.py): the grader never follows what the kernel plants in the shared folder,
and observations are plain data. The attacks on the comparison itself are graded in the shared run of
tests/test_grading.py (tests/judge_attacks.py)."""
from __future__ import annotations

import pytest
import torch

from autograder import judge

AID = "day1_optimization"


def test_the_grader_never_follows_a_link_in_the_judges_folder(tmp_path, monkeypatch):
    """The kernel owns the judge's folder: links it plants are replaced (challenge) or refused
    (observations), and what they point at is neither written nor read."""
    monkeypatch.setattr(judge, "judged_tests", lambda aid: {"test_x": judge.Judged(
        "x", lambda: {"seed": 1}, lambda ch: None, lambda obs, ch: None)})
    channel = judge.Channel(AID)
    try:
        victim = tmp_path / "victim.txt"
        victim.write_text("unchanged")
        (channel.path / "test_x.challenge.json").symlink_to(victim)
        channel.before("test_x")
        assert victim.read_text() == "unchanged" and not (channel.path / "test_x.challenge.json").is_symlink()
        (channel.path / "test_x.obs.pt").symlink_to(victim)
        assert "could not be read" in channel.after("test_x")
    finally:
        channel.close()
    assert not channel.path.exists()


def test_observations_other_than_plain_data_are_refused():
    class Sub(torch.Tensor):
        pass

    with pytest.raises(Exception):
        judge.load_observations(judge.save_observations({"x": torch.zeros(2).as_subclass(Sub)}))
    with pytest.raises(Exception):
        judge.load_observations(judge.save_observations({"f": print}))
    assert torch.equal(judge.load_observations(judge.save_observations({"x": torch.ones(2)}))["x"], torch.ones(2))

