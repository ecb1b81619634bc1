"""Streaming's commit policy: a token is shown once two hypotheses in a row agree on it and
on all before it; a window's last hypothesis is committed in full; lags are measured."""

from __future__ import annotations

from edgert.plugins.families.speech.streaming import LocalAgreement


def test_tokens_are_committed_when_two_hypotheses_agree():
    policy = LocalAgreement()
    assert policy.update([1, 2, 3], now=1.0) == []  # nothing to agree with yet
    assert policy.update([1, 2, 4, 5], now=2.0) == [1, 2]
    assert policy.update([1, 2, 4, 6], now=3.0) == [4]
    assert policy.finish([1, 2, 4, 6, 7], now=3.5) == [6, 7]
    assert policy.committed == [1, 2, 4, 6, 7]


def test_the_lag_is_the_audio_between_first_sight_and_commit():
    policy = LocalAgreement()
    policy.update([1, 2], now=1.0)
    policy.update([1, 3], now=2.0)  # 1 seen at 1.0, committed at 2.0; 3 first seen at 2.0
    policy.update([1, 3], now=3.0)
    assert policy.lags == [1.0, 1.0]


def test_a_hypothesis_that_rewrites_shown_tokens_commits_nothing():
    policy = LocalAgreement()
    policy.update([1, 2], now=1.0)
    policy.update([1, 2], now=2.0)
    assert policy.update([9, 9, 9], now=3.0) == []
    assert policy.finish([9, 9, 9], now=4.0) == []
    assert policy.committed == [1, 2]
