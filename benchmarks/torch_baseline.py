"""The seed design in PyTorch: the baseline jaxdiar is measured against (benchmarks only).

Modules as in the design document: weight-norm TemporalBlocks with chomp, multi-head
attention + LayerNorm, bottleneck, VAD / OSD / embedding heads, classifier, similarity
head, and the multi-task loss with its Python loop over permutations (per example).
"""

import itertools

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


class Chomp1d(nn.Module):
  def __init__(self, size):
    super().__init__()
    self.size = size

  def forward(self, x):
    return x[:, :, :-self.size].contiguous()


class TemporalBlock(nn.Module):
  def __init__(self, n_in, n_out, k, dilation, dropout):
    super().__init__()
    pad = (k - 1) * dilation
    self.net = nn.Sequential(
        weight_norm(nn.Conv1d(n_in, n_out, k, padding=pad, dilation=dilation)), Chomp1d(pad),
        nn.ReLU(), nn.Dropout(dropout),
        weight_norm(nn.Conv1d(n_out, n_out, k, padding=pad, dilation=dilation)), Chomp1d(pad),
        nn.ReLU(), nn.Dropout(dropout))
    self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None

  def forward(self, x):
    res = x if self.downsample is None else self.downsample(x)
    return F.relu(self.net(x) + res)


def _head(n_in, hidden, n_out, dropout=0.2):
  return nn.Sequential(nn.Conv1d(n_in, hidden, 3, padding=1), nn.ReLU(), nn.BatchNorm1d(hidden),
                       nn.Dropout(dropout), nn.Conv1d(hidden, n_out, 1))


class SeedModel(nn.Module):
  def __init__(self, input_dim=771, channels=(256, 256, 256, 512, 512), num_speakers=4,
               embedding_dim=256, num_classes=4, dropout=0.2):
    super().__init__()
    self.input_norm = nn.BatchNorm1d(input_dim)
    blocks, n_in = [], input_dim
    for i, c in enumerate(channels):
      blocks.append(TemporalBlock(n_in, c, 3, 2 ** i, dropout))
      n_in = c
    self.tcn = nn.Sequential(*blocks)
    self.attention = nn.MultiheadAttention(n_in, 8, batch_first=True)
    self.norm = nn.LayerNorm(n_in)
    self.bottleneck = nn.Conv1d(n_in, 256, 1)
    self.bottleneck_norm = nn.BatchNorm1d(256)
    self.vad = _head(256, 128, num_speakers)
    self.osd = _head(256, 128, 1)
    self.embedding = _head(256, 256, embedding_dim, dropout)
    self.classifier = nn.Sequential(nn.Linear(embedding_dim, 512), nn.ReLU(), nn.Dropout(dropout),
                                    nn.Linear(512, num_classes))
    self.similarity = nn.Sequential(nn.Linear(2 * embedding_dim, 256), nn.ReLU(),
                                    nn.Dropout(dropout), nn.Linear(256, 1))

  def forward(self, feats):  # [B, D, T]
    x = self.tcn(self.input_norm(feats))
    y = x.transpose(1, 2)
    a, _ = self.attention(y, y, y, need_weights=False)
    x = self.norm(y + a).transpose(1, 2)
    x = F.relu(self.bottleneck_norm(self.bottleneck(x)))
    vad = self.vad(x).transpose(1, 2)                      # [B, T, S]
    osd = self.osd(x)[:, 0]                                # [B, T]
    emb = self.embedding(x).transpose(1, 2)                # [B, T, E]
    w = torch.sigmoid(vad)
    spk_emb = torch.einsum("bts,bte->bse", w, emb) / (w.sum(1)[..., None] + 1e-6)
    return vad, osd, spk_emb, self.classifier(spk_emb)


def seed_loss(model, vad, osd, spk_emb, spk_logits, activity, overlap, ids):
  """The design's multi-task loss: PIT by a loop over permutations (per example)."""
  s = vad.shape[-1]
  per_perm = []
  for perm in itertools.permutations(range(s)):
    per_perm.append(F.binary_cross_entropy_with_logits(
        vad, activity[:, :, list(perm)], reduction="none").mean(dim=(1, 2)))
  stacked = torch.stack(per_perm)                          # [P, B]
  vad_loss, best = stacked.min(0)
  perms = torch.tensor(list(itertools.permutations(range(s))), device=best.device)[best]  # [B, S]
  bce = F.binary_cross_entropy_with_logits(osd, overlap, reduction="none")
  p_t = torch.exp(-bce)
  alpha_t = torch.where(overlap == 1, 0.75, 0.25)
  osd_loss = (alpha_t * (1 - p_t) ** 2 * bce).mean()
  probs = torch.sigmoid(vad)
  consistency = ((probs[:, 1:] - probs[:, :-1]) ** 2).mean()
  matched_ids = torch.gather(ids, 1, perms)
  valid = (matched_ids >= 0) & (matched_ids < spk_logits.shape[-1])
  ce = F.cross_entropy(spk_logits.reshape(-1, spk_logits.shape[-1]),
                       matched_ids.clamp(min=0).reshape(-1), reduction="none")
  speaker = (ce * valid.reshape(-1)).sum() / valid.sum().clamp(min=1)
  flat = spk_emb.reshape(-1, spk_emb.shape[-1])
  n = flat.shape[0]
  pairs = torch.cat([flat[:, None].expand(n, n, -1), flat[None].expand(n, n, -1)], -1)
  same = (matched_ids.reshape(-1)[:, None] == matched_ids.reshape(-1)[None]).float()
  sim = F.binary_cross_entropy_with_logits(model.similarity(pairs)[..., 0], same)
  return vad_loss.mean() + osd_loss + 0.1 * consistency + 0.5 * speaker + 0.1 * sim
