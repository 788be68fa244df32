"""One small species + disease checkpoint, its image folder and one deliverables export, built once per test run."""

from __future__ import annotations

import pytest

from tests._support.shared import shared_dir

N_SPECIES_DISEASES = [1, 2, 3]  # one species with a single disease
IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def hierarchy_data(tmp_path_factory):
    """(checkpoint path, image folder) of a small CNN fitted on synthetic leaves."""
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.fit import make_hierarchy_checkpoint
    from edgeport.families.hierarchy.synthetic import write_plant_folder

    with shared_dir(tmp_path_factory, "hierarchy_ckpt") as (d, built):
        ck, imgs = d / "hier.pt", d / "images"
        if not built:
            make_hierarchy_checkpoint(ck, n_species=3, disease_counts=N_SPECIES_DISEASES, image_size=IMAGE_SIZE,
                                      per_class=16, steps=150, seed=0)
            src = load_hierarchy(ck)
            write_plant_folder(imgs, src.class_names, src.disease_names, per_class=8, size=IMAGE_SIZE, seed=3)
    return ck, imgs


@pytest.fixture(scope="session")
def hierarchy_export(hierarchy_data, tmp_path_factory):
    """The deliverables folder of ``export --family hierarchy --formats all`` of that checkpoint."""
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.deliverables import (
        HierarchyConfig,
        export_deliverables,
    )

    ck, imgs = hierarchy_data
    with shared_dir(tmp_path_factory, "hierarchy_export") as (d, built):
        out = d / "deliverables"
        if not built:
            res = export_deliverables(load_hierarchy(ck), HierarchyConfig(formats=("all",), outdir=out,
                                                                         data_path_train=imgs, latency_repeats=3))
            assert res.passed, [a.format for a in res.artifacts if not a.passed]
    return out
