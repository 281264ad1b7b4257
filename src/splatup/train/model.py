"""Trainable Gaussians: parameters, Adam with the 3DGS learning rates, and adaptive density control.

The parameters are the pre-activation tensors of :class:`~splatup.gaussians.Gaussians` (means, quats,
log_scales, opacity_logits, SH split into the DC term and the rest). Densification follows INRIA 3DGS:

- statistics: for every Gaussian visible in a view, the norm of the gradient of the loss w.r.t. its 2D mean in
  normalised device coordinates (pixel gradient x (W/2, H/2) of the *full-resolution* image, so the 3DGS threshold
  0.0002 keeps its meaning whatever the render resolution), accumulated with a visibility count; and the largest
  screen radius seen, in full-resolution pixels;
- clone small Gaussians (max scale <= percent_dense x extent) whose mean gradient >= threshold, split large ones
  into two samples of themselves with scales / 1.6, prune opacity < 0.005, and (after the first opacity reset)
  screen radius > 20 px or world scale > 0.1 x extent; reset opacities to <= 0.01 every 3000 iterations.
Adam moments follow the Gaussians through clone, split and prune (new ones start at zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import SplatupInputError
from ..gaussians import Gaussians, num_sh_coeffs

PARAM_NAMES = ("means", "sh_dc", "sh_rest", "opacity_logits", "log_scales", "quats")


@dataclass
class TrainConfig:
    """3DGS hyper-parameters (graphdeco-inria defaults; position learning rates are scaled by the scene extent).

    The schedule's iteration counts left at None are filled in by :func:`~splatup.train.schedule.resolve_schedule`:
    the 3DGS values for runs of 30,000 iterations and more, scaled to shorter runs."""

    iterations: int = 30_000
    position_lr_init: float = 0.00016
    position_lr_final: float = 0.0000016
    position_lr_delay_mult: float = 0.01
    feature_lr: float = 0.0025
    opacity_lr: float = 0.025
    scaling_lr: float = 0.005
    rotation_lr: float = 0.001
    lambda_dssim: float = 0.2
    percent_dense: float = 0.01
    # schedule (iterations): None = the 3DGS value scaled to the run's length (see schedule.py)
    densification_interval: int | None = None
    opacity_reset_interval: int | None = None
    densify_from_iter: int | None = None
    densify_until_iter: int | None = None
    densify_grad_threshold: float = 0.0002
    min_opacity: float = 0.005
    max_screen_size: float = 20.0
    sh_degree: int = 3
    sh_increase_interval: int | None = None


def expon_lr(step: int, lr_init: float, lr_final: float, max_steps: int, delay_mult: float = 1.0,
             delay_steps: int = 0) -> float:
    """3DGS's log-linear learning-rate decay from lr_init to lr_final over max_steps (optionally delayed)."""
    if step < 0 or (lr_init == 0.0 and lr_final == 0.0):
        return 0.0
    if delay_steps > 0:
        delay = delay_mult + (1 - delay_mult) * math.sin(0.5 * math.pi * min(max(step / delay_steps, 0.0), 1.0))
    else:
        delay = 1.0
    t = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return delay * math.exp(math.log(lr_init) * (1 - t) + math.log(lr_final) * t)


class GaussianModel:
    """Trainable 3DGS scene with its optimizer and densification statistics."""

    def __init__(self, scene: Gaussians, config: TrainConfig, extent: float,
                 lr_mult: dict[str, float] | None = None) -> None:
        """``lr_mult``: factors on the learning rates of some parameters (names of ``PARAM_NAMES``; the means'
        factor applies to the whole decay schedule)."""
        from .schedule import resolve_schedule

        self.config = config = resolve_schedule(config)[0]
        self.extent = float(extent)
        self.lr_mult = {n: 1.0 for n in PARAM_NAMES}
        for n, f in (lr_mult or {}).items():
            if n not in self.lr_mult:
                raise SplatupInputError(f"lr_mult: unknown parameter {n!r}; expected one of {', '.join(PARAM_NAMES)}")
            self.lr_mult[n] = float(f)
        scene = scene.to(torch.float32)
        k_max = num_sh_coeffs(config.sh_degree)
        sh = torch.zeros(len(scene), k_max, 3)
        k = min(k_max, scene.sh.shape[1])
        sh[:, :k] = scene.sh[:, :k]
        self.params: dict[str, torch.nn.Parameter] = {
            "means": torch.nn.Parameter(scene.means.clone()),
            "sh_dc": torch.nn.Parameter(sh[:, :1].clone()),
            "sh_rest": torch.nn.Parameter(sh[:, 1:].clone()),
            "opacity_logits": torch.nn.Parameter(scene.opacity_logits.clone()),
            "log_scales": torch.nn.Parameter(scene.log_scales.clone()),
            "quats": torch.nn.Parameter(scene.quats.clone()),
        }
        c = config
        lrs = {"means": c.position_lr_init * self.extent, "sh_dc": c.feature_lr, "sh_rest": c.feature_lr / 20.0,
               "opacity_logits": c.opacity_lr, "log_scales": c.scaling_lr, "quats": c.rotation_lr}
        # fused Adam: one pass per tensor (measured 7.8 ms instead of 34-43 ms for 100k Gaussians at SH degree 3)
        self.optimizer = torch.optim.Adam(
            [{"params": [self.params[n]], "lr": lrs[n] * self.lr_mult[n], "name": n} for n in PARAM_NAMES], lr=0.0,
            eps=1e-15,
            fused=True)
        self.active_sh_degree = 0
        self.reset_stats()

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self.params["means"].shape[0]

    def scene(self) -> Gaussians:
        """The current scene; its tensors are (views of) the parameters, so rendering it is differentiable."""
        p = self.params
        return Gaussians(means=p["means"], quats=p["quats"], log_scales=p["log_scales"],
                         opacity_logits=p["opacity_logits"], sh=torch.cat([p["sh_dc"], p["sh_rest"]], dim=1))

    def export(self) -> Gaussians:
        """Detached copy for saving (all SH coefficients, whatever the active degree)."""
        return self.scene().detach().clone()

    # ------------------------------------------------------------------ schedules
    def update_learning_rate(self, iteration: int) -> float:
        c = self.config
        m = self.lr_mult["means"] * self.extent
        lr = expon_lr(iteration, c.position_lr_init * m, c.position_lr_final * m, c.iterations,
                      c.position_lr_delay_mult)
        for g in self.optimizer.param_groups:
            if g["name"] == "means":
                g["lr"] = lr
        return lr

    def maybe_increase_sh(self, iteration: int) -> None:
        if iteration % self.config.sh_increase_interval == 0 and self.active_sh_degree < self.config.sh_degree:
            self.active_sh_degree += 1

    # ------------------------------------------------------------------ densification statistics
    def reset_stats(self) -> None:
        n = len(self)
        self.grad_accum = torch.zeros(n)
        self.denom = torch.zeros(n)
        self.max_radii = torch.zeros(n)

    @torch.no_grad()
    def add_stats(self, means2d_grad: torch.Tensor, radii: torch.Tensor, visible: torch.Tensor,
                  render_size: tuple[int, int], full_size: tuple[int, int]) -> None:
        """Accumulate one view's statistics.

        Args:
            means2d_grad: [N, 2] dL/d(2D mean) in pixels of the rendered image (render_size = (H_r, W_r)).
            radii: [N] screen radii in rendered pixels.
            visible: [N] bool.
            full_size: (H, W) of the full-resolution image the loss compares against.
        """
        hr, wr = render_size
        h, w = full_size
        # render px -> NDC: ndc = 2 px / W_r - 1, so dL/dndc = dL/dpx * W_r / 2 (INRIA's viewspace gradient);
        # this is resolution-invariant, hence equal to the full-resolution value.
        g = means2d_grad * torch.tensor([wr / 2.0, hr / 2.0])
        norm = torch.linalg.vector_norm(g, dim=-1)
        self.grad_accum[visible] += norm[visible]
        self.denom[visible] += 1
        # radii in full-resolution pixels
        scale = 0.5 * (w / wr + h / hr)
        self.max_radii[visible] = torch.maximum(self.max_radii[visible], radii.detach()[visible] * scale)

    # ------------------------------------------------------------------ topology changes
    def _replace(self, new: dict[str, torch.Tensor], keep_state: torch.Tensor | None, n_new: int) -> None:
        """Swap every parameter for ``new[name]``; Adam moments: rows of ``keep_state`` (mask of old rows kept, in
        order) followed by ``n_new`` zero rows."""
        for group in self.optimizer.param_groups:
            name = group["name"]
            old = group["params"][0]
            param = torch.nn.Parameter(new[name].contiguous())
            state = self.optimizer.state.pop(old, None)
            if state is not None:
                for key in ("exp_avg", "exp_avg_sq"):
                    kept = state[key] if keep_state is None else state[key][keep_state]
                    state[key] = torch.cat([kept, torch.zeros((n_new,) + kept.shape[1:], dtype=kept.dtype)])
                self.optimizer.state[param] = state
            group["params"][0] = param
            self.params[name] = param

    @torch.no_grad()
    def prune(self, mask: torch.Tensor) -> None:
        """Remove the Gaussians where ``mask`` is True."""
        keep = ~mask
        self._replace({n: p[keep] for n, p in self.params.items()}, keep, 0)
        self.grad_accum, self.denom, self.max_radii = self.grad_accum[keep], self.denom[keep], self.max_radii[keep]

    @torch.no_grad()
    def append(self, new: dict[str, torch.Tensor]) -> None:
        n_new = new["means"].shape[0]
        self._replace({n: torch.cat([p, new[n]]) for n, p in self.params.items()}, None, n_new)
        z = torch.zeros(n_new)
        self.grad_accum, self.denom = torch.cat([self.grad_accum, z]), torch.cat([self.denom, z])
        self.max_radii = torch.cat([self.max_radii, z])

    @torch.no_grad()
    def densify_and_prune(self, iteration: int, generator: torch.Generator | None = None) -> dict[str, int]:
        """One adaptive density control step; returns counts of cloned, split and pruned Gaussians."""
        c = self.config
        grads = self.grad_accum / self.denom.clamp_min(1)
        grads[self.denom == 0] = 0.0
        max_scale = torch.exp(self.params["log_scales"]).max(dim=1).values
        big = max_scale > c.percent_dense * self.extent
        selected = grads >= c.densify_grad_threshold
        clone = selected & ~big
        split = selected & big
        p = self.params
        n0 = len(self)
        # clone: exact copies (the copy and the original then drift apart under the optimizer)
        self.append({n: t[clone].clone() for n, t in p.items()})
        split = torch.cat([split, torch.zeros(len(self) - n0, dtype=torch.bool)])
        # split: two samples from each large Gaussian, scales / (0.8 * 2)
        n_split = int(split.sum())
        if n_split:
            from ..gaussians import quat_to_rotmat

            s = torch.exp(self.params["log_scales"][split]).repeat(2, 1)
            R = quat_to_rotmat(self.params["quats"][split]).repeat(2, 1, 1)
            eps = torch.randn(s.shape, generator=generator) * s
            new = {n: t[split].repeat(2, *([1] * (t.ndim - 1))) for n, t in self.params.items()}
            new["means"] = (R @ eps[..., None])[..., 0] + new["means"]
            new["log_scales"] = torch.log(s / 1.6)
            self.append(new)
            self.prune(torch.cat([split, torch.zeros(2 * n_split, dtype=torch.bool)]))
        prune = torch.sigmoid(self.params["opacity_logits"]) < c.min_opacity
        if iteration > c.opacity_reset_interval:
            prune |= self.max_radii > c.max_screen_size
            prune |= torch.exp(self.params["log_scales"]).max(dim=1).values > 0.1 * self.extent
        n_prune = int(prune.sum())
        if n_prune and n_prune < len(self):
            self.prune(prune)
        self.reset_stats()
        return {"cloned": int(clone.sum()), "split": n_split, "pruned": n_prune}

    @torch.no_grad()
    def reset_opacity(self, max_opacity: float = 0.01) -> None:
        """Clamp every opacity to at most ``max_opacity`` and zero its Adam moments."""
        lo = math.log(max_opacity / (1 - max_opacity))
        new = torch.minimum(self.params["opacity_logits"], torch.tensor(lo))
        group = next(g for g in self.optimizer.param_groups if g["name"] == "opacity_logits")
        old = group["params"][0]
        param = torch.nn.Parameter(new)
        state = self.optimizer.state.pop(old, None)
        if state is not None:
            state["exp_avg"] = torch.zeros_like(state["exp_avg"])
            state["exp_avg_sq"] = torch.zeros_like(state["exp_avg_sq"])
            self.optimizer.state[param] = state
        group["params"][0] = param
        self.params["opacity_logits"] = param

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What a resumed run needs from the model: tensors (``param.<name>``, Adam's ``adam.<name>.exp_avg`` /
        ``.exp_avg_sq`` / ``.step``, ``stats.grad_accum`` / ``stats.denom`` / ``stats.max_radii``) and plain values
        (active SH degree, extent, each group's learning rate). The tensors are the live ones: save them before
        the next step."""
        tensors: dict[str, torch.Tensor] = {}
        lrs = {}
        for group in self.optimizer.param_groups:
            name, p = group["name"], group["params"][0]
            tensors[f"param.{name}"] = p.detach()
            lrs[name] = float(group["lr"])
            st = self.optimizer.state.get(p)
            if st:
                for key in _ADAM_KEYS:
                    tensors[f"adam.{name}.{key}"] = st[key].detach()
        tensors.update({"stats.grad_accum": self.grad_accum, "stats.denom": self.denom,
                        "stats.max_radii": self.max_radii})
        return tensors, {"active_sh_degree": self.active_sh_degree, "extent": self.extent, "lr": lrs}

    def restore_checkpoint_state(self, tensors: dict[str, torch.Tensor], values: dict, where: str) -> None:
        """Inverse of :meth:`checkpoint_state`, after checking every shape, dtype and value it needs.

        Raises:
            SplatupInputError: naming ``where`` (the checkpoint file) and the entry at fault.
        """
        _check_model_state(tensors, values, self.config.sh_degree, where)
        has_adam = "adam.means.exp_avg" in tensors
        for group in self.optimizer.param_groups:
            name = group["name"]
            self.optimizer.state.pop(group["params"][0], None)
            param = torch.nn.Parameter(tensors[f"param.{name}"].clone())
            group["params"][0] = param
            group["lr"] = float(values["lr"][name])
            self.params[name] = param
            if has_adam:
                self.optimizer.state[param] = {k: tensors[f"adam.{name}.{k}"].clone() for k in _ADAM_KEYS}
        self.active_sh_degree = int(values["active_sh_degree"])
        self.extent = float(values["extent"])
        self.grad_accum = tensors["stats.grad_accum"].clone()
        self.denom = tensors["stats.denom"].clone()
        self.max_radii = tensors["stats.max_radii"].clone()


_ADAM_KEYS = ("step", "exp_avg", "exp_avg_sq")


def _check_model_state(tensors: dict[str, torch.Tensor], values: dict, sh_degree: int, where: str) -> None:
    """Raise SplatupInputError unless ``tensors`` / ``values`` form a model state for SH degree ``sh_degree``."""

    def bad(what: str) -> SplatupInputError:
        return SplatupInputError(f"{where}: {what}")

    trailing = {"means": (3,), "sh_dc": (1, 3), "sh_rest": (num_sh_coeffs(sh_degree) - 1, 3), "opacity_logits": (),
                "log_scales": (3,), "quats": (4,)}
    n = None
    for name, tail in trailing.items():
        t = tensors.get(f"param.{name}")
        if t is None:
            raise bad(f"no tensor 'param.{name}'")
        if t.dtype != torch.float32 or t.ndim != 1 + len(tail) or tuple(t.shape[1:]) != tail:
            expected = ", ".join(["N", *map(str, tail)])
            raise bad(f"'param.{name}' is {t.dtype} {list(t.shape)}, expected float32 [{expected}]")
        n = t.shape[0] if n is None else n
        if t.shape[0] != n:
            raise bad(f"'param.{name}' has {t.shape[0]} rows, 'param.means' {n}")
        if not torch.isfinite(t).all():
            raise bad(f"'param.{name}' holds NaN or Inf")
    adam = [k for k in tensors if k.startswith("adam.")]
    if adam:
        for name, tail in trailing.items():
            for key in _ADAM_KEYS:
                t = tensors.get(f"adam.{name}.{key}")
                shape = () if key == "step" else (n, *tail)
                if t is None:
                    raise bad(f"no tensor 'adam.{name}.{key}' (the other Adam moments are there)")
                if t.dtype != torch.float32 or tuple(t.shape) != shape or not torch.isfinite(t).all():
                    raise bad(f"'adam.{name}.{key}' is {t.dtype} {list(t.shape)}, expected finite float32 "
                              f"{list(shape)}")
    for key in ("stats.grad_accum", "stats.denom", "stats.max_radii"):
        t = tensors.get(key)
        if t is None or t.dtype != torch.float32 or tuple(t.shape) != (n,):
            raise bad(f"'{key}' is missing or not float32 [{n}]")
    deg = values.get("active_sh_degree")
    if not isinstance(deg, int) or isinstance(deg, bool) or not 0 <= deg <= sh_degree:
        raise bad(f"model.active_sh_degree must be an integer in [0, {sh_degree}], got {deg!r}")
    ext = values.get("extent")
    if not isinstance(ext, (int, float)) or isinstance(ext, bool) or not (math.isfinite(ext) and ext > 0):
        raise bad(f"model.extent must be a positive number, got {ext!r}")
    lrs = values.get("lr")
    if not isinstance(lrs, dict) or set(lrs) != set(PARAM_NAMES) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in lrs.values()):
        raise bad(f"model.lr must map {', '.join(PARAM_NAMES)} to learning rates, got {lrs!r}")
