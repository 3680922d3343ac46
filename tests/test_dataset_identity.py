"""What makes two datasets the same (homogan.data.cache.dataset_identity): what a copy holds, not where it lives.

Before: the identity held the data root's absolute path, so a project cloned or moved elsewhere measured every run
under another protocol (``reproduce`` skipped the record's evaluation values, ``report`` called the runs not
comparable), while a folder whose images were added or removed kept its old classifier and reference statistics."""

import json
import shutil

import numpy as np

from homogan.config import load_config
from homogan.data import cache, prepared, sources

EVAL = ["evaluation.every_epochs=1", "evaluation.num_samples=16", "evaluation.num_real=16",
        "evaluation.per_combination=2", "evaluation.classifier_epochs=1", 'data.attributes=["Bald"]']


def _folder(root, classes=("a", "b"), per_class=4):
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * c + i, np.uint8)).save(root / name / f"{i}.png")
    return root


def _folder_config(root, *more):
    return load_config(None, ["data.source=folder", f"data.root={root}", "data.class_conditional=true",
                              "data.image_size=32", "data.crop=null", *more])


def test_a_folder_is_the_same_dataset_wherever_it_lives_and_another_once_its_files_change(tmp_path):
    from homogan import classifier, evaluation

    here = _folder(tmp_path / "here" / "faces")
    there = tmp_path / "elsewhere" / "copy"
    shutil.copytree(here, there)
    a, b = _folder_config(here), _folder_config(there)
    assert cache.dataset_identity(a) == cache.dataset_identity(b)
    assert classifier.key_for(a, classifier.spec_for(a)) == classifier.key_for(b, classifier.spec_for(b))
    assert evaluation.reference_key(a, "x") == evaluation.reference_key(b, "x")
    # The prepared shards too (they held the absolute paths): copytree keeps the folders' mtimes, as a move does.
    assert prepared.key(a, sources.open_source(a)) == prepared.key(b, sources.open_source(b))

    (there / "a" / ".DS_Store").write_bytes(b"junk")  # hidden files are not data
    keys = lambda: (cache.dataset_identity(b), classifier.key_for(b, classifier.spec_for(b)),  # noqa: E731
                    evaluation.reference_key(b, "x"))
    original = keys()
    assert original[0] == cache.dataset_identity(a)

    shutil.copy(there / "a" / "0.png", there / "a" / "9.png")  # an image added
    added = keys()
    (there / "a" / "9.png").rename(there / "b" / "9.png")  # ... moved to another class
    moved = keys()
    (there / "b" / "9.png").unlink()  # ... and removed again: the copy holds what it held
    assert keys() == original
    (there / "b" / "0.png").write_bytes(b"\x89PNG" + b"0" * 99)  # an image replaced by other bytes
    replaced = keys()
    for changed in (added, moved, replaced):
        assert all(new != old for new, old in zip(changed, original))
    assert all(x != y for x, y in zip(added, moved))


def test_a_celeba_copy_is_keyed_by_its_tables_not_its_place(celeba_dir, tmp_path):
    copy = tmp_path / "celeba"
    shutil.copytree(celeba_dir, copy, ignore=shutil.ignore_patterns(".homogan"))
    configs = [load_config(None, ["data.source=celeba", f"data.root={root}"]) for root in (celeba_dir, copy)]
    assert cache.dataset_identity(configs[0]) == cache.dataset_identity(configs[1])
    assert cache.dataset_identity(configs[1])["contents"]["layout"] == "official"
    table = copy / "list_attr_celeba.txt"
    lines = table.read_text().splitlines()
    lines[2] = lines[2].replace(" 1", " -1", 1) if " 1" in lines[2] else lines[2].replace("-1", " 1", 1)
    table.write_text("\n".join(lines) + "\n")  # one label of one image changed
    assert cache.dataset_identity(configs[0]) != cache.dataset_identity(configs[1])


def test_the_synthetic_faces_are_keyed_by_their_count_and_version():
    from homogan.data import synthetic

    ident = cache.dataset_identity(load_config(None, ["data.root=/nowhere/synthetic"]))
    assert ident == cache.dataset_identity(load_config(None, ["data.root=/somewhere/else"]))
    assert ident["synthetic_images"] == 20000 and ident["synthetic_version"] == synthetic.SYNTHETIC_VERSION
    assert "root" not in ident


def test_a_frozen_experiment_reproduced_from_another_place_compares_its_evaluation_values(
        tiny_config, synthetic_root, tmp_path, capsys):
    """The user's case: an experiment frozen in one clone and reproduced in another (here: the data copied to
    another folder and the experiment pointed at it). Before, the protocols differed by the data's path, so
    reproduce said 'evaluation values not compared' and checked only the losses."""
    from homogan.cli import main
    from homogan.train import train

    run = train(tiny_config(*EVAL, "training.precision=float32", "training.epochs=1"), echo=lambda *a, **k: None).run
    exps = tmp_path / "exps"
    assert main(["freeze", str(run.path), "--name", "Ev", "--experiments-dir", str(exps)]) == 0
    moved = tmp_path / "another_clone" / "data"
    shutil.copytree(synthetic_root, moved, ignore=shutil.ignore_patterns(".homogan"))  # its caches are rebuilt
    config = json.loads((exps / "Ev" / "config.json").read_text())
    config["data"]["root"] = str(moved)
    (exps / "Ev" / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["reproduce", str(exps / "Ev")]) == 0
    out = capsys.readouterr().out
    assert "not compared" not in out and "reproduced exactly" in out, out
    record = json.loads((exps / "Ev" / "record" / "evaluation.json").read_text())
    fresh = json.loads((exps / "Ev" / "results" / "evaluation.json").read_text())
    assert record["reference"] == fresh["reference"] and record["attribute_control"] == fresh["attribute_control"]


def test_the_judge_is_named_by_its_weights_not_by_its_file(tmp_path):
    """Keras writes each layer's automatic name into a weights file, and the names count the layers the process
    made before: the classifier trained inside main.py (after the GAN's layers) and the same one trained by
    `homogan evaluate` were different files with the same weights, so the protocols of what they measured
    differed. The digest is of the arrays: equal for equal weights, whatever the file."""
    import keras

    from homogan import classifier

    first, _ = classifier.build(32, 3, 2, 8, True)
    keras.layers.Dense(3)  # more layers made in between: the next model's automatic names move on
    second, _ = classifier.build(32, 3, 2, 8, True)
    second.set_weights(first.get_weights())
    judges = [classifier.Classifier("k", tmp_path / str(i), ["a", "b"], True, model, None, {})
              for i, model in enumerate((first, second))]
    for judge in judges:
        judge.folder.mkdir()
        judge.model.save_weights(str(judge.weights_path))
    assert judges[0].weights_digest == judges[1].weights_digest and len(judges[0].weights_digest) == 16
    weights = second.get_weights()
    weights[0] = weights[0] + np.float32(1e-7) * np.sign(weights[0])  # the last bits of one array
    second.set_weights(weights)
    assert judges[1].weights_digest != judges[0].weights_digest
