"""``edgeport train``: DS-CNN training on a labelled audio folder (every option of seed 004)."""

from __future__ import annotations

import argparse
import logging

HELP = "train a compact DS-CNN audio classifier on a folder of labelled recordings (QAT, linear probing)"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.families.audio.frontends import ALIASES, FRONTENDS, MAG_SCALES
    from edgeport.training.config import LOSSES, OPTIMIZERS
    from edgeport.training.data import default_num_workers

    d = p.add_argument_group("data")
    d.add_argument("--data-path-train", required=True, help="folder with one sub-folder per class "
                   "(noise/silence/background/other folders give all-zero labels)")
    d.add_argument("--max-samples", type=int, default=None, help="max files per class")
    d.add_argument("--upsample-ratio", type=float, default=0.5, help="minority class upsample ratio")
    d.add_argument("--val-split", type=float, default=0.2, help="validation split fraction")
    d.add_argument("--max-duration", type=float, default=60, help="max seconds to load per file")
    d.add_argument("--max-chunks-per-file", type=int, default=3, help="salient chunks per file open")
    d.add_argument("--num-workers", type=int, default=default_num_workers(),
                   help="data loading worker processes (0 = sequential)")
    d.add_argument("--cache-dir", default=None, help="decoded-audio cache folder, shared by runs and tuning "
                   "trials (default: memory only)")
    d.add_argument("--cache-memory-mb", type=float, default=1024, help="decoded audio kept in memory, all "
                   "processes together (0 = off)")
    a = p.add_argument_group("audio and frontend")
    a.add_argument("--sample-rate", type=int, default=24000, help="audio sample rate (Hz)")
    a.add_argument("--num-mels", type=int, default=64, help="mel bins")
    a.add_argument("--spec-width", type=int, default=256, help="spectrogram frames")
    a.add_argument("--fft-length", type=int, default=512, help="FFT window length")
    a.add_argument("--chunk-duration", type=float, default=3, help="chunk duration (s)")
    a.add_argument("--audio-frontend", default="hybrid", choices=FRONTENDS.names() + list(ALIASES),
                   help=f"model input; deprecated aliases {ALIASES}")
    a.add_argument("--mag-scale", default="pwl", choices=MAG_SCALES.names(), help="magnitude scaling")
    a.add_argument("--n-mfcc", type=int, default=20, help="MFCC coefficients (mfcc frontend)")
    a.add_argument("--frontend-trainable", action="store_true", help="make frontend weights trainable")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="dscnn", help="architecture from the audio model registry")
    m.add_argument("--embeddings-size", type=int, default=256, help="embedding channels before the head")
    m.add_argument("--alpha", type=float, default=1.0, help="width multiplier")
    m.add_argument("--depth-multiplier", type=int, default=1, help="block repeats per stage")
    m.add_argument("--no-se", dest="use_se", action="store_false", help="disable squeeze-excitation")
    m.add_argument("--se-reduction", type=int, default=8, help="SE channel reduction")
    m.add_argument("--no-inverted-residual", dest="use_inverted_residual", action="store_false",
                   help="plain depthwise-separable blocks")
    m.add_argument("--expansion-factor", type=int, default=2, help="inverted residual expansion")
    m.add_argument("--use-attention-pooling", action="store_true", help="attention pooling instead of GAP")
    m.add_argument("--dropout", type=float, default=0.5, help="dropout before the classifier")
    g = p.add_argument_group("augmentation")
    g.add_argument("--mixup-alpha", type=float, default=0.2, help="Dirichlet mixup alpha (0 disables)")
    g.add_argument("--mixup-probability", type=float, default=0.25, help="fraction of each batch mixed")
    g.add_argument("--no-spec-augment", dest="spec_augment", action="store_false", help="disable SpecAugment")
    g.add_argument("--freq-mask-max", type=int, default=8, help="max frequency mask (bins)")
    g.add_argument("--time-mask-max", type=int, default=25, help="max time mask (frames)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    o.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (adamw only)")
    o.add_argument("--loss", default="auto", choices=LOSSES, help="auto (BCE) or focal")
    o.add_argument("--focal-gamma", type=float, default=2.0)
    o.add_argument("--label-smoothing", type=float, default=0.1)
    o.add_argument("--grad-clip", type=float, default=1.0, help="max global gradient norm (0 = off)")
    o.add_argument("--no-class-weights", dest="class_weights", action="store_false",
                   help="disable balanced class weights")
    o.add_argument("--mixed-precision", action="store_true", help="float16 compute, float32 variables")
    o.add_argument("--batch-size", type=int, default=32)
    o.add_argument("--epochs", type=int, default=50)
    o.add_argument("--learning-rate", type=float, default=0.001)
    o.add_argument("--patience", type=int, default=10, help="early stopping patience (epochs)")
    o.add_argument("--seed", type=int, default=42)
    r = p.add_argument_group("checkpoint and modes")
    r.add_argument("--checkpoint-path", default="checkpoints/best_model.keras", help="output .keras path")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint and its train state")
    r.add_argument("--force", action="store_true",
                   help="replace an existing checkpoint and its files (without it, or --resume, they are kept)")
    r.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning of the trained checkpoint")
    r.add_argument("--linear-probe", action="store_true",
                   help="freeze the checkpoint's backbone and train a new head on this folder's classes")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    r.add_argument("--tune", action="store_true", help="run an Optuna search instead (as `edgeport tune`, study "
                   "in CHECKPOINT_DIR/tune/)")
    r.add_argument("--n-trials", type=int, default=20,
                   help="with --tune / in a study: trials of the whole study (every worker's, failed ones included)")


def run(args: argparse.Namespace) -> int:
    from edgeport.cli.args import config_from_args
    from edgeport.training.trainer import train

    result = train(config_from_args(args))
    print(f"model:   {result.model_path}")
    print(f"config:  {result.config_path}")
    print(f"epochs:  {result.epochs_run} (best {result.best_epoch})  val_loss {result.val_loss:.4f}  "
          f"val ROC-AUC {result.val_roc_auc:.4f}  {result.seconds:.0f} s")
    if result.skipped_files:
        print(f"skipped: {len(result.skipped_files)} unreadable file(s), e.g. {result.skipped_files[0][0]}")
    return 0
