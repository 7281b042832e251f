"""A trained object detector for the papers that take detections (Arnab & Torr 2017 §3.2, §4.1:
R-FCN's detections, the detector fixed while the instance network trains).

A torchvision Faster R-CNN (Ren et al. 2015) on the book's stand-in-pretrained ResNet-50
(:func:`~instseg_lib.pretrain.initialise_backbone`; ImageNet weights where they exist for the
width), trained on a twin's boxes. It is the honest stand-in for the paper's R-FCN: the
controlled detector (:mod:`instseg_lib.detections`) sets error rates by hand, this one makes
the errors a trained detector makes. Its output is a COCO results file
(:func:`~instseg_lib.detections.write_detections`), the same format a user feeds from any
detector on real data (:func:`~instseg_lib.detections.read_detections`).

Choices (ours):

- **Disjoint training set**: the SBD twin's train split, generated apart from the VOC twin's
  train and val images, so a detector's boxes are as good on the images the instance network
  trains on as on those it is tested on (the issue's warning: a detector trained on the
  instance-training images gives near-perfect boxes there).
- **Head**: a single feature map at output stride 16 (no FPN), anchors of 16-128 px at
  aspect ratios 0.5, 1, 2 for the twin's 128 px images, 7 x 7 RoIAlign, torchvision's
  two-layer box head at a width scaled like the trunk (16 x width: torchvision's 1,024 at
  width 64) on a 1 x 1 reduction of the trunk's features to 8 x width channels (CPU
  RoIAlign's backward dominated the step otherwise), 64 sampled RoIs per image and 600 / 300 proposals after NMS in training /
  test (torchvision: 512, 2,000 / 1,000; the twin's images are ~16x smaller than COCO's);
  images are not resized (``min_size`` = the profile's image size).
- **Batch norm** stays frozen (batch 4; detection practice).
- **Optimiser**: the book's recipe (Adam at the profile's rate / 10: detection heads on a
  pretrained trunk), random horizontal flips.
- Detections with score >= 0.05 are written (torchvision's default); the instance network's
  own selection (score >= 0.5, NMS 0.3, at most 30) follows when they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import open_dataset
from ..data.registry import dataset_label
from ..detections import Detection, read_detections, write_detections
from ..experiments import Result, RunContext, load_checkpoint, run_experiment
from ..models.backbones import ScaledResNet
from ..pretrain import initialise_backbone
from ..profiles import Profile, get_profile
from ..train import TrainConfig, progress_enabled, train
from .common import dataset_fingerprint_of, flip_boxes, loss_record, recipe_settings, rgb_tensor

PAPER = "detector"


@dataclass(frozen=True)
class DetectorConfig:
    """One Faster R-CNN trained on ``dataset``'s train boxes."""

    dataset: str
    profile: str
    width: int
    image_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    depth: int = 50
    #: The head's sizes, in the config so that a changed architecture changes the hash (a
    #: cached checkpoint of another architecture would not load): the 1 x 1 reduction before
    #: RoIAlign and the box head, as multiples of the width; sampled RoIs per image.
    neck_factor: int = 8
    head_factor: int = 16
    rois_per_image: int = 64
    score_threshold: float = 0.05
    seed: int = 0

    @property
    def name(self) -> str:
        return f"frcnn{self.depth}-{self.dataset}" + (f"-seed{self.seed}" if self.seed else "")


@dataclass(frozen=True)
class DetectionsConfig:
    """The detections of a trained detector on one split of a twin, as a COCO results file."""

    detector: DetectorConfig
    dataset: str
    split: str
    n_images: int | None

    @property
    def name(self) -> str:
        return f"dets-{self.detector.name}-on-{self.dataset}-{self.split}"


def detector_config(profile: Profile | str, dataset: str = "sbd", **overrides: Any) -> DetectorConfig:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    rs = recipe_settings(p)
    cfg = DetectorConfig(dataset=dataset, profile=p.name, width=p.width, image_size=p.image_size,
                         steps=2 * p.train_steps, batch_size=max(2, p.batch_size // 2), lr=rs["lr"] / 10,
                         optimizer=rs["optimizer"], warmup_steps=rs["warmup_steps"])
    return replace(cfg, **overrides) if overrides else cfg


def detections_config(detector: DetectorConfig, dataset: str, split: str) -> DetectionsConfig:
    p = get_profile(detector.profile)
    return DetectionsConfig(detector=detector, dataset=dataset, split=split,
                            n_images=p.eval_subset if split == "val" else None)


class TwinDetector(nn.Module):
    """Faster R-CNN on a :class:`~instseg_lib.models.backbones.ScaledResNet` (stride 16)."""

    def __init__(self, cfg: DetectorConfig, num_classes: int) -> None:
        super().__init__()
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
        from torchvision.ops import MultiScaleRoIAlign

        trunk = ScaledResNet(cfg.depth, cfg.width, output_stride=16)
        self.backbone_ref = trunk  # the module FasterRCNN holds inside (initialised by the recipe)
        # a 1x1 reduction to 8 x width channels before RoIAlign: torchvision's CPU RoIAlign
        # backward on the trunk's 32 x width channels took 54% of a training step
        backbone = nn.Sequential(trunk, nn.Conv2d(32 * cfg.width, cfg.neck_factor * cfg.width, 1),
                                 nn.ReLU(inplace=True))
        backbone.out_channels = cfg.neck_factor * cfg.width
        anchors = AnchorGenerator(sizes=((16, 32, 64, 128),), aspect_ratios=((0.5, 1.0, 2.0),))
        rep = cfg.head_factor * cfg.width  # torchvision's 1,024 at full width 64
        self.net = FasterRCNN(backbone, rpn_anchor_generator=anchors,
                              box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
                              box_head=TwoMLPHead(backbone.out_channels * 7 * 7, rep),
                              box_predictor=FastRCNNPredictor(rep, num_classes),
                              box_batch_size_per_image=cfg.rois_per_image, rpn_post_nms_top_n_train=600,
                              rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500,
                              rpn_post_nms_top_n_test=300, min_size=cfg.image_size,
                              max_size=2 * cfg.image_size, box_score_thresh=cfg.score_threshold,
                              image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])

    def train(self, mode: bool = True) -> "TwinDetector":
        super().train(mode)
        for m in self.modules():  # frozen batch-norm statistics (batch of a few images)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        return self.net(images, targets)


def _image(sample) -> torch.Tensor:
    """0..1 RGB: the detector normalises inside (GeneralizedRCNNTransform)."""
    return rgb_tensor(sample.image).div_(255.0)


class _BoxSet(torch.utils.data.Dataset):
    def __init__(self, base) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        s = self.base[i]
        img = _image(s)
        boxes = np.asarray(s.boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(s.instance_classes, dtype=np.int64).reshape(-1)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, labels = boxes[keep], labels[keep]
        if bool(torch.rand(()) < 0.5):  # train() seeds torch per sample
            img = img.flip(-1)
            boxes = flip_boxes(boxes, img.shape[-1]).astype(np.float32)
        return img, {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}


def _collate(items):
    return [it[0] for it in items], [it[1] for it in items]


def _loss(model, batch):
    images, targets = batch
    return sum(model(images, targets).values())


def _train(cfg: DetectorConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(ds)
    model = TwinDetector(cfg, ds.num_classes)
    ctx.notes["init"] = initialise_backbone(model.backbone_ref, cfg.profile, f"resnet{cfg.depth}")
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, optimizer=cfg.optimizer,
                       warmup_steps=cfg.warmup_steps, weight_decay=1e-4, checkpoint_every=prof.checkpoint_every,
                       divergence_factor=0.0)
    hist = train(model, _BoxSet(ds), _loss, tcfg, checkpoint_path=ctx.checkpoint_path, device=ctx.device,
                 collate_fn=_collate, desc=cfg.name)
    return {**loss_record(hist["losses"]), "num_classes": ds.num_classes, "class_names": list(ds.class_names)}


def run_detector(cfg: DetectorConfig, force: bool | None = None) -> Result:
    """Train (or load from the cache) one detector."""
    return run_experiment(cfg, _train, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.seed, force=force)


def load_detector(cfg: DetectorConfig, device: str = "cpu") -> TwinDetector:
    res = run_detector(cfg)
    model = TwinDetector(cfg, int(res.metrics["num_classes"]))
    model.load_state_dict(load_checkpoint(res.path.with_suffix(".pt"), map_location="cpu")["model"])
    return model.to(device).eval()


def _split(cfg: DetectionsConfig):
    ds = open_dataset(cfg.dataset, cfg.split, profile=cfg.detector.profile)
    n = len(ds) if cfg.n_images is None else min(cfg.n_images, len(ds))
    return ds, n


def results_file(res: Result) -> Path:
    """The COCO results file of a :func:`run_detections` result."""
    return res.path.with_suffix(".detections.json")


def _detect(cfg: DetectionsConfig, ctx: RunContext) -> dict[str, Any]:
    from tqdm import tqdm

    from ..metrics.masks import box_iou_matrix as biou

    ds, n = _split(cfg)
    ctx.dataset_fingerprint = dataset_fingerprint_of(ds)
    model = load_detector(cfg.detector, ctx.device)
    out: dict[Any, list[Detection]] = {}
    hits = n_gt = n_conf = 0
    with torch.no_grad():
        for i in tqdm(range(n), desc=cfg.name, disable=not progress_enabled(), leave=False):
            s = ds[i]
            pred = model([_image(s).to(ctx.device)])[0]
            h, w = s.size
            dets = []
            for b, l, sc in zip(pred["boxes"].cpu().numpy(), pred["labels"].cpu().numpy(), pred["scores"].cpu().numpy()):
                x0, y0, x1, y1 = (float(v) for v in b)
                x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
                if x1 - x0 >= 1 and y1 - y0 >= 1:
                    dets.append(Detection(int(l), float(min(max(sc, 0.0), 1.0)), (x0, y0, x1, y1)))
            out[s.image_id] = dets
            # recall at IoU 0.5 of the confident detections (score >= 0.5), the selection the CRF uses
            gt = np.asarray(s.boxes, float).reshape(-1, 4)
            conf = [d for d in dets if d.score >= 0.5]
            n_conf += len(conf)
            n_gt += len(gt)
            if len(gt) and conf:
                iou = biou(gt, np.array([d.box for d in conf]))
                same = np.asarray(s.instance_classes)[:, None] == np.array([d.class_id for d in conf])[None]
                hits += int(((iou >= 0.5) & same).any(1).sum())
    write_detections(ctx.result_path.with_suffix(".detections.json"), out)
    return {"n_images": n, "n_detections": sum(len(v) for v in out.values()), "n_confident": n_conf,
            "recall_0.5_confident": 100.0 * hits / max(n_gt, 1), "n_gt": n_gt}


def run_detections(cfg: DetectionsConfig, force: bool | None = None) -> Result:
    """Run (or load) a trained detector on one split; the COCO results file sits beside the result."""
    res = run_experiment(cfg, _detect, paper=PAPER, name=cfg.name, profile=cfg.detector.profile,
                         seed=cfg.detector.seed, force=force)
    if not results_file(res).is_file():  # the result is cached but its file was removed: redo both
        res = run_experiment(cfg, _detect, paper=PAPER, name=cfg.name, profile=cfg.detector.profile,
                             seed=cfg.detector.seed, force=True)
    return res


def load_detections(cfg: DetectionsConfig, res: Result | None = None) -> dict[Any, list[Detection]]:
    """The detections of ``cfg`` per image id, read back (and checked) from the results file
    (of ``res``, its :func:`run_detections` result, when the caller has it)."""
    res = run_detections(cfg) if res is None else res
    ds, n = _split(cfg)
    sizes = {ds[i].image_id: ds[i].size for i in range(n)}
    return read_detections(results_file(res), sizes, num_classes=ds.num_classes)


def detector_frame(profile: Profile | str, dataset: str = "voc"):
    """The trained detector at a glance: its training loss, and on ``dataset``'s val split the
    detections per image and the recall at box IoU 0.5 of the confident ones (score >= 0.5)."""
    import pandas as pd

    cfg = detector_config(profile)
    tr = run_detector(cfg).metrics
    dm = run_detections(detections_config(cfg, dataset, "val")).metrics
    n = max(dm["n_images"], 1)
    row = {"trained on": dataset_label(cfg.dataset, "train"), "steps": cfg.steps,
           "loss at start": round(float(tr["initial_loss"]), 3), "loss at end": round(float(tr["final_loss"]), 3),
           "detections / image": round(dm["n_detections"] / n, 2),
           "confident (>= 0.5) / image": round(dm["n_confident"] / n, 2),
           "objects / image": round(dm["n_gt"] / n, 2),
           "recall@0.5 of confident %": round(float(dm["recall_0.5_confident"]), 2)}
    return pd.DataFrame([row], index=pd.Index([cfg.name], name="detector"))
