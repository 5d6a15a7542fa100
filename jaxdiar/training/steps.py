"""The pure training functions: state, optimizer, train and eval steps.

Everything here is a pure function of arrays and configs, jit- and shard-friendly, with no
data, checkpoint or logging dependencies (so benchmarks and other loops can use the step
alone). The loop around it is `jaxdiar.training.trainer`.
"""

import flax
import jax
import jax.numpy as jnp
import optax

from jaxdiar.core import features as features_lib
from jaxdiar.core import losses
from jaxdiar.core import model as model_lib


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


# ------------------------------------------------------------------------- optimizer


def param_group(path: tuple[str, ...]) -> str:
  """Learning-rate group of a parameter: the front end and TCN, attention, or the heads."""
  top = path[0]
  if top.startswith("tcn_") or top == "input_norm":
    return "tcn"
  if top.startswith("attention"):
    return "attention"
  return "heads"


def trained(trainable: tuple[str, ...], path: tuple[str, ...]) -> bool:
  """Whether the variable at `path` is trained: all are when `trainable` (top-level module
  names, `config.train.trainable`) is empty."""
  return not trainable or path[0] in trainable


def check_trainable(trainable, params) -> None:
  unknown = sorted(set(trainable) - set(params))
  if unknown:
    raise ValueError(f"train.trainable: no module {', '.join(unknown)} in the model; its "
                     f"modules: {', '.join(sorted(params))}")


def keep_frozen_stats(trainable, new_stats: dict, old_stats: dict) -> dict:
  """BatchNorm statistics after a step: the trained modules' updated, the frozen ones' kept."""
  if not trainable:
    return new_stats
  return {name: new_stats[name] if name in trainable else old_stats[name] for name in new_stats}


def make_optimizer(tcfg, learning_rate=None) -> optax.GradientTransformation:
  """AdamW + one-cycle cosine schedule per group, global-norm clipping, accumulation; the
  modules outside `tcfg.trainable` (when it names any) get no update at all.

  `learning_rate`, when given (a number or a traced value, e.g. under
  `optax.inject_hyperparams`), is the base rate in place of the step schedule.
  """
  def group_tx(multiplier):
    if learning_rate is not None:
      return optax.adamw(learning_rate * multiplier, weight_decay=tcfg.weight_decay)
    schedule = optax.cosine_onecycle_schedule(
        tcfg.num_steps, tcfg.learning_rate * multiplier, pct_start=tcfg.pct_start)
    return optax.adamw(schedule, weight_decay=tcfg.weight_decay)

  groups = {g: group_tx(m) for g, m in dict(tcfg.lr_multipliers).items()}
  trainable = tuple(tcfg.get("trainable", ()))
  def labels(params):
    check_trainable(trainable, params)
    return flax.traverse_util.path_aware_map(
        lambda path, _: param_group(path) if trained(trainable, path) else "frozen", params)
  groups["frozen"] = optax.set_to_zero()
  tx = optax.chain(optax.clip_by_global_norm(tcfg.grad_clip_norm),
                   optax.multi_transform(groups, labels))
  if tcfg.grad_accum_steps > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=tcfg.grad_accum_steps)
  return tx


def learning_rate(tcfg, step: int) -> float:
  """The base (multiplier 1) learning rate at optimizer step `step`."""
  return float(optax.cosine_onecycle_schedule(tcfg.num_steps, tcfg.learning_rate,
                                              pct_start=tcfg.pct_start)(step))


# ------------------------------------------------------------------------ pure steps


def init_state(rng, *, model, tx, num_features: int) -> TrainState:
  variables = model_lib.init_variables(model, rng, num_features)
  return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                    batch_stats=variables["batch_stats"],
                    opt_state=tx.init(variables["params"]))


def _forward(params, batch_stats, batch, rng, *, model, config, train: bool):
  # A batch may carry precomputed features [B, D, T] instead of raw audio.
  feats = (batch["features"] if "features" in batch
           else features_lib.extract(batch["audio"], config.features, batch.get("mics"),
                                     batch.get("mic_mask")))
  variables = {"params": params, "batch_stats": batch_stats}
  if train:
    out, updates = model.apply(variables, feats, train=True, rngs={"dropout": rng},
                               mutable=["batch_stats"])
    return out, updates["batch_stats"]
  return model.apply(variables, feats, train=False), batch_stats


def _pair_logits(params, emb, rng, *, model, train: bool):
  """Similarity logits of every pair of local embeddings of the batch: [B*S, B*S]."""
  flat = emb.reshape(-1, emb.shape[-1])
  n = flat.shape[0]
  a = jnp.broadcast_to(flat[:, None], (n, n, flat.shape[-1]))
  b = jnp.broadcast_to(flat[None, :], (n, n, flat.shape[-1]))
  return model.apply({"params": params}, a, b, train, method=model_lib.DiarizationTCN.similarity,
                     rngs={"dropout": rng} if train else None)


def train_step(state: TrainState, batch, rng, *, model, tx, config):
  """One optimizer (micro-)step. Non-finite loss or gradients leave the state unchanged and
  report finite=0."""
  rng = jax.random.fold_in(rng, state.step)
  drop_rng, pair_rng = jax.random.split(rng)

  def loss_fn(params):
    out, new_stats = _forward(params, state.batch_stats, batch, drop_rng, model=model,
                              config=config, train=True)
    pairs = _pair_logits(params, out["spk_emb"], pair_rng, model=model, train=True)
    total, terms, _ = losses.multitask_loss(out, batch, config.loss, pairs)
    return total, (terms, new_stats)

  (_, (terms, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(terms["total"]) & jnp.isfinite(grad_norm)
  new_stats = keep_frozen_stats(tuple(config.train.get("trainable", ())), new_stats,
                                state.batch_stats)
  new = TrainState(step=state.step + 1, params=params, batch_stats=new_stats,
                   opt_state=opt_state)
  keep = lambda n, o: jnp.where(finite, n, o)
  new = jax.tree.map(keep, new, state)
  metrics = {f"loss/{k}": v for k, v in terms.items()}
  metrics.update(grad_norm=grad_norm, param_norm=optax.tree.norm(params),
                 finite=finite.astype(jnp.float32))
  return new, metrics


def eval_step(state: TrainState, batch, *, model, config):
  """Per-example losses and the probabilities the dev metrics need (no dropout)."""
  out, _ = _forward(state.params, state.batch_stats, batch, None, model=model, config=config,
                    train=False)
  activity = batch["activity"].astype(jnp.float32)
  vad_loss, perm = losses.pit_bce(out["vad"], activity)
  osd_loss = losses.focal_bce(out["osd"], batch["overlap"], config.loss.focal_gamma,
                              config.loss.focal_alpha)
  return dict(vad=jax.nn.sigmoid(out["vad"]), osd=jax.nn.sigmoid(out["osd"]), perm=perm,
              loss=config.loss.vad_weight * vad_loss + config.loss.osd_weight * osd_loss,
              vad_loss=vad_loss, osd_loss=osd_loss)


def dict_with(cfg, **overrides):
  """A copy of a ConfigDict with some fields replaced."""
  cfg = cfg.copy_and_resolve_references()
  with cfg.unlocked():
    for k, v in overrides.items():
      cfg[k] = v
  return cfg
