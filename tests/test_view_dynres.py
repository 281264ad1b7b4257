"""The dynamic-resolution controller against synthetic cost models (no clock).

Oracle: a frame at factor s costs ``fixed + scaled(s)`` seconds, with ``scaled(s) = b / s^p``; the target factor is
solved by hand from that model. The controller is fed what the viewer measures of a frame (its whole time and its
compositing time) with multiplicative noise from a seeded generator, and must settle on a factor whose true frame
time lies in its band below the target, stay there under noise (hysteresis), follow a change of cost, and respect
its factor range.
"""

import math

import numpy as np
import pytest

from splatup.errors import SplatupInputError
from splatup.view.dynres import DynamicResolution


def run(ctrl, fixed, b, frames, p=2.0, noise=0.0, seed=0, native=None, upscale=None):
    """Feed ``frames`` synthetic frames; return the factors used and their true (noise-free) times.

    An upscaled frame costs ``fixed + b / s^p``, a native one ``native`` (default: the same model at s = 1).
    With ``upscale`` (the part of ``fixed`` spent upscaling) the controller is told each upscaled frame's time
    without it, as the viewer does."""
    rng = np.random.default_rng(seed)
    factors, times = [], []
    for _ in range(frames):
        s = ctrl.factor
        if s <= 1.0 and native is not None:
            total, scaled, floor = native, 0.6 * native, None
        else:
            scaled = b / s**p
            total = fixed + scaled
            floor = None if upscale is None or s <= 1.0 else total - upscale
        jf, js = (1 + noise * rng.standard_normal(2)) if noise else (1.0, 1.0)
        ctrl.observe(s, (total - scaled) * jf + scaled * js, scaled * js,
                     None if floor is None else floor * jf)
        factors.append(s)
        times.append(total)
    return np.array(factors), np.array(times)


def test_one_frame_identifies_the_model_and_solves_for_the_band_middle():
    # fixed 10 ms, compositing 80 ms at factor 1, target 30 ms, band 0.15: the band middle 27.75 ms is reached at
    # 10 + 80 / s^2 = 27.75, s = sqrt(80 / 17.75); without smoothing one frame at any factor gives it exactly
    for start in (1.0, 2.5, 4.0):
        ctrl = DynamicResolution(target_s=0.030, factor=start, smoothing=1.0)
        factors, times = run(ctrl, 0.010, 0.080, 3)
        assert factors[1] == pytest.approx(math.sqrt(80 / 17.75), rel=1e-9)
        assert factors[2] == factors[1] and times[1] == pytest.approx(0.02775)


def test_settles_in_the_band_below_the_target():
    ctrl = DynamicResolution(target_s=0.030, factor=1.0)
    factors, times = run(ctrl, 0.010, 0.080, 30)
    assert np.all((times[10:] >= (1 - ctrl.band) * 0.030) & (times[10:] <= 0.030))
    assert np.count_nonzero(np.diff(factors)) <= 4  # a few corrections while the averages converge, then steady


def test_holds_the_factor_under_noise():
    ctrl = DynamicResolution(target_s=0.030, factor=3.0)
    factors, times = run(ctrl, 0.010, 0.080, 300, noise=0.05, seed=1)
    changes = int(np.count_nonzero(np.diff(factors[20:])))
    assert changes <= 3, f"the factor changed {changes} times in 280 frames under 5 % noise"
    assert np.all(times[20:] <= 0.030 * 1.05) and np.all(times[20:] >= 0.030 * (1 - ctrl.band) * 0.95)


def test_corrects_a_model_that_does_not_scale_as_one_over_s_squared():
    # compositing that goes as 1 / s^1.5 (low-res compositing dearer per pixel): the controller's 1/s^2 model is wrong,
    # the measurement at each new factor corrects it
    ctrl = DynamicResolution(target_s=0.030, factor=1.0)
    _, times = run(ctrl, 0.010, 0.080, 40, p=1.5)
    assert (1 - ctrl.band) * 0.030 <= times[-1] <= 0.030


def test_follows_a_change_of_cost():
    ctrl = DynamicResolution(target_s=0.030, factor=1.0)
    f1, _ = run(ctrl, 0.010, 0.080, 20)
    f2, t2 = run(ctrl, 0.010, 0.160, 20)  # the camera moved close: twice the compositing
    assert f2[-1] > f1[-1]
    assert (1 - ctrl.band) * 0.030 <= t2[-1] <= 0.030
    f3, t3 = run(ctrl, 0.010, 0.040, 20)  # and back out: half
    assert f3[-1] < f1[-1] and (1 - ctrl.band) * 0.030 <= t3[-1] <= 0.030


def test_native_is_taken_when_it_is_faster_than_a_small_factor():
    # plant.splat's case: compositing shrinks slowly with the resolution and the derivatives cost extra, so a native
    # frame (26 ms) beats hermite at the factor the model would choose for 33.3 ms (12 + 42 / s^2 = 30.8 at s = 1.49)
    ctrl = DynamicResolution(target_s=0.0333, factor=2.0)
    factors, times = run(ctrl, 0.012, 0.042, 20, native=0.026, upscale=0.003)
    assert factors[-1] == 1.0 and times[-1] == 0.026
    assert np.count_nonzero(np.diff(factors)) <= 3


def test_native_too_slow_is_tried_once_per_memory_and_left():
    ctrl = DynamicResolution(target_s=0.0333, factor=2.0, native_memory=50)
    factors, times = run(ctrl, 0.012, 0.042, 200, native=0.060, upscale=0.003)
    probes = int(np.count_nonzero(factors == 1.0))
    assert 1 <= probes <= 200 // 50 + 1
    settled = factors[factors > 1.0][5:]
    assert np.all(settled >= ctrl.min_upscale)
    assert np.all((times[factors > 1.0][5:] <= 0.0333) & (times[factors > 1.0][5:] >= 0.85 * 0.0333))


def test_native_is_left_when_it_gets_too_slow():
    ctrl = DynamicResolution(target_s=0.0333, factor=2.0)
    run(ctrl, 0.012, 0.042, 10, native=0.026, upscale=0.003)
    assert ctrl.factor == 1.0
    factors, times = run(ctrl, 0.012, 0.042, 10, native=0.045, upscale=0.003)  # the camera moved close
    assert factors[-1] >= ctrl.min_upscale and times[-1] <= 0.0333


def test_unreachable_target_pins_the_largest_factor():
    ctrl = DynamicResolution(target_s=0.012, factor=1.0)  # even at 4: 10 + 80/16 = 15 ms > 12 ms
    factors, _ = run(ctrl, 0.010, 0.080, 10)
    assert factors[-1] == 4.0
    ctrl = DynamicResolution(target_s=0.005, factor=2.0)  # below the fixed part alone
    factors, _ = run(ctrl, 0.010, 0.080, 5)
    assert factors[-1] == 4.0


def test_easy_target_takes_the_smallest_factor():
    ctrl = DynamicResolution(target_s=0.200, factor=4.0)  # even native (90 ms) is far below 200 ms
    factors, _ = run(ctrl, 0.010, 0.080, 10)
    assert factors[-1] == 1.0


def test_range_is_respected():
    ctrl = DynamicResolution(target_s=0.200, min_factor=1.5, max_factor=3.0, factor=2.0)
    factors, _ = run(ctrl, 0.010, 0.080, 10)
    assert factors.min() >= 1.5 and factors[-1] == 1.5
    ctrl.set_target(0.001)
    factors, _ = run(ctrl, 0.010, 0.080, 10)
    assert factors.max() <= 3.0 and factors[-1] == 3.0


def test_smoothing_damps_a_single_outlier():
    ctrl = DynamicResolution(target_s=0.030, factor=1.0)
    run(ctrl, 0.010, 0.080, 20)
    settled = ctrl.factor
    ctrl.observe(settled, 0.010 + 0.080 / settled**2 + 0.004, 0.080 / settled**2)  # one frame 4 ms late (a hiccup)
    assert ctrl.factor == settled


def test_bad_measurements_are_ignored_and_bad_settings_named():
    ctrl = DynamicResolution(target_s=0.030, factor=2.0)
    assert ctrl.observe(2.0, float("nan"), 0.01) == 2.0 and ctrl.fixed_s is None
    with pytest.raises(SplatupInputError, match="target frame time"):
        DynamicResolution(target_s=0.0)
    with pytest.raises(SplatupInputError, match="factor range"):
        DynamicResolution(target_s=0.03, min_factor=3.0, max_factor=2.0)
    with pytest.raises(SplatupInputError, match="no frame observed"):
        DynamicResolution(target_s=0.03).predict(2.0)
