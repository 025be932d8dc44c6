"""The ADC2021 event layout, in one place.

An event is 19 L1 objects x 4 columns (pT [GeV], eta, phi, class):
row 0 MET, rows 1-4 e/gamma, rows 5-8 muons, rows 9-18 jets; pT-ordered within
a type, zero-padded. Class codes: 1 MET, 2 e/gamma, 3 muon, 4 jet, 0 empty row.
Source: Govorkova et al., Sci. Data 9 (2022) 118 (arXiv 2107.02157).
"""

from __future__ import annotations

from typing import Final

N_OBJECTS: Final = 19
N_COLUMNS: Final = 4
N_FEATURES: Final = N_OBJECTS * 3  # (pT, eta, phi) per object

PARTICLES_DATASET: Final = "Particles"
WEIGHTS_DATASET: Final = "weights"
LABELS_DATASET: Final = "labels"

COLUMN_NAMES: Final = ("Pt", "Eta", "Phi", "Class")
CLASS_NAMES: Final = ("MET_class_1", "Four_Ele_class_2", "Four_Mu_class_3", "Ten_Jet_class_4")

# object type -> (first row, number of rows, class code)
OBJECT_ROWS: Final = {
    "met": (0, 1, 1),
    "egamma": (1, 4, 2),
    "muon": (5, 4, 3),
    "jet": (9, 10, 4),
}

# Truth labels of the events this project writes: index into PROCESSES.
# Background processes first, then the ADC2021 signals.
BACKGROUND_PROCESSES: Final = ("wlnu", "qcd", "zll", "ttbar")
SIGNAL_PROCESSES: Final = ("Ato4l", "leptoquark", "hToTauTau", "hChToTauNu")
PROCESSES: Final = BACKGROUND_PROCESSES + SIGNAL_PROCESSES


def process_label(name: str) -> int:
    """Integer truth label of a process name."""
    try:
        return PROCESSES.index(name)
    except ValueError:
        raise ValueError(f"unknown process {name!r}; known: {', '.join(PROCESSES)}") from None


def feature_names() -> list[str]:
    """Names of the 57 flattened features, e.g. ``jet3_pt``, in model order."""
    names = []
    for obj, (_, count, _) in OBJECT_ROWS.items():
        for i in range(count):
            tag = obj if count == 1 else f"{obj}{i}"
            names += [f"{tag}_pt", f"{tag}_eta", f"{tag}_phi"]
    return names
