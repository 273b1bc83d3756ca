"""The SOM paper's Table 2 (training and inference time, RTX 4090) and the reference its ratios divide by.

Torch-free, so the command line can show `DEFAULT_REFERENCE` as an option's default without importing
the timing code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_REFERENCE = "som"
"""The algorithm every ratio divides by, unless told otherwise (`reference` of
sombench.measure.latency.compare and ratios_to, and of the cost projection's paper-GPU estimate): SOM,
the paper's choice, as its claim about Table 2 is relative to SOM. Declared here once."""
PAPER_MACHINE = "NVIDIA RTX 4090, AMD Ryzen Threadripper PRO 5995WX"
PAPER_ENV = "HalfCheetah-v4"


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2: algo, T_d, N, train_ms, train_ci, infer_ms, infer_ci (names as printed)."""
    import pandas as pd  # here, not at import: the command line reads DEFAULT_REFERENCE from this module

    return pd.read_csv(Path(str(resources.files("sombench") / "data" / "paper_table2.csv")))


def reference_label(reference: str = DEFAULT_REFERENCE) -> str:
    """How tables name the reference: as the paper's Table 2 prints it (`SOM`), else as given."""
    printed = [a for a in paper_table2()["algo"] if str(a).lower() == reference.lower()]
    return str(printed[0]) if printed else reference
