"""Numbers the papers report, for the tables and figures that put ours beside theirs: every
transcribed table of the book, in one place, read by one parser.

- Islam, Jia & Bruce, "How much position information do convolutional neural networks encode?",
  ICLR 2020: Table 1 (PosENet on the raw image and on VGG16 and ResNet-152 features), Tables 2-3
  (readout depth and kernel; per-stage readouts), Table 4 (padding the readout and VGG16), Tables
  5-6 (dense tasks with and without padding; position in networks trained for them). The paper
  prints the Spearman correlation of a constant prediction as .0 (written 0.0 here).
- Islam, Kowal et al., "Global pooling, more than meets the eye", ICCV 2021: Table 1 (GAPNet and
  PermuteNet), Table 2 (AugShift), and the region attacks of Sec. 4.2.2-4.2.3 (Figs. 4 and 6).
"""

from __future__ import annotations

import pandas as pd

_TABLE1_TEXT = """
pattern encoder natural_spc natural_mae black_spc black_mae white_spc white_mae noise_spc noise_mae
H  posenet .012 .251 .0 .251 .0 .251 .001 .251
H  vgg16   .742 .149 .751 .164 .873 .157 .591 .173
H  resnet  .933 .084 .987 .080 .994 .078 .973 .077
V  posenet .131 .248 .0 .251 .0 .251 .053 .250
V  vgg16   .816 .129 .846 .146 .927 .138 .771 .150
V  resnet  .951 .083 .978 .069 .979 .072 .968 .074
G  posenet -.001 .233 .0 .186 .0 .186 -.034 .214
G  vgg16   .814 .109 .842 .123 .898 .116 .762 .129
G  resnet  .936 .070 .953 .068 .964 .064 .971 .055
HS posenet -.001 .712 -.055 .704 .0 .704 .023 .710
HS vgg16   .405 .556 .532 .583 .576 .574 .375 .573
HS resnet  .534 .528 .566 .518 .562 .515 .471 .530
VS posenet .006 .723 .081 .709 .081 .709 .018 .714
VS vgg16   .374 .567 .538 .575 .437 .578 .526 .566
VS resnet  .520 .537 .574 .523 .593 .514 .523 .545
"""


def iclr2020_table1() -> pd.DataFrame:
    """ICLR 2020 Table 1 in tidy form: columns pattern, encoder, test_set, metric, value.

    ``encoder`` is ``posenet`` (the raw image), ``vgg16`` or ``resnet`` (ResNet-152);
    ``test_set`` is natural (PASCAL-S), black, white or noise; ``metric`` is spc or mae.
    """
    wide = _parse(_TABLE1_TEXT)
    tidy = wide.melt(id_vars=["pattern", "encoder"], var_name="column", value_name="value")
    tidy[["test_set", "metric"]] = tidy.pop("column").str.split("_", expand=True)
    return tidy.astype({"value": float})[["pattern", "encoder", "test_set", "metric", "value"]]


# ICLR 2020 Table 2 (PASCAL-S, SPC / MAE): (a) 1-3 readout layers of 3x3; (b) one layer of k x k.
_TABLE2_TEXT = """
pattern source  ablation value spc mae
H  posenet layers 1 .012 .251
H  posenet layers 2 .056 .250
H  posenet layers 3 .055 .250
H  vgg16   layers 1 .742 .149
H  vgg16   layers 2 .797 .128
H  vgg16   layers 3 .830 .117
G  posenet layers 1 -.001 .233
G  posenet layers 2 .067 .187
G  posenet layers 3 .126 .186
G  vgg16   layers 1 .814 .109
G  vgg16   layers 2 .828 .105
G  vgg16   layers 3 .835 .104
HS posenet layers 1 -.001 .712
HS posenet layers 2 -.006 .628
HS posenet layers 3 .003 .628
HS vgg16   layers 1 .405 .556
HS vgg16   layers 2 .483 .538
HS vgg16   layers 3 .491 .540
H  posenet kernel 1 .013 .251
H  posenet kernel 3 .012 .251
H  posenet kernel 7 .060 .250
H  vgg16   kernel 1 .542 .196
H  vgg16   kernel 3 .742 .149
H  vgg16   kernel 7 .828 .120
G  posenet kernel 1 .017 .188
G  posenet kernel 3 -.001 .233
G  posenet kernel 7 .068 .187
G  vgg16   kernel 1 .724 .127
G  vgg16   kernel 3 .814 .109
G  vgg16   kernel 7 .816 .111
HS posenet kernel 1 -.004 .628
HS posenet kernel 3 -.001 .723
HS posenet kernel 7 .002 .628
HS vgg16   kernel 1 .317 .576
HS vgg16   kernel 3 .405 .556
HS vgg16   kernel 7 .487 .532
"""

# ICLR 2020 Table 3 (PASCAL-S): VGG16 readout on one stage f1..f5, or on all of them.
_TABLE3_TEXT = """
pattern stage spc mae
H f1 .101 .249
H f2 .344 .225
H f3 .472 .203
H f4 .610 .181
H f5 .657 .177
H all .742 .149
G f1 .241 .182
G f2 .404 .168
G f3 .588 .146
G f4 .653 .138
G f5 .693 .135
G all .814 .109
"""


def _parse(text: str) -> pd.DataFrame:
    rows = [line.split() for line in text.strip().splitlines()]
    return pd.DataFrame(rows[1:], columns=rows[0])


def iclr2020_table2() -> pd.DataFrame:
    """ICLR 2020 Table 2: columns pattern, source, ablation (layers|kernel), value, spc, mae."""
    return _parse(_TABLE2_TEXT).astype({"value": int, "spc": float, "mae": float})


def iclr2020_table3() -> pd.DataFrame:
    """ICLR 2020 Table 3: columns pattern, stage (f1..f5, all), spc, mae."""
    return _parse(_TABLE3_TEXT).astype({"spc": float, "mae": float})


# ICLR 2020 Table 4: the readout on the raw image with zero padding 0, 1 and 2, and VGG16 with and
# without its zero padding, on natural images (PASCAL-S). The text extraction of the paper garbles
# one cell (PosENet, H, MAE); the same readout's row of Table 1 gives .251, the value used here.
_TABLE4_TEXT = """
pattern experiment setting spc mae
H  raw_readout zero_padding_0 .012 .251
H  raw_readout zero_padding_1 .274 .239
H  raw_readout zero_padding_2 .397 .223
H  vgg16_padding zero .742 .149
H  vgg16_padding none .381 .223
G  raw_readout zero_padding_0 -.001 .233
G  raw_readout zero_padding_1 .205 .184
G  raw_readout zero_padding_2 .380 .177
G  vgg16_padding zero .814 .109
G  vgg16_padding none .359 .174
HS raw_readout zero_padding_0 -.001 .712
HS raw_readout zero_padding_1 .148 .608
HS raw_readout zero_padding_2 .214 .595
HS vgg16_padding zero .405 .556
HS vgg16_padding none .011 .628
"""
# ICLR 2020 Table 5: saliency (F-measure, MAE) and VOC 2012 val mIoU (%) of VGG16 trained from
# scratch with and without zero padding.
_TABLE5_TEXT = """
padding test_set metric value
none ecssd f_measure .36
none pascal-s f_measure .32
none dut-omron f_measure .25
zero ecssd f_measure .78
zero pascal-s f_measure .66
zero dut-omron f_measure .63
none ecssd mae .48
none pascal-s mae .48
none dut-omron mae .48
zero ecssd mae .17
zero pascal-s mae .21
zero dut-omron mae .18
none voc2012-val miou_% 12.3
zero voc2012-val miou_% 23.1
"""
# ICLR 2020 Table 6: PosENet on VGG16 trained for classification (ImageNet), saliency (VGG-SOD)
# and segmentation (VGG-SS); natural = PASCAL-S.
_TABLE6_TEXT = """
pattern trained_for natural_spc natural_mae black_spc black_mae white_spc white_mae noise_spc noise_mae
H  classification .742 .149 .751 .164 .873 .157 .591 .173
H  saliency       .969 .055 .857 .099 .938 .087 .965 .060
H  segmentation   .982 .038 .990 .030 .985 .032 .985 .033
G  classification .814 .109 .842 .123 .898 .116 .762 .129
G  saliency       .948 .067 .904 .086 .907 .085 .912 .077
G  segmentation   .971 .055 .984 .050 .989 .046 .982 .051
HS classification .405 .556 .532 .583 .576 .574 .375 .573
HS saliency       .667 .476 .699 .506 .709 .482 .668 .489
HS segmentation   .810 .430 .802 .426 .810 .426 .789 .428
"""


def iclr2020_table4() -> pd.DataFrame:
    """ICLR 2020 Table 4: columns pattern, experiment ("raw readout" | "vgg16 padding"), setting
    ("zero padding 0".."zero padding 2" | "zero", "none"), spc, mae (natural images)."""
    table = _parse(_TABLE4_TEXT).astype({"spc": float, "mae": float})
    for column in ("experiment", "setting"):
        table[column] = table[column].str.replace("_", " ")
    return table


def iclr2020_table5() -> pd.DataFrame:
    """ICLR 2020 Table 5: columns padding (zero|none), test_set, metric (f_measure, mae,
    miou_%), value."""
    return _parse(_TABLE5_TEXT).astype({"value": float})


def iclr2020_table6() -> pd.DataFrame:
    """ICLR 2020 Table 6, tidy: pattern, trained_for (classification = ImageNet VGG16, saliency =
    VGG-SOD, segmentation = VGG-SS), test_set (natural = PASCAL-S), metric (spc|mae), value."""
    tidy = _parse(_TABLE6_TEXT).melt(id_vars=["pattern", "trained_for"], var_name="column")
    tidy[["test_set", "metric"]] = tidy.pop("column").str.split("_", expand=True)
    return tidy.astype({"value": float})


# ICCV 2021 Table 1: test accuracy (%) of location classification (grids 3, 5, 7) and image
# classification (grids 3, 5, 7), ResNet-18, CIFAR-10.
_ICCV_TABLE1_TEXT = """
padding   network    location_3 location_5 location_7 image_3 image_5 image_7
zero      gapnet     100 100 100 82.6 82.4 82.1
zero      permutenet 78.8 37.8 21.4 73.6 72.2 69.9
reflect   gapnet     100 100 100 83.8 83.4 82.9
reflect   permutenet 78.3 36.3 23.2 71.1 71.4 65.7
replicate gapnet     100 100 100 83.1 82.9 82.8
replicate permutenet 78.3 40.1 23.6 72.0 71.5 71.4
"""
# ICCV 2021 Table 2: top-1 and Cons.8 (%) on CIFAR-100, CIFAR-10 and ImageNet (there also Cons.16).
_ICCV_TABLE2_TEXT = """
model    cifar100_top1 cifar100_cons8 cifar10_top1 cifar10_cons8 imagenet_top1 imagenet_cons8 imagenet_cons16
baseline 72.6 70.1 93.1 90.8 69.7 89.5 87.4
augshift 72.6 85.6 92.1 94.8 70.1 90.2 88.2
blurpool 72.4 78.2 92.5 92.5 71.4 90.5 88.8
"""
# ICCV 2021 Sec. 4.2.2 (Fig. 4): DeepLabv3-ResNet-50 on Cityscapes, mIoU (%) with the top-N
# position channels of 2048 zeroed, or N random ones.
ICCV2021_FIG4 = {"baseline": 74.0, "points": [  # (N of 2048 channels, ranking, mIoU)
    (100, "overall", 71.9), (100, "random", 73.4), (500, "overall", 64.7), (500, "random", 70.5)]}
# ICCV 2021 Sec. 4.2.3 (Fig. 6): drops of left-half mIoU with 10 channels ranked on left or right.
ICCV2021_FIG6 = [(10, "left", 0.6), (10, "right", 0.08)]
ICCV2021_CHANNELS = 2048  # channels after DeepLabv3-ResNet-50's last stage


def iccv2021_table1() -> pd.DataFrame:
    """ICCV 2021 Table 1, tidy: padding, network, task (location|image), grid, value (accuracy
    in [0, 1])."""
    wide = _parse(_ICCV_TABLE1_TEXT).set_index(["padding", "network"])
    tidy = wide.stack().rename("value").reset_index().rename(columns={"level_2": "column"})
    tidy[["task", "grid"]] = tidy.pop("column").str.split("_", expand=True)
    tidy = tidy.astype({"grid": int, "value": float}).assign(value=lambda d: d.value / 100)
    return tidy[["padding", "network", "task", "grid", "value"]]


def iccv2021_table2() -> pd.DataFrame:
    """ICCV 2021 Table 2: one row per model (baseline, augshift, blurpool), one column per
    dataset and metric (``cifar10_top1``, ``cifar10_cons8``, ...), in %."""
    return _parse(_ICCV_TABLE2_TEXT).set_index("model").astype(float)
