# ruff: noqa: E501, B007, B023 (model sources as strings; small closures in a loop)
"""Variants derived from gen2's cases: reset_parameters with weight.size(1) at depth 24 (σ_w² = 3 and He),
and the VGG init idiom with the kernel area forgotten."""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "explode_audit" / "cases"
src = (OUT / "t2_stdv_uniform_sqrt_fanin_relu_w256_d12.py").read_text()
deep = src.replace("depth=12", "depth=24")
(OUT / "t5_stdv_uniform_sqrt_fanin_relu_w256_d24.py").write_text(deep)
(OUT / "t5_stdv_he_uniform_sqrt_fanin_relu_w256_d24.py").write_text(
    deep.replace("stdv = 3.0 / math.sqrt(layer.weight.size(1))", "stdv = math.sqrt(6.0 / layer.weight.size(1))"))
vgg = (OUT / "t2_vgg_cfg_conv_normal_fanout_c64.py").read_text()
(OUT / "t6_vgg_idiom_kernel_area_forgotten.py").write_text(
    vgg.replace("n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels", "n = m.out_channels  # kernel area forgotten"))
shapes = json.loads((OUT / "shapes.json").read_text())
shapes.update({"t5_stdv_uniform_sqrt_fanin_relu_w256_d24": [32], "t5_stdv_he_uniform_sqrt_fanin_relu_w256_d24": [32],
               "t6_vgg_idiom_kernel_area_forgotten": [3, 16, 16]})
(OUT / "shapes.json").write_text(json.dumps(shapes))
