"""Maze task: generation, shortest-path labels, parsing, validity checks, dihedral symmetries, dataset."""

from __future__ import annotations

import heapq
import itertools
import json

import numpy as np
import pytest

from tasks import dihedral as D
from tasks import maze as M
from tasks.maze.__main__ import main as maze_main
from tasks.puzzle_dataset import read_puzzle_split

# ----------------------------------------------------------------------------- independent references


def dijkstra(grid: np.ndarray, src, dst) -> int:
    """Shortest move count with a heap over all non-wall cells (-1 if unreachable)."""
    best = {src: 0}
    heap = [(0, src)]
    while heap:
        d, (r, c) = heapq.heappop(heap)
        if (r, c) == dst:
            return d
        if d > best[(r, c)]:
            continue
        for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= rr < grid.shape[0] and 0 <= cc < grid.shape[1] and grid[rr, cc] != M.WALL:
                if d + 1 < best.get((rr, cc), 10**9):
                    best[(rr, cc)] = d + 1
                    heapq.heappush(heap, (d + 1, (rr, cc)))
    return -1


def count_paths(grid: np.ndarray, src, dst) -> int:
    """Number of shortest paths by dynamic programming over Dijkstra layers (uncapped)."""
    dist = {}
    for cell in map(tuple, np.argwhere(grid != M.WALL)):
        dist[cell] = dijkstra(grid, src, cell)
    ways = {src: 1}
    for cell in sorted((c for c in dist if dist[c] > 0), key=dist.get):
        r, c = cell
        ways[cell] = sum(ways.get(n, 0) for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if dist.get(n) == dist[cell] - 1)
    return ways.get(dst, 0)


def find(grid, token):
    return tuple(int(v) for v in np.argwhere(grid == token)[0])


TWO_ROUTES = "\n".join(
    [
        "#######",
        "#S   G#",
        "# ### #",
        "#     #",
        "#######",
    ]
)
TIES = "\n".join(["#####", "#S  #", "#   #", "#  G#", "#####"])

# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("size,seed", [(9, 0), (11, 1), (15, 2), (15, 3), (21, 4), (30, 5)])
def test_generated_label_is_a_unique_shortest_path(size, seed):
    puzzle, label = M.generate_maze(size, seed)
    s, g = find(puzzle, M.START), find(puzzle, M.GOAL)
    best = dijkstra(puzzle, s, g)
    assert best >= M.default_min_path_length(size)
    marked = label == M.PATH
    assert int(marked.sum()) == best - 1
    assert np.all(puzzle[marked] == M.OPEN)
    assert np.array_equal(label[~marked], puzzle[~marked])
    # the marked cells plus S and G connect S to G
    corridor = np.where(marked | (label == M.START) | (label == M.GOAL), M.OPEN, M.WALL)
    assert dijkstra(corridor, s, g) == best
    assert count_paths(puzzle, s, g) == 1
    assert M.is_valid_path_solution(puzzle, label)
    assert M.path_length(puzzle) == best


def test_generator_is_deterministic_and_seed_sensitive():
    a = M.generate_mazes(4, size=11, seed=7)
    b = M.generate_mazes(4, size=11, seed=7)
    c = M.generate_mazes(4, size=11, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.uint8 and a[0].shape == (4, 121)
    assert len({row.tobytes() for row in a[0]}) == 4  # distinct mazes


def test_min_path_length_filter():
    for L in (1, 25, 40):
        xs, ys = M.generate_mazes(6, size=15, seed=3, min_path_length=L)
        lengths = []
        for x in xs:
            grid = M.decode(x)
            lengths.append(dijkstra(grid, find(grid, M.START), find(grid, M.GOAL)))
        assert min(lengths) >= L
    short = M.generate_mazes(20, size=15, seed=3, min_path_length=1)[0]
    assert min(M.path_length(M.decode(x)) for x in short) < 25  # the filter is what removes short ones
    with pytest.raises(M.MazeError, match="no 9x9 maze"):
        M.generate_maze(9, 0, min_path_length=500, max_tries=3)


def test_loops_give_alternative_routes():
    """With loops, knocking out one path cell usually leaves another (longer) S-G route."""
    detours = 0
    for seed in range(10):
        puzzle, _ = M.generate_maze(21, seed)
        path = M.shortest_path(puzzle)
        for cell in path[1:-1]:
            blocked = puzzle.copy()
            blocked[cell] = M.WALL
            if dijkstra(blocked, path[0], path[-1]) > len(path) - 1:
                detours += 1
                break
    assert detours >= 5
    perfect, _ = M.generate_maze(21, 0, loop_fraction=0.0)
    path = M.shortest_path(perfect)
    blocked = perfect.copy()
    blocked[path[len(path) // 2]] = M.WALL
    assert dijkstra(blocked, path[0], path[-1]) == -1  # a perfect maze has exactly one route


# ----------------------------------------------------------------------------- parsing and solving


def test_parse_format_encode_round_trip():
    puzzle, label = M.generate_maze(13, 11)
    for grid in (puzzle, label):
        text = M.format_maze(grid)
        assert set(text) <= set("# SGo\n")
        assert np.array_equal(M.parse_maze(text), grid)
        seq = M.encode(grid)
        assert seq.shape == (169,) and seq.dtype == np.uint8
        assert np.array_equal(M.decode(seq), grid)
        assert np.array_equal(M.parse_maze(text.replace("\n", ""), width=13), grid)
    assert M.CHARSET.index("#") + 1 == M.WALL and M.CHARSET.index("o") + 1 == M.PATH


@pytest.mark.parametrize(
    "text,match",
    [
        ("#####\n#S x#\n#  G#\n#####", r"invalid maze character 'x' at row 1, column 3"),
        ("#####\n#S  #\n# G#\n#####", "ragged maze: row 2 has 4 characters, expected 5"),
        ("#####\n#   #\n#  G#\n#####", "exactly one 'S', found 0"),
        ("#####\n#S G#\n#  G#\n#####", "exactly one 'G', found 2"),
        ("#####\n#S# #\n##  #\n#  G#\n#####", "not reachable"),
        ("\n\n", "empty maze"),
    ],
)
def test_parse_errors(text, match):
    with pytest.raises(M.MazeError, match=match):
        M.parse_maze(text)


def test_decode_errors():
    with pytest.raises(M.MazeError, match="not a square"):
        M.decode(np.ones(10, np.uint8))
    with pytest.raises(M.MazeError, match="invalid maze token 0"):
        M.decode(np.zeros(9, np.uint8))
    with pytest.raises(M.MazeError, match="invalid maze token 6"):
        M.decode(np.full(9, 6, np.uint8))


def test_shortest_path_prefers_the_short_route():
    grid = M.parse_maze(TWO_ROUTES)
    path = M.shortest_path(grid)
    assert path == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]
    label = M.solve_maze(grid)
    assert M.format_maze(label).split("\n")[1] == "#SoooG#"
    assert M.count_shortest_paths(grid) == 1
    assert M.is_valid_path_solution(grid, label)


def test_is_valid_path_solution_rejects_bad_labels():
    grid = M.parse_maze(TWO_ROUTES)
    good = M.solve_maze(grid)

    long_route = grid.copy()
    for cell in [(2, 1), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (2, 5)]:
        long_route[cell] = M.PATH
    assert M.is_valid_path_solution(grid, M.parse_maze(M.format_maze(long_route))) is False

    missing = good.copy()
    missing[1, 3] = M.OPEN
    assert not M.is_valid_path_solution(grid, missing)

    disconnected = good.copy()  # right count of cells, but not a connected route
    disconnected[1, 3] = M.OPEN
    disconnected[3, 3] = M.PATH
    assert int((disconnected == M.PATH).sum()) == int((good == M.PATH).sum())
    assert not M.is_valid_path_solution(grid, disconnected)

    through_wall = good.copy()
    through_wall[2, 3] = M.PATH
    assert not M.is_valid_path_solution(grid, through_wall)

    moved_goal = good.copy()
    moved_goal[3, 3] = M.GOAL
    assert not M.is_valid_path_solution(grid, moved_goal)
    assert not M.is_valid_path_solution(grid, good[:, :-1])


def test_ties_every_shortest_path_is_valid():
    grid = M.parse_maze(TIES)
    assert M.count_shortest_paths(grid) == 2  # capped count
    assert count_paths(grid, (1, 1), (3, 3)) == 6
    for route in ([(1, 2), (1, 3), (2, 3)], [(2, 1), (3, 1), (3, 2)], [(1, 2), (2, 2), (3, 2)]):
        label = grid.copy()
        for cell in route:
            label[cell] = M.PATH
        assert M.is_valid_path_solution(grid, label)


# ----------------------------------------------------------------------------- dihedral symmetries


def _explicit(x: np.ndarray) -> list[np.ndarray]:
    return [x, np.rot90(x, 1), np.rot90(x, 2), np.rot90(x, 3), np.fliplr(x), np.flipud(x), x.T, np.fliplr(np.rot90(x, 1))]


def test_dihedral_numbering_matches_reference_convention():
    x = np.arange(12).reshape(3, 4)
    for tid, expected in enumerate(_explicit(x)):
        out = D.dihedral_transform(x, tid)
        assert np.array_equal(out, expected), tid
        assert out.shape == D.transformed_shape(x.shape, tid)
    assert D.DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)


def test_dihedral_transforms_form_a_group():
    x = np.random.default_rng(0).integers(0, 100, size=(4, 6))
    images = [D.dihedral_transform(x, t) for t in range(8)]
    assert len({(im.shape, im.tobytes()) for im in images}) == 8  # all distinct on a generic grid
    for a in range(8):
        assert np.array_equal(D.inverse_dihedral_transform(images[a], a), x)
        assert np.array_equal(D.dihedral_transform(D.inverse_dihedral_transform(x, a), a), x)
        assert D.compose_ids(a, D.inverse_id(a)) == 0 == D.compose_ids(D.inverse_id(a), a)
        for b in range(8):
            twice = D.dihedral_transform(images[b], a)
            c = D.compose_ids(a, b)
            assert np.array_equal(twice, images[c])  # closure, with the right element
    for a, b, c in itertools.product(range(8), repeat=3):  # associativity of the table
        assert D.compose_ids(a, D.compose_ids(b, c)) == D.compose_ids(D.compose_ids(a, b), c)
    assert sorted(D.compose_ids(1, b) for b in range(8)) == list(range(8))  # each row a permutation
    with pytest.raises(ValueError, match="0..7"):
        D.dihedral_transform(x, 8)


def test_path_validity_survives_augmentation():
    puzzle, label = M.generate_maze(15, 21)
    length = M.path_length(puzzle)
    for tid in range(8):
        p, l = M.augment_maze(puzzle, label, tid)
        assert M.is_valid_path_solution(p, l)
        assert M.path_length(p) == length
        assert np.array_equal(M.solve_maze(p), l)  # unique path, so BFS finds the same one
        assert np.array_equal(M.unaugment_maze(l, tid), label)
    swapped = M.swap_start_goal(puzzle)
    assert M.is_valid_path_solution(swapped, M.swap_start_goal(label))
    assert np.array_equal(M.swap_start_goal(swapped), puzzle)


# ----------------------------------------------------------------------------- dataset


def test_build_maze_dataset_round_trip(tmp_path):
    M.build_maze_dataset(tmp_path, n_train=4, n_test=3, size=9, min_path_length=6, n_aug=3, seed=5)
    train = read_puzzle_split(tmp_path / "train")
    test = read_puzzle_split(tmp_path / "test")
    tx, ty = train.inputs, train.labels
    assert tx.shape == ty.shape == (16, 81) and tx.dtype == np.uint8
    assert list(train.group_indices) == [0, 4, 8, 12, 16]
    assert list(train.puzzle_indices) == list(range(17))
    assert not np.any(train.puzzle_identifiers)
    assert train.identifiers == ["<blank>"] and train.task == "maze"
    for x, y in zip(tx, ty):
        p, l = M.decode(x), M.decode(y)
        assert M.is_valid_path_solution(p, l) and M.path_length(p) >= 6
    # every group is one maze under 4 distinct symmetries, the first untransformed
    for g in range(4):
        block = tx[4 * g : 4 * g + 4]
        base = M.decode(block[0])
        found = [next(t for t in range(8) if np.array_equal(D.dihedral_transform(base, t), M.decode(b))) for b in block]
        assert found[0] == 0 and len(set(found)) == 4
    assert test.inputs.shape == (3, 81) and list(test.group_indices) == [0, 1, 2, 3]
    train_mazes = {M.encode(D.dihedral_transform(M.decode(x), t)).tobytes() for x in tx for t in range(8)}
    assert not any(x.tobytes() in train_mazes for x in test.inputs)
    meta = json.loads((tmp_path / "test" / "dataset.json").read_text())
    assert meta["task"] == "maze" and meta["grid_size"] == 9 and meta["vocab_size"] == 6 and meta["seq_len"] == 81
    assert meta["num_puzzle_identifiers"] == 1 and meta["total_groups"] == 3
    assert json.loads((tmp_path / "identifiers.json").read_text()) == ["<blank>"]
    again = tmp_path / "again"
    M.build_maze_dataset(again, n_train=4, n_test=3, size=9, min_path_length=6, n_aug=3, seed=5)
    assert np.array_equal(read_puzzle_split(again / "train").inputs, tx)


def test_cli(capsys, tmp_path):
    assert maze_main(["show", "--size", "9", "--seed", "1"]) == 0
    assert "shortest path" in capsys.readouterr().out
    assert maze_main(["build", "--out", str(tmp_path), "--size", "9", "--n-aug", "9"]) == 2
    assert capsys.readouterr().err.startswith("error: n_aug must be in 0..7")
