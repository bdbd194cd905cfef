#!/usr/bin/env python3
"""A numpy transcription of HuggingFace diffusers' DDPMScheduler and DDIMScheduler, and the
generator of Tests/Fixtures/schedulers.json, the fixture the Swift sampler's tests compare with.

No torch, no diffusers: numpy only. Run with the project's venv (Tools/setup-venv.sh):

  Tools/.venv/bin/python Tools/scheduler_reference.py            # (re)write the fixture
  Tools/.venv/bin/python Tools/scheduler_reference.py --check    # re-derive it, compare with the stored one
  Tools/.venv/bin/python Tools/scheduler_reference.py --output PATH

Transcribed from diffusers 0.42.1 (src/diffusers/schedulers/scheduling_ddpm.py and
scheduling_ddim.py). The parts that matter here were the same from 0.31.0 on; 0.30.x differs in
DDPMScheduler.previous_timestep (see "Version notes" below).

What each part transcribes
--------------------------
  torch_linspace_f32      torch.linspace(start, end, steps, dtype=torch.float32) on the CPU
                          (ATen linspace_kernel: step = (end - start) / (steps - 1) in float32,
                          start + step * i for the first half, end - step * (steps - 1 - i) for the
                          second half, each one fused multiply-add).
  torch_cumprod_f32       torch.cumprod(x, dim=0) on a float32 CPU tensor (ATen cumprod_cpu_kernel:
                          the running product is kept in double, acc_type<float, false>, and each
                          output is rounded to float32).
  betas_for_alpha_bar     scheduling_ddpm.betas_for_alpha_bar / scheduling_ddim.betas_for_alpha_bar
                          with alpha_transform_type="cosine", max_beta=0.999 (Python doubles, then
                          torch.tensor(betas, dtype=torch.float32)).
  make_betas              the beta_schedule branches of DDPMScheduler.__init__ /
                          DDIMScheduler.__init__: "linear", "scaled_linear", "squaredcos_cap_v2";
                          then alphas = 1.0 - betas, alphas_cumprod = torch.cumprod(alphas, dim=0).
  set_timesteps_common    DDPMScheduler.set_timesteps / DDIMScheduler.set_timesteps (numpy in
                          diffusers too): timestep_spacing "linspace", "leading" (+ steps_offset),
                          "trailing". steps_offset is only added for "leading".
  DDPMScheduler           .previous_timestep, ._get_variance (variance_type "fixed_small",
                          "fixed_small_log", "fixed_large", "fixed_large_log"), .step
                          (prediction_type "epsilon", "sample", "v_prediction"; clip_sample with
                          clip_sample_range; thresholding off), .add_noise, .get_velocity.
  DDIMScheduler           ._get_variance, .step (eta, use_clipped_model_output, set_alpha_to_one /
                          final_alpha_cumprod, the three prediction types, clip_sample with
                          clip_sample_range; thresholding off), .add_noise (copied from DDPM in
                          diffusers), .get_velocity.

Not transcribed: trained_betas, rescale_betas_zero_snr, thresholding (dynamic thresholding), the
"sigmoid"/"laplace" beta schedules, variance_type "learned"/"learned_range", custom timesteps.

Arithmetic: float32, as diffusers does it
-----------------------------------------
diffusers keeps betas / alphas / alphas_cumprod as torch float32 tensors; alpha_prod_t etc. are
0-dim float32 tensors, and Python numbers mixed with them (1 - x, eta * x) are taken as float32.
So every operation here is done on np.float32 values, one rounding per torch operation, in the
order diffusers writes them: `x ** 0.5` is a square root (torch dispatches pow(x, 0.5) to sqrt),
`x ** 2` is x * x, `a * x + b * y` is three separately rounded operations (no fused
multiply-add), divisions are true float32 divisions. Exceptions, as in torch: torch.linspace
fuses `start + step * i` (see torch_linspace_f32), torch.cumprod accumulates in double (see
torch_cumprod_f32); betas_for_alpha_bar and `beta_start ** 0.5` are Python double math rounded
once to float32; the timesteps are numpy integer math in diffusers itself. The noise that
diffusers draws with randn_tensor(generator) is passed in here as an array (`variance_noise`).

Square roots are IEEE (correctly rounded), as on most platforms and in Swift's squareRoot().
PyTorch's x86-64 Linux wheels compute float32 sqrt with MKL VML instead, up to 0.75 ulp off, so
diffusers there differs from this file by a few float32 ulps (at most 9.6e-7 absolute in the
fixture's steps). With torch's sqrt substituted for sqrt32, this file reproduced diffusers 0.42.1
on torch 2.15.0 (x86-64, AVX512) bit for bit: betas, alphas_cumprod, timesteps, add_noise, and
one step at every timestep of every fixture case. Betas and alphas_cumprod match torch bit for
bit either way.

Version notes (where diffusers' behaviour depends on the version or is easy to get wrong)
-----------------------------------------------------------------------------------------
* DDPMScheduler.previous_timestep: since 0.31.0 (PR #9384), once set_timesteps(N) was called the
  previous timestep is the next entry of self.timesteps (-1 after the last one). Up to 0.30.x it
  was `t - num_train_timesteps // N`, which differs for "linspace" and for "trailing" when N does
  not divide num_train_timesteps. This file follows 0.31+.
* DDIMScheduler.step still uses `prev_timestep = t - num_train_timesteps // N` (0.42.1), also for
  "linspace" and "trailing", where it does not match the timestep list (diffusers issues #11347,
  #12633). Transcribed as is.
* DDPM adds noise whenever t > 0, judged on t itself, not on the previous timestep. With
  "trailing" spacing, or "leading" with steps_offset >= 1, the last step has t > 0 and prev_t = -1,
  so alpha_prod_t_prev is 1, the variance is 0 before the clamp, and the step adds
  sqrt(1e-20) * noise = 1e-10 * noise (visible only on values near 0). Only a last step with
  t == 0 adds nothing.
* "fixed_small_log" in 0.42.1 multiplies the noise by exp(0.5 * log(clamp(variance, 1e-20))),
  i.e. by the standard deviation, computed through log/exp (numpy's and torch's MKL log/exp may
  differ by an ulp); "fixed_large_log" returns log(beta). Neither is in the fixture.
* torch.linspace's float32 rounding: PyTorch's linspace kernel computes `start + step * i` (first
  half) and `end - step * (steps - 1 - i)` (second half) in float32, and its AVX2/AVX512 builds
  contract each into one fused multiply-add; torch_linspace_f32 does the same and matched torch
  2.15 on every beta of the fixture's schedules, where separately rounded operations are 1 ulp
  off in 15-20% of them. A torch build that does not contract (x86-64 baseline kernels; arm64 not
  checked, clang contracts by default there) would differ by an ulp in some betas.
"""
import argparse
import json
import math
import os
import sys
from fractions import Fraction

import numpy as np

DIFFUSERS_VERSION = "0.42.1"
F32 = np.float32

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
DEFAULT_FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "schedulers.json")


def sqrt32(x):
    """torch `x ** 0.5` on float32: dispatched to sqrt; here the IEEE, correctly rounded one."""
    return np.sqrt(F32(x)) if np.ndim(x) == 0 else np.sqrt(np.asarray(x, dtype=F32))


# --------------------------------------------------------------------------------------------
# torch primitives used by the schedulers' constructors
# --------------------------------------------------------------------------------------------

def fma_f32(a, b, c):
    """a * b + c with one rounding to float32 (a fused multiply-add), exactly."""
    exact = Fraction(float(F32(a))) * Fraction(float(F32(b))) + Fraction(float(F32(c)))
    r = F32(float(exact))  # at most one float32 step away from the correctly rounded result
    candidates = [np.nextafter(r, F32(-np.inf)), r, np.nextafter(r, F32(np.inf))]
    # nearest; a tie goes to the even significand
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.array(v, dtype=F32).view(np.int32)) & 1))


def torch_linspace_f32(start, end, steps):
    """torch.linspace(start, end, steps, dtype=torch.float32) on the CPU (ATen linspace_kernel):
    step = (end - start) / (steps - 1) in float32, then `start + step * i` for i < steps / 2 and
    `end - step * (steps - 1 - i)` after, each contracted to one fused multiply-add, as the
    compiler emits it in PyTorch's AVX2/AVX512 (x86-64) builds (see the module docstring)."""
    start = F32(start)
    end = F32(end)
    out = np.empty(steps, dtype=F32)
    if steps == 1:  # RangeFactories.cpp: linspace with one step fills `start`
        out[0] = start
        return out
    step = (end - start) / F32(steps - 1)
    halfway = steps // 2
    for idx in range(steps):
        if idx < halfway:
            out[idx] = fma_f32(step, idx, start)
        else:
            out[idx] = fma_f32(-step, steps - idx - 1, end)
    return out


def torch_cumprod_f32(x):
    """torch.cumprod(x, dim=0) for a 1-D float32 CPU tensor: running product in double, each
    output rounded to float32 (ATen cumprod_cpu_kernel, acc_type<float, /*is_cuda=*/false>)."""
    out = np.empty(len(x), dtype=F32)
    acc = 1.0  # Python float: IEEE double
    for i, v in enumerate(x):
        acc *= float(v)
        out[i] = F32(acc)
    return out


# --------------------------------------------------------------------------------------------
# betas and alphas_cumprod (DDPMScheduler.__init__ / DDIMScheduler.__init__)
# --------------------------------------------------------------------------------------------

def betas_for_alpha_bar(num_diffusion_timesteps, max_beta=0.999):
    """diffusers betas_for_alpha_bar(..., alpha_transform_type="cosine"): the Glide cosine
    schedule, in Python doubles, returned as torch.tensor(betas, dtype=torch.float32)."""

    def alpha_bar_fn(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar_fn(t2) / alpha_bar_fn(t1), max_beta))
    return np.array(betas, dtype=F32)


def make_betas(num_train_timesteps, beta_start, beta_end, beta_schedule):
    if beta_schedule == "linear":
        return torch_linspace_f32(beta_start, beta_end, num_train_timesteps)
    if beta_schedule == "scaled_linear":
        # "this schedule is very specific to the latent diffusion model."
        # torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=float32) ** 2: the square roots
        # are Python doubles; `** 2` on the float32 tensor is x * x.
        lin = torch_linspace_f32(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps)
        return lin * lin
    if beta_schedule == "squaredcos_cap_v2":
        # Glide cosine schedule
        return betas_for_alpha_bar(num_train_timesteps)
    raise NotImplementedError(f"{beta_schedule} is not implemented here")


def make_alphas(betas):
    alphas = F32(1.0) - betas  # self.alphas = 1.0 - self.betas (float32)
    alphas_cumprod = torch_cumprod_f32(alphas)  # torch.cumprod(self.alphas, dim=0)
    return alphas, alphas_cumprod


# --------------------------------------------------------------------------------------------
# set_timesteps (identical in DDPMScheduler and DDIMScheduler for num_inference_steps)
# --------------------------------------------------------------------------------------------

def set_timesteps_common(num_train_timesteps, num_inference_steps, timestep_spacing, steps_offset):
    if num_inference_steps > num_train_timesteps:
        raise ValueError(
            f"`num_inference_steps`: {num_inference_steps} cannot be larger than `self.config.train_timesteps`:"
            f" {num_train_timesteps}")
    # "linspace", "leading", "trailing" corresponds to annotation of Table 2. of arXiv 2305.08891
    if timestep_spacing == "linspace":
        timesteps = (
            np.linspace(0, num_train_timesteps - 1, num_inference_steps).round()[::-1].copy().astype(np.int64)
        )
    elif timestep_spacing == "leading":
        step_ratio = num_train_timesteps // num_inference_steps
        timesteps = (np.arange(0, num_inference_steps) * step_ratio).round()[::-1].copy().astype(np.int64)
        timesteps += steps_offset
    elif timestep_spacing == "trailing":
        step_ratio = num_train_timesteps / num_inference_steps
        timesteps = np.round(np.arange(num_train_timesteps, 0, -step_ratio)).astype(np.int64)
        timesteps -= 1
    else:
        raise ValueError(f"{timestep_spacing} is not supported")
    return timesteps


def _clip(x, clip_sample_range):
    """Tensor.clamp(-range, range) with the bounds taken as float32."""
    r = F32(clip_sample_range)
    return np.minimum(np.maximum(x, -r), r)


def _add_noise(alphas_cumprod, original_samples, noise, timestep):
    """DDPMScheduler.add_noise (DDIMScheduler.add_noise is a copy of it), for one timestep."""
    original_samples = np.asarray(original_samples, dtype=F32)
    noise = np.asarray(noise, dtype=F32)
    a = alphas_cumprod[int(timestep)]
    sqrt_alpha_prod = sqrt32(a)  # alphas_cumprod[timesteps] ** 0.5
    sqrt_one_minus_alpha_prod = sqrt32(F32(1) - a)  # (1 - alphas_cumprod[timesteps]) ** 0.5
    return sqrt_alpha_prod * original_samples + sqrt_one_minus_alpha_prod * noise


def _get_velocity(alphas_cumprod, sample, noise, timestep):
    """DDPMScheduler.get_velocity (copied into DDIMScheduler), for one timestep."""
    sample = np.asarray(sample, dtype=F32)
    noise = np.asarray(noise, dtype=F32)
    a = alphas_cumprod[int(timestep)]
    return sqrt32(a) * noise - sqrt32(F32(1) - a) * sample


# --------------------------------------------------------------------------------------------
# DDPMScheduler
# --------------------------------------------------------------------------------------------

class DDPMScheduler:
    """diffusers.DDPMScheduler (0.42.1), float32."""

    def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                 variance_type="fixed_small", clip_sample=True, prediction_type="epsilon",
                 clip_sample_range=1.0, timestep_spacing="leading", steps_offset=0):
        self.num_train_timesteps = num_train_timesteps
        self.variance_type = variance_type
        self.clip_sample = clip_sample
        self.prediction_type = prediction_type
        self.clip_sample_range = clip_sample_range
        self.timestep_spacing = timestep_spacing
        self.steps_offset = steps_offset
        self.betas = make_betas(num_train_timesteps, beta_start, beta_end, beta_schedule)
        self.alphas, self.alphas_cumprod = make_alphas(self.betas)
        self.one = F32(1.0)  # torch.tensor(1.0)
        self.num_inference_steps = None
        self.timesteps = np.arange(0, num_train_timesteps)[::-1].copy()

    def set_timesteps(self, num_inference_steps):
        self.timesteps = set_timesteps_common(self.num_train_timesteps, num_inference_steps,
                                              self.timestep_spacing, self.steps_offset)
        self.num_inference_steps = num_inference_steps

    def previous_timestep(self, timestep):
        """0.31+: after set_timesteps, the next entry of self.timesteps (-1 after the last)."""
        if self.num_inference_steps:
            index = int(np.nonzero(self.timesteps == timestep)[0][0])
            if index == self.timesteps.shape[0] - 1:
                return -1
            return int(self.timesteps[index + 1])
        return timestep - 1

    def _get_variance(self, t):
        prev_t = self.previous_timestep(t)
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        current_beta_t = F32(1) - alpha_prod_t / alpha_prod_t_prev

        # x_{t-1} ~ N(pred_prev_sample, variance), formulas (6) and (7) of arXiv 2006.11239
        variance = (F32(1) - alpha_prod_t_prev) / (F32(1) - alpha_prod_t) * current_beta_t
        # "we always take the log of variance, so clamp it to ensure it's not 0"
        variance = max(variance, F32(1e-20))  # torch.clamp(variance, min=1e-20), bound as float32

        if self.variance_type == "fixed_small":
            pass
        elif self.variance_type == "fixed_small_log":
            variance = np.log(variance)
            variance = np.exp(F32(0.5) * variance)
        elif self.variance_type == "fixed_large":
            variance = current_beta_t
        elif self.variance_type == "fixed_large_log":
            variance = np.log(current_beta_t)  # Glide max_log
        else:
            raise NotImplementedError(f"variance_type {self.variance_type}")
        return F32(variance)

    def step(self, model_output, timestep, sample, variance_noise=None):
        """Returns (prev_sample, pred_original_sample). `variance_noise` stands for the
        randn_tensor(model_output.shape, generator=...) draw; it is used only when t > 0."""
        model_output = np.asarray(model_output, dtype=F32)
        sample = np.asarray(sample, dtype=F32)
        t = int(timestep)
        prev_t = self.previous_timestep(t)

        # 1. compute alphas, betas
        alpha_prod_t = self.alphas_cumprod[t]
        alpha_prod_t_prev = self.alphas_cumprod[prev_t] if prev_t >= 0 else self.one
        beta_prod_t = F32(1) - alpha_prod_t
        beta_prod_t_prev = F32(1) - alpha_prod_t_prev
        current_alpha_t = alpha_prod_t / alpha_prod_t_prev
        current_beta_t = F32(1) - current_alpha_t

        # 2. "predicted x_0", formula (15) of arXiv 2006.11239
        if self.prediction_type == "epsilon":
            pred_original_sample = (sample - sqrt32(beta_prod_t) * model_output) / sqrt32(alpha_prod_t)
        elif self.prediction_type == "sample":
            pred_original_sample = model_output
        elif self.prediction_type == "v_prediction":
            pred_original_sample = sqrt32(alpha_prod_t) * sample - sqrt32(beta_prod_t) * model_output
        else:
            raise ValueError(f"prediction_type {self.prediction_type}")

        # 3. clip "predicted x_0" (thresholding is not transcribed)
        if self.clip_sample:
            pred_original_sample = _clip(pred_original_sample, self.clip_sample_range)

        # 4. coefficients of x_0 and x_t, formula (7) of arXiv 2006.11239
        pred_original_sample_coeff = (sqrt32(alpha_prod_t_prev) * current_beta_t) / beta_prod_t
        current_sample_coeff = sqrt32(current_alpha_t) * beta_prod_t_prev / beta_prod_t

        # 5. predicted previous sample mu_t
        pred_prev_sample = pred_original_sample_coeff * pred_original_sample + current_sample_coeff * sample

        # 6. add noise
        if t > 0:
            if variance_noise is None:
                raise ValueError(f"t = {t} > 0: DDPM adds noise, pass variance_noise")
            variance_noise = np.asarray(variance_noise, dtype=F32)
            if self.variance_type == "fixed_small_log":
                variance = self._get_variance(t) * variance_noise
            else:
                variance = sqrt32(self._get_variance(t)) * variance_noise
            pred_prev_sample = pred_prev_sample + variance

        return pred_prev_sample.astype(F32), pred_original_sample.astype(F32)

    def add_noise(self, original_samples, noise, timestep):
        return _add_noise(self.alphas_cumprod, original_samples, noise, timestep)

    def get_velocity(self, sample, noise, timestep):
        return _get_velocity(self.alphas_cumprod, sample, noise, timestep)


# --------------------------------------------------------------------------------------------
# DDIMScheduler
# --------------------------------------------------------------------------------------------

class DDIMScheduler:
    """diffusers.DDIMScheduler (0.42.1), float32."""

    def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                 clip_sample=True, set_alpha_to_one=True, steps_offset=0, prediction_type="epsilon",
                 clip_sample_range=1.0, timestep_spacing="leading"):
        self.num_train_timesteps = num_train_timesteps
        self.clip_sample = clip_sample
        self.prediction_type = prediction_type
        self.clip_sample_range = clip_sample_range
        self.timestep_spacing = timestep_spacing
        self.steps_offset = steps_offset
        self.betas = make_betas(num_train_timesteps, beta_start, beta_end, beta_schedule)
        self.alphas, self.alphas_cumprod = make_alphas(self.betas)
        # the "previous" alphas_cumprod of the last step: 1, or the one of timestep 0
        self.final_alpha_cumprod = F32(1.0) if set_alpha_to_one else self.alphas_cumprod[0]
        self.num_inference_steps = None
        self.timesteps = np.arange(0, num_train_timesteps)[::-1].copy().astype(np.int64)

    def set_timesteps(self, num_inference_steps):
        self.timesteps = set_timesteps_common(self.num_train_timesteps, num_inference_steps,
                                              self.timestep_spacing, self.steps_offset)
        self.num_inference_steps = num_inference_steps

    def previous_timestep(self, timestep):
        """DDIMScheduler.step, "1. get previous step value (=t-1)": a uniform stride, whatever
        the timestep_spacing."""
        return int(timestep) - self.num_train_timesteps // self.num_inference_steps

    def _get_variance(self, timestep, prev_timestep):
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = F32(1) - alpha_prod_t
        beta_prod_t_prev = F32(1) - alpha_prod_t_prev
        return (beta_prod_t_prev / beta_prod_t) * (F32(1) - alpha_prod_t / alpha_prod_t_prev)

    def step(self, model_output, timestep, sample, eta=0.0, use_clipped_model_output=False,
             variance_noise=None):
        """Returns (prev_sample, pred_original_sample). `variance_noise` is diffusers' own
        argument of that name; it is used only when eta > 0."""
        if self.num_inference_steps is None:
            raise ValueError("Number of inference steps is 'None', you need to run 'set_timesteps' first")
        model_output = np.asarray(model_output, dtype=F32)
        sample = np.asarray(sample, dtype=F32)
        timestep = int(timestep)

        # 1. get previous step value (=t-1)
        prev_timestep = self.previous_timestep(timestep)

        # 2. compute alphas, betas
        alpha_prod_t = self.alphas_cumprod[timestep]
        alpha_prod_t_prev = self.alphas_cumprod[prev_timestep] if prev_timestep >= 0 else self.final_alpha_cumprod
        beta_prod_t = F32(1) - alpha_prod_t

        # 3. "predicted x_0" of formula (12) of arXiv 2010.02502
        if self.prediction_type == "epsilon":
            pred_original_sample = (sample - sqrt32(beta_prod_t) * model_output) / sqrt32(alpha_prod_t)
            pred_epsilon = model_output
        elif self.prediction_type == "sample":
            pred_original_sample = model_output
            pred_epsilon = (sample - sqrt32(alpha_prod_t) * pred_original_sample) / sqrt32(beta_prod_t)
        elif self.prediction_type == "v_prediction":
            pred_original_sample = sqrt32(alpha_prod_t) * sample - sqrt32(beta_prod_t) * model_output
            pred_epsilon = sqrt32(alpha_prod_t) * model_output + sqrt32(beta_prod_t) * sample
        else:
            raise ValueError(f"prediction_type {self.prediction_type}")

        # 4. clip "predicted x_0" (thresholding is not transcribed)
        if self.clip_sample:
            pred_original_sample = _clip(pred_original_sample, self.clip_sample_range)

        # 5. sigma_t(eta), formula (16)
        variance = self._get_variance(timestep, prev_timestep)
        std_dev_t = F32(eta) * sqrt32(variance)

        if use_clipped_model_output:
            # the pred_epsilon is always re-derived from the clipped x_0 in Glide
            pred_epsilon = (sample - sqrt32(alpha_prod_t) * pred_original_sample) / sqrt32(beta_prod_t)

        # 6. "direction pointing to x_t" of formula (12)
        pred_sample_direction = sqrt32(F32(1) - alpha_prod_t_prev - std_dev_t * std_dev_t) * pred_epsilon

        # 7. x_{t-1} without the random noise, formula (12)
        prev_sample = sqrt32(alpha_prod_t_prev) * pred_original_sample + pred_sample_direction

        if eta > 0:
            if variance_noise is None:
                raise ValueError("eta > 0: DDIM adds noise, pass variance_noise")
            variance_noise = np.asarray(variance_noise, dtype=F32)
            prev_sample = prev_sample + std_dev_t * variance_noise

        return prev_sample.astype(F32), np.asarray(pred_original_sample, dtype=F32)

    def add_noise(self, original_samples, noise, timestep):
        return _add_noise(self.alphas_cumprod, original_samples, noise, timestep)

    def get_velocity(self, sample, noise, timestep):
        return _get_velocity(self.alphas_cumprod, sample, noise, timestep)


# --------------------------------------------------------------------------------------------
# The fixture
# --------------------------------------------------------------------------------------------

VECTOR_LENGTH = 8

# (name, scheduler, config, num_inference_steps). Configs list every key the fixture records;
# the DDPM ones have no set_alpha_to_one / eta, which DDPMScheduler does not have.
CASES = [
    ("ddpm linear epsilon leading 50 (google/ddpm-cifar10-32 betas, clip_sample)", "ddpm",
     dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
          prediction_type="epsilon", clip_sample=True, clip_sample_range=1.0,
          timestep_spacing="leading", steps_offset=0, variance_type="fixed_small"), 50),
    ("ddpm scaled_linear v_prediction trailing 30 (non-uniform steps, last t > 0 adds noise)", "ddpm",
     dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
          prediction_type="v_prediction", clip_sample=False, clip_sample_range=1.0,
          timestep_spacing="trailing", steps_offset=0, variance_type="fixed_small"), 30),
    ("ddpm squaredcos_cap_v2 epsilon linspace 50 clip_sample range 1.5", "ddpm",
     dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="squaredcos_cap_v2",
          prediction_type="epsilon", clip_sample=True, clip_sample_range=1.5,
          timestep_spacing="linspace", steps_offset=0, variance_type="fixed_small"), 50),
    ("ddpm linear sample leading steps_offset 1, 20 steps (last t = 1 adds clamped noise)", "ddpm",
     dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
          prediction_type="sample", clip_sample=True, clip_sample_range=1.0,
          timestep_spacing="leading", steps_offset=1, variance_type="fixed_small"), 20),
    ("ddim linear epsilon eta 0 leading steps_offset 1, 50 (ddpm-cifar10-32 style, clip_sample)", "ddim",
     dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
          prediction_type="epsilon", clip_sample=True, clip_sample_range=1.0,
          timestep_spacing="leading", steps_offset=1, set_alpha_to_one=True, eta=0.0), 50),
    ("ddim scaled_linear epsilon eta 0 leading steps_offset 1 set_alpha_to_one false, 50 (SD 1.x)", "ddim",
     dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
          prediction_type="epsilon", clip_sample=False, clip_sample_range=1.0,
          timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False, eta=0.0), 50),
    ("ddim scaled_linear epsilon eta 1 leading steps_offset 1 set_alpha_to_one false, 20", "ddim",
     dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
          prediction_type="epsilon", clip_sample=False, clip_sample_range=1.0,
          timestep_spacing="leading", steps_offset=1, set_alpha_to_one=False, eta=1.0), 20),
    ("ddim scaled_linear v_prediction eta 0 trailing set_alpha_to_one false, 25 (SD 2.x v)", "ddim",
     dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
          prediction_type="v_prediction", clip_sample=False, clip_sample_range=1.0,
          timestep_spacing="trailing", steps_offset=0, set_alpha_to_one=False, eta=0.0), 25),
    ("ddim squaredcos_cap_v2 sample eta 0.5 linspace 10 clip_sample (uniform-stride prev_t)", "ddim",
     dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="squaredcos_cap_v2",
          prediction_type="sample", clip_sample=True, clip_sample_range=1.0,
          timestep_spacing="linspace", steps_offset=0, set_alpha_to_one=True, eta=0.5), 10),
]


def make_scheduler(kind, config):
    if kind == "ddpm":
        return DDPMScheduler(**config)
    cfg = dict(config)
    cfg.pop("eta")
    return DDIMScheduler(**cfg)


def step_indices(n):
    """The steps recorded: the first, the middle and the last of the N timesteps."""
    return sorted({0, n // 2, n - 1})


def vec(rng):
    return rng.standard_normal(VECTOR_LENGTH).astype(F32)


def floats(a):
    """float32 values as the Python floats (doubles) equal to them: exact in JSON, exact when
    read back as Float or as Double."""
    return [float(v) for v in np.asarray(a, dtype=F32)]


def build_case(case_index, name, kind, config, num_inference_steps):
    sched = make_scheduler(kind, config)
    sched.set_timesteps(num_inference_steps)
    timesteps = [int(t) for t in sched.timesteps]
    steps = []
    for j in step_indices(num_inference_steps):
        t = timesteps[j]
        rng = np.random.default_rng(1000 * (case_index + 1) + j)
        sample, model_output, noise = vec(rng), vec(rng), vec(rng)
        if kind == "ddpm":
            prev_sample, x0 = sched.step(model_output, t, sample, variance_noise=noise)
        else:
            prev_sample, x0 = sched.step(model_output, t, sample, eta=config["eta"], variance_noise=noise)
        steps.append({
            "t": t,
            "prev_t": sched.previous_timestep(t),
            "sample": floats(sample),
            "model_output": floats(model_output),
            "noise": floats(noise),
            "prev_sample": floats(prev_sample),
            "pred_original_sample": floats(x0),
        })
    rng = np.random.default_rng(1000 * (case_index + 1) + 999)
    add_noise = []
    for t in (timesteps[0], timesteps[-1]):
        original, noise = vec(rng), vec(rng)
        add_noise.append({
            "t": t,
            "original_samples": floats(original),
            "noise": floats(noise),
            "noisy_samples": floats(sched.add_noise(original, noise, t)),
        })
    ac = sched.alphas_cumprod
    return {
        "name": name,
        "scheduler": kind,
        "config": dict(config),
        "num_inference_steps": num_inference_steps,
        "timesteps": timesteps,
        "alphas_cumprod_head": floats(ac[:5]),
        "alphas_cumprod_tail": floats(ac[-5:]),
        "steps": steps,
        "add_noise": add_noise,
    }


def build_fixture():
    return [build_case(i, *c) for i, c in enumerate(CASES)]


def dumps(value, indent=0):
    """JSON with objects one key a line and lists of numbers on one line."""
    pad = "  " * indent
    if isinstance(value, dict):
        items = [f'{pad}  {json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [pad + "  " + dumps(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def diff(stored, derived, path="$"):
    """Paths where two parsed JSON values differ (exact comparison)."""
    if type(stored) is not type(derived):
        return [f"{path}: stored {stored!r}, derived {derived!r}"]
    if isinstance(stored, dict):
        out = []
        for k in sorted(set(stored) | set(derived)):
            if k not in stored or k not in derived:
                out.append(f"{path}.{k}: only in {'derived' if k in derived else 'stored'}")
            else:
                out += diff(stored[k], derived[k], f"{path}.{k}")
        return out
    if isinstance(stored, list):
        if len(stored) != len(derived):
            return [f"{path}: length {len(stored)} stored, {len(derived)} derived"]
        out = []
        for i, (a, b) in enumerate(zip(stored, derived)):
            out += diff(a, b, f"{path}[{i}]")
        return out
    return [] if stored == derived else [f"{path}: stored {stored!r}, derived {derived!r}"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="re-derive the fixture and compare it with the stored file (exit 1 on any difference)")
    ap.add_argument("--output", default=DEFAULT_FIXTURE, help="fixture path (default Tests/Fixtures/schedulers.json)")
    args = ap.parse_args(argv)

    fixture = build_fixture()
    if args.check:
        try:
            with open(args.output) as f:
                stored = json.load(f)
        except (OSError, ValueError) as e:
            print(f"FAIL cannot read {args.output}: {e}")
            print("0 passed, 1 failed")
            return 1
        passed = failed = 0
        if not isinstance(stored, list) or len(stored) != len(fixture):
            print(f"FAIL {args.output}: {len(stored) if isinstance(stored, list) else 'not a list of'} cases stored, "
                  f"{len(fixture)} derived")
            failed += 1
        for i, case in enumerate(fixture):
            other = stored[i] if isinstance(stored, list) and i < len(stored) else None
            problems = ["case missing"] if other is None else diff(other, case, f"[{i}]")
            if problems:
                failed += 1
                print(f"FAIL {case['name']}")
                for p in problems[:10]:
                    print(f"     {p}")
                if len(problems) > 10:
                    print(f"     ... {len(problems) - 10} more")
            else:
                passed += 1
                print(f"ok   {case['name']}")
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(dumps(fixture) + "\n")
    n_steps = sum(len(c["steps"]) for c in fixture)
    print(f"wrote {args.output}: {len(fixture)} cases, {n_steps} steps (diffusers {DIFFUSERS_VERSION} transcription, float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
