"""The inference plan: copy_mode from the file, mutations found at logging, training inputs."""

from __future__ import annotations

from pathlib import Path

from spaceflights_model_project import write_spaceflights

from kmlc import load_project
from kmlc.compiler.inference_plan import plan_from_spec


def _spec(tmp_path: Path, old: str = "", new: str = ""):
    path = write_spaceflights(tmp_path / "spaceflights")
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_project(path)


def test_training_inputs_are_packed_and_marked(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    plan = plan_from_spec(spec)
    assert [(a.name, a.produced) for a in plan.artifacts] == [
        ("companies", False), ("regressor", True), ("reviews", False)]
    assert all(not step.copies for step in plan.steps)
    assert plan.params == {"params:model_options": spec.parameters["model_options"]}


def test_copy_mode_of_the_file_has_the_last_word(tmp_path: Path) -> None:
    reviews = "  reviews: {type: pandas.CSVDataset, filepath: data/01_raw/reviews.csv"
    spec = _spec(tmp_path, reviews + "}", reviews + ","
                 " copy_mode: deepcopy}\n  companies_mode: {type: MemoryDataset,"
                 " copy_mode: assign}")
    assert "copy_mode" not in spec.datasets["reviews"].config  # not a CSVDataset argument
    assert spec.datasets["companies_mode"].config["copy_mode"] == "assign"  # MemoryDataset's
    plan = plan_from_spec(spec)
    steps = {step.name: step for step in plan.steps}
    assert steps["create_model_input_table_node"].copies == {"reviews": "deepcopy"}
    probed = plan.with_mutations({"create_model_input_table_node": {"reviews": "copy"},
                                  "preprocess_companies_node": {"companies": "copy"}})
    steps = {step.name: step for step in probed.steps}
    assert steps["create_model_input_table_node"].copies == {"reviews": "deepcopy"}
    assert steps["preprocess_companies_node"].copies == {"companies": "copy"}
    assert '"copies": {\n        "companies": "copy"' in probed.to_json()


def test_assign_keeps_a_probed_mutation_uncopied(tmp_path: Path) -> None:
    companies = "  companies: {type: pandas.CSVDataset, filepath: data/01_raw/companies.csv"
    spec = _spec(tmp_path, companies + "}", companies + ", copy_mode: assign}")
    plan = plan_from_spec(spec).with_mutations({"preprocess_companies_node": {"companies": "copy"}})
    assert plan.copy_modes == {"companies": "assign"}
    assert all(not step.copies for step in plan.steps)
