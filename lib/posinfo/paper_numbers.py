"""Numbers the papers report, for the tables that put ours beside theirs.

Islam, Jia & Bruce, "How much position information do convolutional neural networks encode?",
ICLR 2020, Table 1: SPC and MAE of PosENet on the raw image and on VGG16 and ResNet-152
features (ImageNet weights), trained on DUT-S and tested on PASCAL-S and three synthetic inputs.
The paper prints the Spearman correlation of a constant prediction as .0 (written 0.0 here).
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
